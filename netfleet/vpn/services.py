"""VPN and IPAM services: address allocation, VPN server lifecycle and rendering, and VPN clients.

Addresses are allocated under a row lock on the subnet (`select_for_update`; SQLite's IMMEDIATE transactions
serialise writers the same way), and the (subnet, address) unique constraint is the last line of defence, so two
concurrent requests never get the same address. Server configurations are rendered with netjsonconfig's
OpenVpn / Wireguard backends as byte-deterministic tar.gz archives.
"""

import base64
import copy
import hashlib
import ipaddress

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from netjsonconfig import OpenVpn, OpenWrt, VxlanWireguard, Wireguard
from netjsonconfig.exceptions import ValidationError as NetjsonValidationError

from netfleet.core.exceptions import Conflict
from netfleet.core.sql import table, uuid_param
from netfleet.pki import services as pki

from .choices import VpnBackend
from .models import IpAddress, Subnet, Vpn, VpnClient, VpnTemplate

BACKENDS = {VpnBackend.OPENVPN: OpenVpn, VpnBackend.WIREGUARD: Wireguard, VpnBackend.VXLAN_WIREGUARD: VxlanWireguard}
OPENVPN_DIR = "/etc/openvpn"
WIREGUARD_PORT = 51820
OPENVPN_PORT = 1194


class PoolExhausted(Conflict):
    default_message = "The subnet has no free address left"


class AddressTaken(Conflict):
    default_message = "This address is already allocated"


class SubnetInUse(Conflict):
    default_message = "VPN servers use this subnet; delete them first"


# --- IPAM ---------------------------------------------------------------------------------------------------


def save_subnet(*, instance=None, **fields):
    """Create (no `instance`) or update a subnet; overlaps with the organization's other subnets are a 422."""
    subnet = instance or Subnet()
    for name, value in fields.items():
        setattr(subnet, name, value)
    subnet.full_clean()
    subnet.save()
    return subnet


def delete_subnet(*, subnet):
    try:
        with transaction.atomic():
            subnet.delete()
    except ProtectedError:
        raise SubnetInUse() from None


def _candidates(network):
    if network.num_addresses == 1:
        return iter([network.network_address])
    return network.hosts()


def allocate_ip(*, subnet, ip_address=None, description=""):
    """Allocate `ip_address`, or the lowest free host address of the subnet. Raises AddressTaken or
    PoolExhausted (409), or ValidationError (422) for an address outside the subnet."""
    try:
        with transaction.atomic():
            locked = Subnet.objects.select_for_update().get(pk=subnet.pk)
            network = locked.network
            used = {ipaddress.ip_address(ip) for ip in locked.ip_addresses.values_list("ip_address", flat=True)}
            if ip_address:
                try:
                    chosen = ipaddress.ip_address(str(ip_address))
                except ValueError:
                    raise ValidationError({"ip_address": "Enter a valid IP address."}) from None
                if chosen not in network:
                    raise ValidationError({"ip_address": f"Not in the subnet {locked.subnet}."})
                if chosen in used:
                    raise AddressTaken(f"{chosen} is already allocated in {locked.subnet}")
            else:
                chosen = next((candidate for candidate in _candidates(network) if candidate not in used), None)
                if chosen is None:
                    raise PoolExhausted(f"The subnet {locked.subnet} has no free address left")
            return IpAddress.objects.create(subnet=locked, ip_address=str(chosen), description=description)
    except IntegrityError:
        # the unique constraint caught a writer the lock did not (an address given by hand elsewhere)
        raise AddressTaken() from None


def release_ip(ip):
    if ip is not None:
        IpAddress.objects.filter(pk=ip.pk).delete()


# --- keys ---------------------------------------------------------------------------------------------------


def generate_wireguard_keys():
    """(private, public) X25519 keys, base64-encoded as `wg genkey` / `wg pubkey` print them."""
    key = x25519.X25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


def generate_dh_parameters(key_size=None):
    """PEM Diffie-Hellman parameters (PKCS#3, what OpenVPN's `dh` reads). Slow at 2048 bits: run in a task."""
    import warnings

    from cryptography.hazmat.primitives.asymmetric import dh

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography deprecates finite-field DH; OpenVPN still reads it
        parameters = dh.generate_parameters(generator=2, key_size=key_size or settings.NETFLEET_VPN_DH_KEY_SIZE)
    return parameters.parameter_bytes(serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3).decode()


def store_dh_parameters(*, vpn_id):
    """Generate and store a VPN server's DH parameters unless it already has them (idempotent)."""
    if not Vpn.objects.filter(pk=vpn_id, dh="").exists():
        return False
    pem = generate_dh_parameters()
    return bool(Vpn.objects.filter(pk=vpn_id, dh="").update(dh=pem))


