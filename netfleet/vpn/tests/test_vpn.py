"""VPN servers over HTTP: OpenVPN (auto CA/cert, background DH), WireGuard (generated keys, pool address),
configuration download, filters, tenancy; and VPN clients made from templates of type vpn."""

import base64
import io
import tarfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.db import connection
from django.test import override_settings
from netjsonconfig import OpenWrt

from netfleet.accounts.roles import Role
from netfleet.controller import rendering
from netfleet.controller import services as controller
from netfleet.controller.models import Template
from netfleet.pki.models import Ca, Cert
from netfleet.vpn import services, tasks
from netfleet.vpn.choices import VpnBackend
from netfleet.vpn.models import IpAddress, Subnet, Vpn, VpnClient

pytestmark = pytest.mark.django_db

VPNS = "/api/v1/controller/vpn/"
SUBNETS = "/api/v1/ipam/subnet/"


def error_of(response, code):
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["request_id"]
    return error


def fields_of(error):
    return {item["field"]: item["message"] for item in error.get("details") or []}


def files_of(content):
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
        return {member.name: tar.extractfile(member).read().decode() for member in tar.getmembers() if member.isfile()}


@pytest.fixture
def admin(client_as):
    client, _user = client_as(Role.NETWORK_ADMIN)
    return client


@pytest.fixture
def subnet(organization):
    return services.save_subnet(organization=organization, name="tunnels", subnet="10.8.0.0/24")


