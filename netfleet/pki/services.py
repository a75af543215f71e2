"""PKI services: generate, import, renew and revoke CAs and certificates, and sign revocation lists.

Everything cryptographic goes through the `cryptography` library. The PEM certificate is the source of truth: after
every generation or import the descriptive fields (subject, validity, serial, key type and size, digest,
extensions) are read back from it, so what the API shows is what the certificate says.
"""

import datetime
import ipaddress

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from netfleet.core.exceptions import Conflict

from .choices import KEY_LENGTHS, Digest, KeyType
from .models import Ca, Cert

HASHES = {Digest.SHA256: hashes.SHA256, Digest.SHA384: hashes.SHA384, Digest.SHA512: hashes.SHA512}
CURVES = {256: ec.SECP256R1, 384: ec.SECP384R1}
CURVE_SIZES = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
NS_CERT_TYPE = ObjectIdentifier("2.16.840.1.113730.1.1")
# DER BIT STRINGs of Netscape's certificate type (bit 0 SSL client, bit 1 SSL server)
NS_CERT_TYPES = {"client": b"\x03\x02\x07\x80", "server": b"\x03\x02\x06\x40"}

SUBJECT_FIELDS = (
    ("country_code", NameOID.COUNTRY_NAME),
    ("state", NameOID.STATE_OR_PROVINCE_NAME),
    ("city", NameOID.LOCALITY_NAME),
    ("organization_name", NameOID.ORGANIZATION_NAME),
    ("organizational_unit_name", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("email", NameOID.EMAIL_ADDRESS),
    ("common_name", NameOID.COMMON_NAME),
)
KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)
# OpenSSL's names of the key usages, as operators write them in extensions
KEY_USAGE_NAMES = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}
EXTENDED_KEY_USAGES = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSPSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
}
SUPPORTED_EXTENSIONS = ("basicConstraints", "keyUsage", "extendedKeyUsage", "subjectAltName", "nsCertType")


class CaInUse(Conflict):
    default_message = "This CA still has certificates or VPN servers; delete or move them first"


class CertInUse(Conflict):
    default_message = "This certificate is used by a VPN server"


def now():
    return timezone.now().replace(microsecond=0)


# --- keys and PEM parsing -----------------------------------------------------------------------------------


def generate_private_key(key_type, key_length):
    if key_type == KeyType.EC:
        return ec.generate_private_key(CURVES[key_length]())
    return rsa.generate_private_key(public_exponent=65537, key_size=key_length)


def private_key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def certificate_pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def load_certificate(pem, field="certificate"):
    try:
        return x509.load_pem_x509_certificate((pem or "").strip().encode())
    except ValueError:
        raise ValidationError({field: "Not a valid PEM-encoded X.509 certificate."}) from None


def load_private_key(pem, passphrase=None, field="private_key"):
    password = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key((pem or "").strip().encode(), password=password)
    except TypeError:
        message = "The key is encrypted: give its passphrase." if password is None else "The key is not encrypted."
        raise ValidationError({field: message}) from None
    except ValueError:
        raise ValidationError({field: "Not a valid PEM-encoded private key (or wrong passphrase)."}) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValidationError({field: "Only RSA and elliptic-curve keys are supported."})
    return key


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(certificate, key):
    return _public_bytes(certificate.public_key()) == _public_bytes(key.public_key())


def issued_by(certificate, issuer):
    """True if `issuer` (an x509.Certificate) signed `certificate`."""
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _signature_hash(key, digest):
    return HASHES[Digest(digest)]()


# --- extensions ---------------------------------------------------------------------------------------------


def _extension_error(message):
    return ValidationError({"extensions": message})