# --- VPN servers --------------------------------------------------------------------------------------------


def default_config(vpn):
    if vpn.is_wireguard:
        return {"wireguard": [{"name": "wg0", "port": WIREGUARD_PORT}]}
    return {
        "openvpn": [
            {
                "name": "server",
                "mode": "server",
                "proto": "udp",
                "port": OPENVPN_PORT,
                "dev": "tun0",
                "dev_type": "tun",
                "tls_server": True,
                "remote_cert_tls": "client",
                "keepalive": "10 120",
                "persist_key": True,
                "persist_tun": True,
            }
        ]
    }


def _auto_ca(vpn):
    return pki.create_ca(
        name=f"{vpn.name} CA"[:64],
        organization=vpn.organization,
        common_name=f"{vpn.name} CA"[:64],
        key_type=settings.NETFLEET_VPN_KEY_TYPE,
        key_length=settings.NETFLEET_VPN_KEY_LENGTH,
    )


def _auto_cert(ca, *, name, organization, common_name, kind):
    return pki.create_cert(
        name=name[:64],
        organization=organization,
        ca=ca,
        common_name=common_name[:64],
        key_type=settings.NETFLEET_VPN_KEY_TYPE,
        key_length=settings.NETFLEET_VPN_KEY_LENGTH,
        extensions=[
            {
                "name": "extendedKeyUsage",
                "critical": False,
                "value": "serverAuth" if kind == "server" else "clientAuth",
            },
            {"name": "nsCertType", "critical": False, "value": kind},
        ],
    )


@transaction.atomic
def create_vpn(**fields):
    """Create a VPN server. OpenVPN: the CA and server certificate are created when not given, and the DH
    parameters are generated in the background (`dh` stays empty until then). WireGuard: a key pair is generated.
    With a subnet, the server takes its first free address. Everything rolls back if any step fails."""
    vpn = Vpn(**fields)
    vpn.full_clean()
    if not vpn.config:
        vpn.config = default_config(vpn)
    if vpn.is_wireguard:
        vpn.private_key, vpn.public_key = generate_wireguard_keys()
    else:
        if vpn.ca is None:
            vpn.ca = vpn.cert.ca if vpn.cert else _auto_ca(vpn)
        if vpn.cert is None:
            vpn.cert = _auto_cert(
                vpn.ca, name=vpn.name, organization=vpn.organization, common_name=vpn.host or vpn.name, kind="server"
            )
    if vpn.subnet is not None:
        vpn.ip = allocate_ip(subnet=vpn.subnet, description=f"VPN server {vpn.name}"[:100])
    vpn.full_clean()
    vpn.save()
    render_vpn_archive(vpn=vpn)  # a configuration that cannot render is a 422 now, not a broken download later
    if not vpn.is_wireguard:
        from . import tasks

        vpn_id = str(vpn.pk)
        transaction.on_commit(lambda: tasks.generate_dh_parameters.delay(vpn_id))
    return vpn


@transaction.atomic
def update_vpn(*, vpn, **fields):
    for name, value in fields.items():
        setattr(vpn, name, value)
    vpn.full_clean()
    vpn.save()
    render_vpn_archive(vpn=vpn)
    return vpn


@transaction.atomic
def delete_vpn(*, vpn):
    """Delete a VPN server: its clients' certificates are revoked, its and their addresses released."""
    for client in vpn.clients.select_related("cert", "ip"):
        _release_client(client)
    ip = vpn.ip
    vpn.delete()
    release_ip(ip)


def _netjson_error(exc):
    details = getattr(exc, "details", None)
    path = ".".join(str(part) for part in getattr(details, "path", ())) if details is not None else ""
    message = getattr(details, "message", None) or str(exc)
    return ValidationError({f"config.{path}" if path else "config": message})


def _openvpn_server(vpn, config):
    entries = config.get("openvpn") or default_config(vpn)["openvpn"]
    files = [item for item in config.get("files", []) if isinstance(item, dict)]
    for entry in entries:
        base = f"{OPENVPN_DIR}/{entry.get('name', 'server')}"
        pem = {
            "ca.pem": vpn.ca.certificate if vpn.ca_id else "",
            "cert.pem": vpn.cert.certificate if vpn.cert_id else "",
            "key.pem": vpn.cert.private_key if vpn.cert_id else "",
            "dh.pem": vpn.dh,
            "crl.pem": pki.certificate_revocation_list(ca=vpn.ca).decode() if vpn.ca_id else "",
        }
        for name, contents in pem.items():
            if contents:
                files.append({"path": f"{base}/{name}", "contents": contents, "mode": "0600"})
        entry.update(ca=f"{base}/ca.pem", cert=f"{base}/cert.pem", key=f"{base}/key.pem")
        entry["dh"] = f"{base}/dh.pem" if vpn.dh else "none"  # ECDHE only until the DH parameters exist
        if vpn.ca_id:
            entry["crl_verify"] = f"{base}/crl.pem"
        if vpn.subnet_id and "server" not in entry and "server_bridge" not in entry and vpn.subnet.version == 4:
            network = vpn.subnet.network
            entry["server"] = f"{network.network_address} {network.netmask}"
    config["openvpn"], config["files"] = entries, files
    return config