def create_vpn(client, organization, **fields):
    payload = {"name": "hq", "host": "vpn.example.com", "organization": str(organization.pk)}
    payload.update(fields)
    response = client.post(VPNS, payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


class TestOpenVpn:
    def test_created_with_ca_cert_and_background_dh(self, admin, organization, subnet):
        vpn = create_vpn(admin, organization, subnet=str(subnet.pk))
        assert vpn["backend"] == VpnBackend.OPENVPN and vpn["dh"] == ""  # not generated in the request
        assert vpn["ip_address"] == "10.8.0.1" and "private_key" not in vpn
        ca, cert = Ca.objects.get(pk=vpn["ca"]), Cert.objects.get(pk=vpn["cert"])
        root = x509.load_pem_x509_certificate(ca.certificate.encode())
        leaf = x509.load_pem_x509_certificate(cert.certificate.encode())
        leaf.verify_directly_issued_by(root)
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH in eku

        files = files_of(admin.get(f"{VPNS}{vpn['id']}/configuration/").content)
        assert "dh none" in files["server.conf"] and "etc/openvpn/server/dh.pem" not in files

        with override_settings(NETFLEET_VPN_DH_KEY_SIZE=512):
            tasks.generate_dh_parameters(vpn["id"])  # what the Celery worker runs after the commit
        dh = admin.get(f"{VPNS}{vpn['id']}/").json()["dh"]
        parameters = serialization.load_pem_parameters(dh.encode())
        assert parameters.parameter_numbers().p.bit_length() == 512
        tasks.generate_dh_parameters(vpn["id"])  # idempotent
        assert Vpn.objects.get(pk=vpn["id"]).dh == dh

        response = admin.get(f"{VPNS}{vpn['id']}/configuration/")
        assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
        assert response["Content-Disposition"] == 'attachment; filename="hq.tar.gz"'
        files = files_of(response.content)
        conf = files["server.conf"]
        assert "mode server" in conf and "server 10.8.0.0 255.255.255.0" in conf
        assert "dh /etc/openvpn/server/dh.pem" in conf and "crl-verify /etc/openvpn/server/crl.pem" in conf
        assert files["etc/openvpn/server/ca.pem"].strip() == ca.certificate.strip()
        assert files["etc/openvpn/server/cert.pem"].strip() == cert.certificate.strip()
        assert files["etc/openvpn/server/key.pem"].strip() == cert.private_key.strip()
        assert files["etc/openvpn/server/dh.pem"].strip() == dh.strip()
        x509.load_pem_x509_crl(files["etc/openvpn/server/crl.pem"].encode())

    def test_commit_enqueues_dh_generation(self, admin, organization, django_capture_on_commit_callbacks, monkeypatch):
        queued = []
        monkeypatch.setattr(tasks.generate_dh_parameters, "delay", queued.append)
        with django_capture_on_commit_callbacks(execute=True):
            vpn = create_vpn(admin, organization)
        assert queued == [vpn["id"]]

    def test_uses_given_ca(self, admin, organization):
        from netfleet.pki import services as pki

        ca = pki.create_ca(name="mine", organization=organization, key_type="ec", key_length=256)
        vpn = create_vpn(admin, organization, ca=str(ca.pk))
        assert vpn["ca"] == str(ca.pk) and Cert.objects.get(pk=vpn["cert"]).ca_id == ca.pk
        assert Ca.objects.count() == 1

    def test_bad_config_is_422_and_creates_nothing(self, admin, organization, subnet):
        payload = {"name": "bad", "host": "h", "organization": str(organization.pk), "subnet": str(subnet.pk)}
        error = error_of(
            admin.post(VPNS, {**payload, "config": {"openvpn": [{"name": "x", "mode": "server"}]}}, format="json"),
            422,
        )
        assert any(field.startswith("body.config") for field in fields_of(error))
        assert not Vpn.objects.exists() and not Ca.objects.exists() and not Cert.objects.exists()
        assert not IpAddress.objects.exists()


class TestWireguard:
    def test_keys_address_and_configuration(self, admin, organization, subnet):
        vpn = create_vpn(admin, organization, backend=VpnBackend.WIREGUARD, subnet=str(subnet.pk), name="wg")
        public = base64.b64decode(vpn["public_key"])
        assert len(public) == 32 and "private_key" not in vpn and vpn["ca"] is None
        stored = Vpn.objects.get(pk=vpn["id"])
        private = x25519.X25519PrivateKey.from_private_bytes(base64.b64decode(stored.private_key))
        assert private.public_key().public_bytes_raw() == public
        with connection.cursor() as cursor:
            cursor.execute("SELECT private_key FROM vpn_vpn")
            (raw,) = cursor.fetchone()
        assert raw != stored.private_key and raw.startswith("gAAAA")
        conf = files_of(admin.get(f"{VPNS}{vpn['id']}/configuration/").content)["wg0.conf"]
        assert f"PrivateKey = {stored.private_key}" in conf and "Address = 10.8.0.1/24" in conf

    def test_needs_a_subnet(self, admin, organization):
        payload = {"name": "wg", "host": "h", "organization": str(organization.pk), "backend": VpnBackend.WIREGUARD}
        error = error_of(admin.post(VPNS, payload, format="json"), 422)
        assert "body.subnet" in fields_of(error)

    def test_exhausted_pool_is_409(self, admin, organization):
        tiny = services.save_subnet(organization=organization, name="tiny", subnet="10.9.0.0/30")
        services.allocate_ip(subnet=tiny)
        services.allocate_ip(subnet=tiny)
        payload = {"name": "wg", "host": "h", "organization": str(organization.pk), "subnet": str(tiny.pk)}
        error_of(admin.post(VPNS, {**payload, "backend": VpnBackend.WIREGUARD}, format="json"), 409)
        assert not Vpn.objects.exists()


class TestApi:
    def test_filters(self, admin, organization, other_organization, subnet):
        openvpn = create_vpn(admin, organization, name="a")
        wireguard = create_vpn(admin, organization, name="b", backend=VpnBackend.WIREGUARD, subnet=str(subnet.pk))
        ids = lambda query: {row["id"] for row in admin.get(f"{VPNS}?{query}").json()["results"]}  # noqa: E731
        assert ids(f"backend={VpnBackend.OPENVPN}") == {openvpn["id"]}
        assert ids(f"backend={VpnBackend.WIREGUARD}") == {wireguard["id"]}
        assert ids(f"subnet={subnet.pk}") == {wireguard["id"]}
        assert ids(f"organization={organization.pk}") == {openvpn["id"], wireguard["id"]}
        assert ids(f"organization_slug={organization.slug}") == {openvpn["id"], wireguard["id"]}
        assert ids(f"organization_slug={other_organization.slug}") == set()
        error_of(admin.get(f"{VPNS}?backend=nope"), 422)

    def test_update_and_delete(self, admin, organization, subnet):
        vpn = create_vpn(admin, organization, subnet=str(subnet.pk))
        response = admin.patch(f"{VPNS}{vpn['id']}/", {"host": "vpn2.example.com", "backend": "x"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["host"] == "vpn2.example.com" and response.json()["backend"] == VpnBackend.OPENVPN
        error_of(admin.post(VPNS, {"name": "hq", "host": "h", "organization": str(organization.pk)}), 409)
        error_of(admin.delete(f"{SUBNETS}{subnet.pk}/"), 409)  # the VPN uses it
        assert admin.delete(f"{VPNS}{vpn['id']}/").status_code == 204
        assert not IpAddress.objects.exists()

    def test_tenancy_and_roles(self, admin, client_as, organization, other_organization):
        vpn = create_vpn(admin, organization)
        stranger, _ = client_as(Role.NETWORK_ADMIN, org=other_organization)
        assert stranger.get(VPNS).json()["count"] == 0
        error_of(stranger.get(f"{VPNS}{vpn['id']}/"), 404)
        error_of(stranger.get(f"{VPNS}{vpn['id']}/configuration/"), 404)
        payload = {"name": "x", "host": "h", "organization": str(other_organization.pk), "ca": vpn["ca"]}
        assert "body.ca" in fields_of(error_of(stranger.post(VPNS, payload, format="json"), 422))
        viewer, _ = client_as(Role.VIEWER)
        assert viewer.get(f"{VPNS}{vpn['id']}/").status_code == 200
        error_of(viewer.post(VPNS, {"name": "x", "host": "h", "organization": str(organization.pk)}), 403)
        error_of(viewer.patch(f"{VPNS}{vpn['id']}/", {"host": "x"}, format="json"), 403)
        error_of(viewer.delete(f"{VPNS}{vpn['id']}/"), 403)


def vpn_template(organization, vpn, name):
    template = controller.create_template(
        name=name, organization=organization, type="vpn", backend="netjsonconfig.OpenWrt", config={}
    )
    return services.link_template(template=template, vpn=vpn)


def device_with(organization, template, name="edge-1", mac="00:11:22:33:44:55"):
    device = controller.create_device(organization=organization, name=name, mac_address=mac, templates=[template])
    return device.config


def render_with_clients(config):
    """What the device renders once the controller merges `client_context` into its variables."""
    templates = config.ordered_templates()
    context = rendering.build_context(config, templates, {})
    context.update(services.client_context(config))
    backend = OpenWrt(config=config.config, templates=[t.config for t in templates], context=context)
    return backend.render()


class TestVpnClients:
    def test_openvpn_client_cert_and_revocation(self, organization):
        vpn = services.create_vpn(name="hq", host="vpn.example.com", organization=organization)
        template = vpn_template(organization, vpn, "join-hq")
        assert Template.objects.get(pk=template.pk).config["openvpn"][0]["remote"][0]["host"] == "vpn.example.com"
        config = device_with(organization, template)  # the controller's hook made the client on assignment
        client = VpnClient.objects.get(config=config)
        leaf = x509.load_pem_x509_certificate(client.cert.certificate.encode())
        leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(vpn.ca.certificate.encode()))
        common_name = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert common_name == "00:11:22:33:44:55-edge-1"
        assert ExtendedKeyUsageOID.CLIENT_AUTH in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        rendered = render_with_clients(config)
        archive, _ = controller.render_config(controller._configs_for_render([config.pk]).get())
        files = files_of(archive)  # the real render: the certificate travels as a file of the archive
        assert files["etc/openvpn/hq/client.pem"].strip() == client.cert.certificate.strip()
        assert "option remote 'vpn.example.com 1194'" in rendered.replace("\n\tlist remote", "\n\toption remote")
        assert client.cert.certificate.strip().splitlines()[1] in rendered
        assert services.device_for_certificate(client.cert) == config.device
        assert services.sync_vpn_clients(config=config) == []  # idempotent

        controller.update_device(device=config.device, templates=[])  # the hook revokes the client
        cert = Cert.objects.get(pk=client.cert_id)
        assert cert.revoked and not VpnClient.objects.exists()
        crl = x509.load_pem_x509_crl(
            files_of(services.render_vpn_archive(vpn=vpn))["etc/openvpn/server/crl.pem"].encode()
        )
        assert crl.get_revoked_certificate_by_serial_number(int(cert.serial_number)) is not None

    def test_wireguard_peers_get_unique_addresses(self, organization):
        pool = services.save_subnet(organization=organization, name="wg", subnet="10.20.0.0/24")
        vpn = services.create_vpn(
            name="wg", host="wg.example.com", organization=organization, backend=VpnBackend.WIREGUARD, subnet=pool
        )
        template = vpn_template(organization, vpn, "join-wg")
        before = services.vpn_checksum(vpn=vpn)
        first = device_with(organization, template)
        second = device_with(organization, template, name="edge-2", mac="00:11:22:33:44:56")
        services.sync_vpn_clients(config=first)
        services.sync_vpn_clients(config=second)
        clients = list(VpnClient.objects.select_related("ip").order_by("created"))
        assert [c.ip.ip_address for c in clients] == ["10.20.0.2", "10.20.0.3"]  # .1 is the server's
        conf = files_of(services.render_vpn_archive(vpn=vpn))["wg0.conf"]
        for client in clients:
            assert f"PublicKey = {client.public_key}" in conf and f"AllowedIPs = {client.ip.ip_address}/32" in conf
        assert services.vpn_checksum(vpn=vpn) != before
        rendered = render_with_clients(first)
        assert clients[0].private_key in rendered and "10.20.0.2" in rendered and vpn.public_key in rendered

        services.release_vpn_clients(config=first)  # what deleting the device does
        conf = files_of(services.render_vpn_archive(vpn=vpn))["wg0.conf"]
        assert clients[0].public_key not in conf and clients[1].public_key in conf
        assert not IpAddress.objects.filter(ip_address="10.20.0.2").exists()

    def test_template_must_be_of_type_vpn(self, organization):
        vpn = services.create_vpn(name="hq", host="h", organization=organization)
        template = controller.create_template(name="generic", organization=organization, config={})
        with pytest.raises(Exception, match="type"):
            services.link_template(template=template, vpn=vpn)


def test_subnet_model_is_scoped(organization):
    assert Subnet.objects.visible_to(type("A", (), {"is_superuser": True})()).count() == 0


def test_certificate_group_lookup_over_http(client_as, organization):
    """GET /controller/cert/{common_name}/group/: certificate -> VPN client -> device -> its group."""
    from netfleet.controller.factories import DeviceGroupFactory

    client, _ = client_as(Role.NETWORK_ADMIN)
    vpn = services.create_vpn(name="hq", host="vpn.example.com", organization=organization)
    template = vpn_template(organization, vpn, "join-hq")
    group = DeviceGroupFactory(organization=organization, meta_data={"captive_portal": "lobby"})
    device = controller.create_device(
        organization=organization, name="edge-9", mac_address="00:11:22:33:44:99", group=group, templates=[template]
    )
    common_name = VpnClient.objects.get(config=device.config).cert.common_name
    response = client.get(f"/api/v1/controller/cert/{common_name}/group/?org={organization.slug}")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(group.pk) and response.json()["meta_data"] == {"captive_portal": "lobby"}
    assert client.get(f"/api/v1/controller/cert/{common_name}/group/?org=other-org").status_code == 404
    controller.delete_device(device=device, force=True)  # releases the client: its certificate is revoked
    assert Cert.objects.get(common_name=common_name).revoked
    assert client.get(f"/api/v1/controller/cert/{common_name}/group/").status_code == 404


def test_vpn_template_over_http(client_as, organization, other_organization):
    """Bind a `vpn` template over the template API; assigning it to a device over the device API gives the device
    a client certificate signed by the VPN's CA; unassigning revokes it."""
    admin, _ = client_as(Role.ORG_ADMIN)
    vpn = services.create_vpn(name="hq", host="vpn.example.com", organization=organization)
    foreign = services.create_vpn(name="theirs", host="vpn.example.org", organization=other_organization)
    payload = {"name": "join-hq", "organization": str(organization.pk), "type": "vpn", "config": {}}
    refused = admin.post("/api/v1/controller/template/", {**payload, "vpn": str(foreign.pk)}, format="json")
    assert refused.status_code == 422  # another tenant's VPN does not exist for this caller
    created = admin.post("/api/v1/controller/template/", {**payload, "vpn": str(vpn.pk)}, format="json")
    assert created.status_code == 201, created.content
    template = created.json()
    assert template["vpn"] == str(vpn.pk) and template["config"]["openvpn"]
    device = controller.create_device(organization=organization, name="edge-7", mac_address="00:11:22:33:44:77")
    patched = admin.patch(
        f"/api/v1/controller/device/{device.pk}/", {"config": {"templates": [template["id"]]}}, format="json"
    )
    assert patched.status_code == 200, patched.content
    client = VpnClient.objects.get(config__device=device)
    leaf = x509.load_pem_x509_certificate(client.cert.certificate.encode())
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(vpn.ca.certificate.encode()))
    archive = admin.get(f"/api/v1/controller/device/{device.pk}/configuration/").content
    assert files_of(archive)["etc/openvpn/hq/client.pem"].strip() == client.cert.certificate.strip()
    admin.patch(f"/api/v1/controller/device/{device.pk}/", {"config": {"templates": []}}, format="json")
    assert Cert.objects.get(pk=client.cert_id).revoked and not VpnClient.objects.exists()


def test_wireguard_template_over_http(client_as, organization):
    """A WireGuard `vpn` template assigned over the device API: a peer with a unique pool address, listed by the
    server configuration; unassigning removes the peer and frees the address."""
    admin, _ = client_as(Role.ORG_ADMIN)
    pool = services.save_subnet(organization=organization, name="wg", subnet="10.30.0.0/24")
    vpn = services.create_vpn(
        name="wg", host="wg.example.com", organization=organization, backend=VpnBackend.WIREGUARD, subnet=pool
    )
    payload = {"name": "join-wg", "organization": str(organization.pk), "type": "vpn", "config": {}, "vpn": str(vpn.pk)}
    template = admin.post("/api/v1/controller/template/", payload, format="json").json()
    devices = [
        controller.create_device(organization=organization, name=f"wg-{n}", mac_address=f"00:11:22:33:55:0{n}")
        for n in (1, 2)
    ]
    for device in devices:
        response = admin.patch(
            f"/api/v1/controller/device/{device.pk}/", {"config": {"templates": [template["id"]]}}, format="json"
        )
        assert response.status_code == 200, response.content
    clients = list(VpnClient.objects.select_related("ip").order_by("created"))
    assert [c.ip.ip_address for c in clients] == ["10.30.0.2", "10.30.0.3"]  # .1 is the server's
    server = files_of(admin.get(f"/api/v1/controller/vpn/{vpn.pk}/configuration/").content)["wg0.conf"]
    assert all(f"PublicKey = {c.public_key}" in server for c in clients)
    admin.patch(f"/api/v1/controller/device/{devices[0].pk}/", {"config": {"templates": []}}, format="json")
    server = files_of(admin.get(f"/api/v1/controller/vpn/{vpn.pk}/configuration/").content)["wg0.conf"]
    assert clients[0].public_key not in server and clients[1].public_key in server
    assert not IpAddress.objects.filter(ip_address="10.30.0.2").exists()