def parse_extension(item):
    """One `{"name", "critical", "value"}` item (OpenSSL-like value syntax) -> (extension value, critical)."""
    name, value, critical = item.get("name"), str(item.get("value", "")), bool(item.get("critical", False))
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if name == "basicConstraints":
        options = {part.split(":", 1)[0].strip().lower(): part.split(":", 1)[-1].strip() for part in parts}
        is_ca = options.get("ca", "FALSE").upper() == "TRUE"
        path_length = options.get("pathlen")
        if path_length is not None and not path_length.isdigit():
            raise _extension_error("basicConstraints: pathlen must be a number.")
        return x509.BasicConstraints(
            ca=is_ca, path_length=int(path_length) if is_ca and path_length else None
        ), critical
    if name == "keyUsage":
        unknown = [part for part in parts if part not in KEY_USAGE_NAMES]
        if unknown or not parts:
            raise _extension_error(f"keyUsage: unknown usages {unknown}; use {', '.join(KEY_USAGE_NAMES)}.")
        chosen = {KEY_USAGE_NAMES[part] for part in parts}
        if chosen & {"encipher_only", "decipher_only"} and "key_agreement" not in chosen:
            raise _extension_error("keyUsage: encipherOnly/decipherOnly need keyAgreement.")
        return x509.KeyUsage(**{usage: usage in chosen for usage in KEY_USAGES}), critical
    if name == "extendedKeyUsage":
        unknown = [part for part in parts if part not in EXTENDED_KEY_USAGES]
        if unknown or not parts:
            raise _extension_error(f"extendedKeyUsage: unknown usages {unknown}; use {', '.join(EXTENDED_KEY_USAGES)}.")
        return x509.ExtendedKeyUsage([EXTENDED_KEY_USAGES[part] for part in parts]), critical
    if name == "subjectAltName":
        names = []
        for part in parts:
            kind, _, text = part.partition(":")
            try:
                if kind == "DNS":
                    names.append(x509.DNSName(text))
                elif kind == "IP":
                    names.append(x509.IPAddress(ipaddress.ip_address(text)))
                elif kind == "email":
                    names.append(x509.RFC822Name(text))
                elif kind == "URI":
                    names.append(x509.UniformResourceIdentifier(text))
                else:
                    raise ValueError(kind)
            except ValueError:
                raise _extension_error(f"subjectAltName: cannot read {part!r} (DNS:, IP:, email:, URI:).") from None
        if not names:
            raise _extension_error("subjectAltName: give at least one name.")
        return x509.SubjectAlternativeName(names), critical
    if name == "nsCertType":
        if value not in NS_CERT_TYPES:
            raise _extension_error("nsCertType: must be client or server.")
        return x509.UnrecognizedExtension(NS_CERT_TYPE, NS_CERT_TYPES[value]), critical
    raise _extension_error(f"Unsupported extension {name!r}; supported: {', '.join(SUPPORTED_EXTENSIONS)}.")


def describe_extensions(certificate):
    """The certificate's extensions as `{"name", "critical", "value"}` (key identifiers left out)."""
    described = []
    for extension in certificate.extensions:
        value = extension.value
        if isinstance(value, x509.BasicConstraints):
            text = "CA:TRUE" if value.ca else "CA:FALSE"
            if value.ca and value.path_length is not None:
                text += f", pathlen:{value.path_length}"
            described.append(("basicConstraints", text))
        elif isinstance(value, x509.KeyUsage):
            names = [name for name, usage in KEY_USAGE_NAMES.items() if _key_usage(value, usage)]
            described.append(("keyUsage", ", ".join(names)))
        elif isinstance(value, x509.ExtendedKeyUsage):
            by_oid = {oid: name for name, oid in EXTENDED_KEY_USAGES.items()}
            described.append(("extendedKeyUsage", ", ".join(by_oid.get(oid, oid.dotted_string) for oid in value)))
        elif isinstance(value, x509.SubjectAlternativeName):
            described.append(("subjectAltName", ", ".join(_general_name(name) for name in value)))
        elif isinstance(value, x509.UnrecognizedExtension) and value.oid == NS_CERT_TYPE:
            kind = next((name for name, der in NS_CERT_TYPES.items() if der == value.value), value.value.hex())
            described.append(("nsCertType", kind))
        else:
            continue
        described[-1] = {"name": described[-1][0], "critical": extension.critical, "value": described[-1][1]}
    return described