def _wireguard_server(vpn, config):
    entries = config.get("wireguard") or default_config(vpn)["wireguard"]
    entry = entries[0]
    entry["private_key"] = vpn.private_key
    if vpn.ip_id:
        entry["address"] = f"{vpn.ip.ip_address}/{vpn.subnet.network.prefixlen}"
    peers = [peer for peer in entry.get("peers", []) if isinstance(peer, dict)]
    for client in vpn.clients.select_related("ip").order_by("created", "pk"):
        if client.public_key and client.ip_id:
            peers.append({"public_key": client.public_key, "allowed_ips": f"{client.ip.ip_address}/32"})
    entry["peers"] = peers
    config["wireguard"] = entries
    return config


def server_netjson(vpn):
    """The server's NetJSON with its keys, certificates, DH parameters, CRL and peers filled in."""
    config = copy.deepcopy(vpn.config or {})
    if vpn.is_wireguard:
        return _wireguard_server(vpn, config)
    return _openvpn_server(vpn, config)


def render_vpn_archive(*, vpn):
    """The server configuration as netjsonconfig's deterministic tar.gz. ValidationError (422) if invalid."""
    try:
        backend = BACKENDS[vpn.backend](config=server_netjson(vpn))
        return backend.generate().getvalue()
    except NetjsonValidationError as exc:
        raise _netjson_error(exc) from None


def vpn_checksum(*, vpn):
    """md5 of the server archive: what a VPN server host polls to know its configuration changed."""
    return hashlib.md5(render_vpn_archive(vpn=vpn), usedforsecurity=False).hexdigest()


# --- VPN clients (templates of type vpn) --------------------------------------------------------------------


def _suffix(vpn):
    return vpn.pk.hex[:8]


def client_variable_names(vpn):
    suffix = _suffix(vpn)
    names = ("ca_contents", "cert_contents", "key_contents", "ip_address", "private_key", "server_ip")
    return {name: f"vpn_{suffix}_{name}" for name in names}


def auto_client_config(vpn):
    """An OpenWrt template config joining `vpn`; per-device values are variables filled by `client_context`."""
    names = client_variable_names(vpn)
    server = server_netjson(vpn)
    if vpn.is_wireguard:
        entry = server["wireguard"][0]
        return OpenWrt.wireguard_auto_client(
            host=vpn.host,
            public_key=vpn.public_key,
            server={"name": entry.get("name", "wg0"), "port": entry.get("port", WIREGUARD_PORT)},
            server_ip_network=str(vpn.subnet.network),
            ip_address="{{ %s }}" % names["ip_address"],  # noqa: UP031 - a Jinja placeholder
            private_key="{{ %s }}" % names["private_key"],  # noqa: UP031
        )
    entry = {k: v for k, v in server["openvpn"][0].items() if k not in ("ca", "cert", "key", "dh", "crl_verify")}
    base = f"{OPENVPN_DIR}/{vpn.name}".replace(" ", "_")
    return OpenVpn.auto_client(
        vpn.host,
        entry,
        ca_path=f"{base}/ca.pem",
        ca_contents="{{ %s }}" % names["ca_contents"],  # noqa: UP031
        cert_path=f"{base}/client.pem",
        cert_contents="{{ %s }}" % names["cert_contents"],  # noqa: UP031
        key_path=f"{base}/client.key",
        key_contents="{{ %s }}" % names["key_contents"],  # noqa: UP031
    )


def placeholder_values(vpn):
    """Values that let the template validate on its own (the real ones come from each device's client)."""
    names = client_variable_names(vpn)
    return {
        names["ca_contents"]: "",
        names["cert_contents"]: "",
        names["key_contents"]: "",
        names["ip_address"]: "0.0.0.0",  # noqa: S104 - a placeholder, never bound
        names["private_key"]: "",
        names["server_ip"]: vpn.ip.ip_address if vpn.ip_id else "",
    }