def _key_usage(value, usage):
    try:
        return getattr(value, usage)
    except ValueError:  # encipher_only/decipher_only are undefined without key_agreement
        return False


def _general_name(name):
    prefix = {
        x509.DNSName: "DNS",
        x509.IPAddress: "IP",
        x509.RFC822Name: "email",
        x509.UniformResourceIdentifier: "URI",
    }.get(type(name), "other")
    return f"{prefix}:{name.value}"


def _default_extensions(*, is_ca, public_key, issuer_key):
    defaults = {
        x509.SubjectKeyIdentifier: (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        x509.AuthorityKeyIdentifier: (
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            False,
        ),
    }
    if is_ca:
        defaults[x509.BasicConstraints] = (x509.BasicConstraints(ca=True, path_length=None), True)
        usages = {"key_cert_sign", "crl_sign"}
    else:
        defaults[x509.BasicConstraints] = (x509.BasicConstraints(ca=False, path_length=None), False)
        usages = {"digital_signature", "key_encipherment"}
    defaults[x509.KeyUsage] = (x509.KeyUsage(**{usage: usage in usages for usage in KEY_USAGES}), True)
    return defaults


def _build_extensions(obj, *, is_ca, public_key, issuer_key):
    extensions = _default_extensions(is_ca=is_ca, public_key=public_key, issuer_key=issuer_key)
    for item in obj.extensions or []:
        value, critical = parse_extension(item)
        kind = value.oid if isinstance(value, x509.UnrecognizedExtension) else type(value)
        extensions[kind] = (value, critical)
    return list(extensions.values())


# --- signing ------------------------------------------------------------------------------------------------


def subject_of(obj):
    attributes = []
    for field, oid in SUBJECT_FIELDS:
        value = getattr(obj, field)
        if value:
            attributes.append(x509.NameAttribute(oid, value.upper() if field == "country_code" else value))
    return x509.Name(attributes)


def _sign(*, subject, public_key, issuer_name, issuer_key, serial, start, end, extensions, digest):
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(issuer_key, _signature_hash(issuer_key, digest))


def _read_back(obj, certificate, key):
    """Store the certificate and key, and the descriptive fields as the certificate states them."""
    obj.certificate = certificate_pem(certificate)
    obj.private_key = private_key_pem(key)
    obj.serial_number = str(certificate.serial_number)
    obj.validity_start = certificate.not_valid_before_utc
    obj.validity_end = certificate.not_valid_after_utc
    for field, oid in SUBJECT_FIELDS:
        values = certificate.subject.get_attributes_for_oid(oid)
        setattr(obj, field, str(values[0].value) if values else "")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        obj.key_type, obj.key_length = KeyType.EC, CURVE_SIZES.get(key.curve.name, key.curve.key_size)
    else:
        obj.key_type, obj.key_length = KeyType.RSA, key.key_size
    algorithm = certificate.signature_hash_algorithm
    obj.digest = algorithm.name if algorithm is not None and algorithm.name in Digest.values else obj.digest
    obj.extensions = describe_extensions(certificate)


def _validity(obj, default_days):
    start = obj.validity_start or now() - datetime.timedelta(minutes=5)
    end = obj.validity_end or start + datetime.timedelta(days=default_days)
    if end <= now():
        raise ValidationError({"validity_end": "Must be in the future."})
    if end <= start:
        raise ValidationError({"validity_end": "Must be after validity_start."})
    return start, end


def _serial(obj):
    return int(obj.serial_number) if obj.serial_number else x509.random_serial_number()


def _check_generation_parameters(obj):
    if obj.key_length not in KEY_LENGTHS.get(obj.key_type, ()):
        allowed = ", ".join(str(length) for length in KEY_LENGTHS.get(obj.key_type, ()))
        raise ValidationError({"key_length": f"Must be one of {allowed} for {obj.key_type} keys."})
    if not obj.common_name:
        obj.common_name = obj.name


def _import(obj, passphrase, *, issuer=None):
    """Import `obj.certificate` and `obj.private_key`; for a certificate, `issuer` is its CA's certificate."""
    certificate = load_certificate(obj.certificate)
    key = load_private_key(obj.private_key, passphrase)
    if not key_matches(certificate, key):
        raise ValidationError({"private_key": "This private key does not match the certificate."})
    if certificate.not_valid_after_utc <= now():
        raise ValidationError({"certificate": "This certificate has expired."})
    if issuer is not None and not issued_by(certificate, issuer):
        raise ValidationError({"certificate": "This certificate was not issued by the selected CA."})
    if issuer is None and not _is_ca_certificate(certificate):
        raise ValidationError({"certificate": "This is not a CA certificate (basicConstraints CA:FALSE)."})
    _read_back(obj, certificate, key)


def _is_ca_certificate(certificate):
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return True  # old v1 roots carry no extensions


def _is_import(obj):
    return bool(obj.certificate or obj.private_key)


# --- CAs ----------------------------------------------------------------------------------------------------


@transaction.atomic
def create_ca(*, passphrase=None, **fields):
    """Generate a self-signed CA, or import one when `certificate` and `private_key` are given (everything else
    is then read from the certificate). Raises ValidationError (-> 422) on unusable input."""
    ca = Ca(**fields)
    if _is_import(ca):
        if not (ca.certificate and ca.private_key):
            raise ValidationError({"certificate" if not ca.certificate else "private_key": "Required to import."})
        _import(ca, passphrase)
    else:
        _check_generation_parameters(ca)
        start, end = _validity(ca, settings.NETFLEET_PKI_CA_VALIDITY_DAYS)
        key = generate_private_key(ca.key_type, ca.key_length)
        subject = subject_of(ca)
        certificate = _sign(
            subject=subject,
            public_key=key.public_key(),
            issuer_name=subject,
            issuer_key=key,
            serial=_serial(ca),
            start=start,
            end=end,
            extensions=_build_extensions(ca, is_ca=True, public_key=key.public_key(), issuer_key=key),
            digest=ca.digest,
        )
        _read_back(ca, certificate, key)
    ca.full_clean()
    ca.save()
    return ca


def _resign(obj, *, issuer_name, issuer_key, default_days):
    """A new certificate for the same subject and key with a new serial number and validity."""
    old = load_certificate(obj.certificate)
    key = load_private_key(obj.private_key)
    lifetime = old.not_valid_after_utc - old.not_valid_before_utc
    if lifetime <= datetime.timedelta(0):
        lifetime = datetime.timedelta(days=default_days)
    start = now() - datetime.timedelta(minutes=5)
    extensions = [(extension.value, extension.critical) for extension in old.extensions]
    certificate = _sign(
        subject=old.subject,
        public_key=key.public_key(),
        issuer_name=issuer_name or old.subject,
        issuer_key=issuer_key or key,
        serial=x509.random_serial_number(),
        start=start,
        end=start + lifetime,
        extensions=extensions,
        digest=obj.digest,
    )
    _read_back(obj, certificate, key)
    obj.save()
    return obj


@transaction.atomic
def renew_ca(*, ca):
    """Renew a CA (same key, new serial and validity of the same length) and re-sign its unrevoked
    certificates, which also get new serials and validity."""
    ca = Ca.objects.select_for_update().get(pk=ca.pk)
    _resign(ca, issuer_name=None, issuer_key=None, default_days=settings.NETFLEET_PKI_CA_VALIDITY_DAYS)
    ca_certificate = load_certificate(ca.certificate)
    ca_key = load_private_key(ca.private_key)
    for cert in ca.certs.filter(revoked=False):
        _resign(
            cert,
            issuer_name=ca_certificate.subject,
            issuer_key=ca_key,
            default_days=settings.NETFLEET_PKI_CERT_VALIDITY_DAYS,
        )
    return ca


def delete_ca(*, ca):
    """Certificates and VPN servers protect their CA (a cascade would silently destroy a PKI)."""
    try:
        with transaction.atomic():
            ca.delete()
    except ProtectedError:
        raise CaInUse() from None


def certificate_revocation_list(*, ca):
    """The CA's current CRL (PEM), listing every revoked certificate it issued, signed with the CA's key."""
    ca_certificate = load_certificate(ca.certificate)
    key = load_private_key(ca.private_key)
    issued = now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_certificate.subject)
        .last_update(issued)
        .next_update(issued + datetime.timedelta(hours=settings.NETFLEET_PKI_CRL_VALIDITY_HOURS))
    )
    for serial, revoked_at in ca.certs.filter(revoked=True).values_list("serial_number", "revoked_at"):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(int(serial)).revocation_date(revoked_at or issued).build()
        )
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
    )
    return builder.sign(key, _signature_hash(key, ca.digest)).public_bytes(serialization.Encoding.PEM)