@transaction.atomic
def link_template(*, template, vpn):
    """Bind a `vpn` template to a VPN server; an empty template config becomes the server's auto client."""
    from netfleet.controller import services as controller

    if template.type != "vpn":
        raise ValidationError({"type": "Only templates of type 'vpn' join a VPN."})
    if vpn.organization_id not in (None, template.organization_id):
        raise ValidationError({"vpn": "This VPN belongs to another organization."})
    VpnTemplate.objects.update_or_create(template=template, defaults={"vpn": vpn})
    fields = {"default_values": {**placeholder_values(vpn), **(template.default_values or {})}}
    if not template.config:
        fields["config"] = auto_client_config(vpn)
    return controller.update_template(template=template, **fields)


def _client_for(config, vpn, template):
    device = config.device
    client = VpnClient(vpn=vpn, config=config, template=template)
    if vpn.is_wireguard:
        client.private_key, client.public_key = generate_wireguard_keys()
        client.ip = allocate_ip(subnet=vpn.subnet, description=f"{device.name} in {vpn.name}"[:100])
    else:
        client.cert = _auto_cert(
            vpn.ca,
            name=device.name,
            organization=device.organization,
            common_name=f"{device.mac_address}-{device.name}",
            kind="client",
        )
        if vpn.subnet_id:
            client.ip = allocate_ip(subnet=vpn.subnet, description=f"{device.name} in {vpn.name}"[:100])
    client.save()
    return client


def _release_client(client):
    if client.cert_id:
        pki.revoke_cert(cert=client.cert)
    ip = client.ip
    client.delete()
    release_ip(ip)


@transaction.atomic
def sync_vpn_clients(*, config, templates=None, new=False):
    """Make the config's VPN clients match its VPN templates: a client (certificate or key pair and address) for
    each new one, revocation and release for each one gone. `templates`: the config's, when the caller has them
    (a config without a `vpn` template needs no lookup of VPN links); `new`: a config created in this
    transaction, which has no clients yet. Returns the VPN servers whose peers changed."""
    if templates is None:
        links = VpnTemplate.objects.filter(template__config_links__config=config)
    else:
        vpn_template_ids = [template.pk for template in templates if template.type == "vpn"]
        links = VpnTemplate.objects.filter(template__in=vpn_template_ids) if vpn_template_ids else []
    wanted = {link.vpn_id: link for link in (links and links.select_related("vpn", "template"))}
    clients = [] if new else list(VpnClient.objects.filter(config=config).select_related("cert", "ip"))
    changed = set()
    for client in clients:
        if client.vpn_id not in wanted:
            changed.add(client.vpn_id)
            _release_client(client)
    existing = {client.vpn_id for client in clients}
    for vpn_id, link in wanted.items():
        if vpn_id not in existing:
            _client_for(config, link.vpn, link.template)
            changed.add(vpn_id)
    # the render that follows reads the clients' variables (client_context): none to read is known already
    config._without_vpn_clients = not wanted
    return list(Vpn.objects.filter(pk__in=changed)) if changed else []


@transaction.atomic
def release_vpn_clients(*, config):
    """Before a device (or its config) is deleted: revoke its client certificates and free its addresses."""
    for client in VpnClient.objects.filter(config=config).select_related("cert", "ip"):
        _release_client(client)


def client_context(config):
    """The configuration variables of a config's VPN clients (merge them into the device's rendering context)."""
    context = {}
    if getattr(config, "_without_vpn_clients", False):  # set by sync_vpn_clients just before the render
        return context
    if not _has_vpn_clients(config.pk):  # most configs: no need to compile the query below (~2 ms, per render)
        return context
    for client in VpnClient.objects.filter(config=config).select_related("vpn", "vpn__ca", "vpn__ip", "cert", "ip"):
        names = client_variable_names(client.vpn)
        values = placeholder_values(client.vpn)
        if client.cert_id:
            values[names["cert_contents"]] = client.cert.certificate
            values[names["key_contents"]] = client.cert.private_key
        if client.vpn.ca_id:
            values[names["ca_contents"]] = client.vpn.ca.certificate
        if client.ip_id:
            values[names["ip_address"]] = client.ip.ip_address
        if client.private_key:
            values[names["private_key"]] = client.private_key
        context.update(values)
    return context


def _has_vpn_clients(config_id):
    """Whether a config has any VPN client: one indexed lookup, written out."""
    column = connection.ops.quote_name(VpnClient._meta.get_field("config").column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table(VpnClient)} WHERE {column} = %s LIMIT 1", [uuid_param(config_id)])  # noqa: S608
        return cursor.fetchone() is not None


def device_for_certificate(cert):
    """The device whose VPN client holds `cert`, or None."""
    client = VpnClient.objects.filter(cert=cert).select_related("config__device").first()
    return client.config.device if client else None