# --- certificates -------------------------------------------------------------------------------------------


@transaction.atomic
def create_cert(*, passphrase=None, **fields):
    """Issue a certificate signed by `ca`, or import one (`certificate` + `private_key`, checked against the CA).
    Raises ValidationError (-> 422) on unusable input."""
    cert = Cert(**fields)
    ca = cert.ca
    if ca.organization_id is not None and cert.organization_id != ca.organization_id:
        raise ValidationError({"ca": "This CA belongs to another organization."})
    ca_certificate = load_certificate(ca.certificate, field="ca")
    if _is_import(cert):
        if not (cert.certificate and cert.private_key):
            raise ValidationError({"certificate" if not cert.certificate else "private_key": "Required to import."})
        _import(cert, passphrase, issuer=ca_certificate)
    else:
        _check_generation_parameters(cert)
        start, end = _validity(cert, settings.NETFLEET_PKI_CERT_VALIDITY_DAYS)
        if end > ca_certificate.not_valid_after_utc:
            end = ca_certificate.not_valid_after_utc  # a certificate cannot outlive its CA
        ca_key = load_private_key(ca.private_key)
        key = generate_private_key(cert.key_type, cert.key_length)
        certificate = _sign(
            subject=subject_of(cert),
            public_key=key.public_key(),
            issuer_name=ca_certificate.subject,
            issuer_key=ca_key,
            serial=_serial(cert),
            start=start,
            end=end,
            extensions=_build_extensions(cert, is_ca=False, public_key=key.public_key(), issuer_key=ca_key),
            digest=cert.digest,
        )
        _read_back(cert, certificate, key)
    cert.full_clean(validate_constraints=True)
    cert.save()
    return cert


@transaction.atomic
def renew_cert(*, cert):
    """A new serial number and validity (of the same length) for the same key, signed by the CA."""
    cert = Cert.objects.select_for_update().select_related("ca").get(pk=cert.pk)
    ca_certificate = load_certificate(cert.ca.certificate, field="ca")
    return _resign(
        cert,
        issuer_name=ca_certificate.subject,
        issuer_key=load_private_key(cert.ca.private_key),
        default_days=settings.NETFLEET_PKI_CERT_VALIDITY_DAYS,
    )


def revoke_cert(*, cert):
    """Revoke a certificate (idempotent): it appears in its CA's CRL from now on."""
    if not cert.revoked:
        cert.revoked, cert.revoked_at = True, now()
        Cert.objects.filter(pk=cert.pk, revoked=False).update(revoked=True, revoked_at=cert.revoked_at)
    return cert


def delete_cert(*, cert):
    try:
        with transaction.atomic():
            cert.delete()
    except ProtectedError:
        raise CertInUse() from None


def update_x509(*, obj, **fields):
    """Descriptive fields only (name, notes): the cryptographic ones are fixed once signed."""
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.full_clean()
    obj.save()
    return obj


def find_cert_by_common_name(common_name, organization_slugs=()):
    """The newest unrevoked certificate with this common name, optionally only among the organizations with these
    slugs; None if there is none. Its VPN clients (`cert.vpn_clients`) lead to the device's config."""
    certs = Cert.objects.filter(common_name=common_name, revoked=False).select_related("ca", "organization")
    if organization_slugs:
        certs = certs.filter(organization__slug__in=list(organization_slugs))
    return certs.order_by("-created").first()
