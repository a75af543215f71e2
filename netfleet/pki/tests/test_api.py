"""The PKI API over HTTP: CAs and certificates created, imported, renewed, revoked and listed in a CRL, verified
with `cryptography`; private keys encrypted at rest and shown only to `pki:write` callers in detail responses."""

import datetime
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.db import connection

from netfleet.accounts.roles import Role
from netfleet.pki import services
from netfleet.pki.models import Ca, Cert

pytestmark = pytest.mark.django_db

CAS = "/api/v1/controller/ca/"
CERTS = "/api/v1/controller/cert/"


def error_of(response, code):
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["request_id"]
    return error


def fields_of(error):
    return {item["field"]: item["message"] for item in error.get("details") or []}


def pem_cert(text):
    return x509.load_pem_x509_certificate(text.encode())


def pem_key(text):
    return serialization.load_pem_private_key(text.encode(), password=None)


def public_der(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def admin(client_as):
    client, _user = client_as(Role.NETWORK_ADMIN)
    return client


@pytest.fixture
def viewer(client_as):
    client, _user = client_as(Role.VIEWER)
    return client


def create_ca(client, organization, **fields):
    payload = {"name": "root", "organization": str(organization.pk), "key_type": "ec", "key_length": 256}
    payload.update(fields)
    response = client.post(CAS, payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def create_cert(client, organization, ca_id, **fields):
    payload = {"name": "leaf", "organization": str(organization.pk), "ca": ca_id, "key_type": "ec", "key_length": 256}
    payload.update(fields)
    response = client.post(CERTS, payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def self_signed(key, *, is_ca=True, days=30, common_name="imported"):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(4242)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .sign(key, hashes.SHA384())
    )


def to_pem(obj):
    if hasattr(obj, "private_bytes"):
        return services.private_key_pem(obj)
    return services.certificate_pem(obj)


class TestCreate:
    def test_created_ca_and_cert_verify(self, admin, organization):
        ca = create_ca(
            admin,
            organization,
            digest="sha384",
            common_name="Acme Root",
            country_code="IT",
            organization_name="Acme",
            email="pki@example.com",
            serial_number="123456789",
        )
        root = pem_cert(ca["certificate"])
        assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Acme Root"
        assert root.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "IT"
        assert root.serial_number == 123456789 and ca["serial_number"] == "123456789"
        assert root.signature_hash_algorithm.name == "sha384"
        root.verify_directly_issued_by(root)  # self-signed
        assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
        assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
        assert isinstance(root.public_key(), ec.EllipticCurvePublicKey) and root.public_key().curve.key_size == 256
        assert public_der(pem_key(ca["private_key"]).public_key()) == public_der(root.public_key())

        cert = create_cert(
            admin,
            organization,
            ca["id"],
            common_name="vpn.example.com",
            extensions=[
                {"name": "extendedKeyUsage", "critical": False, "value": "serverAuth"},
                {"name": "subjectAltName", "critical": False, "value": "DNS:vpn.example.com, IP:10.0.0.1"},
                {"name": "nsCertType", "critical": False, "value": "server"},
            ],
            validity_end=(datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).isoformat(),
        )
        leaf = pem_cert(cert["certificate"])
        leaf.verify_directly_issued_by(root)  # signature and chain
        assert leaf.issuer == root.subject
        assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["vpn.example.com"]
        now = datetime.datetime.now(datetime.UTC)
        assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc
        assert leaf.not_valid_after_utc <= now + datetime.timedelta(days=30)
        assert {"name": "nsCertType", "critical": False, "value": "server"} in cert["extensions"]
        assert public_der(pem_key(cert["private_key"]).public_key()) == public_der(leaf.public_key())

    def test_rsa_ca(self, admin, organization):
        ca = create_ca(admin, organization, key_type="rsa", key_length=2048)
        assert pem_cert(ca["certificate"]).public_key().key_size == 2048
        assert ca["key_type"] == "rsa" and ca["key_length"] == 2048 and ca["digest"] == "sha256"

    def test_bad_parameters_are_422(self, admin, organization):
        base = {"name": "x", "organization": str(organization.pk)}
        cases = [
            ({"key_type": "rsa", "key_length": 1024}, "body.key_length"),
            ({"key_type": "ec", "key_length": 521}, "body.key_length"),
            ({"digest": "md5"}, "body.digest"),
            ({"key_type": "ec", "key_length": 256, "validity_end": "2001-01-01T00:00:00Z"}, "body.validity_end"),
            ({"key_type": "ec", "key_length": 256, "extensions": [{"name": "bogus", "value": "1"}]}, "body.extensions"),
            ({"key_type": "ec", "key_length": 256, "country_code": "Italy"}, "body.country_code"),
        ]
        for extra, field in cases:
            error = error_of(admin.post(CAS, {**base, **extra}, format="json"), 422)
            assert field in fields_of(error), (extra, error)
        assert not Ca.objects.exists()


class TestImport:
    def test_imported_ca_round_trips(self, admin, organization):
        key = ec.generate_private_key(ec.SECP384R1())
        certificate = self_signed(key)
        payload = {
            "name": "imported",
            "organization": str(organization.pk),
            "certificate": to_pem(certificate),
            "private_key": to_pem(key),
        }
        response = admin.post(CAS, payload, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert pem_cert(body["certificate"]) == certificate
        assert body["serial_number"] == "4242" and body["common_name"] == "imported"
        assert body["key_type"] == "ec" and body["key_length"] == 384 and body["digest"] == "sha384"
        assert body["validity_end"].startswith(certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S"))
        detail = admin.get(f"{CAS}{body['id']}/").json()
        assert pem_cert(detail["certificate"]) == certificate
        assert public_der(pem_key(detail["private_key"]).public_key()) == public_der(key.public_key())

        # a certificate issued elsewhere by that CA imports under it
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device-1")])
        leaf = (
            x509.CertificateBuilder()
            .subject_name(leaf_name)
            .issuer_name(certificate.subject)
            .public_key(leaf_key.public_key())
            .serial_number(77)
            .not_valid_before(certificate.not_valid_before_utc)
            .not_valid_after(certificate.not_valid_after_utc)
            .sign(key, hashes.SHA256())
        )
        response = admin.post(
            CERTS,
            {
                "name": "device-1",
                "organization": str(organization.pk),
                "ca": body["id"],
                "certificate": to_pem(leaf),
                "private_key": to_pem(leaf_key),
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["common_name"] == "device-1" and response.json()["serial_number"] == "77"

    def test_encrypted_key_with_passphrase(self, admin, organization):
        key = ec.generate_private_key(ec.SECP256R1())
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret-pass"),
        ).decode()
        payload = {"name": "enc", "organization": str(organization.pk), "certificate": to_pem(self_signed(key))}
        error = error_of(admin.post(CAS, {**payload, "private_key": encrypted}, format="json"), 422)
        assert "body.private_key" in fields_of(error)
        response = admin.post(CAS, {**payload, "private_key": encrypted, "passphrase": "s3cret-pass"}, format="json")
        assert response.status_code == 201, response.content
        assert "passphrase" not in response.json()

    def test_bad_imports_are_422_and_create_nothing(self, admin, organization):
        key = ec.generate_private_key(ec.SECP256R1())
        other = ec.generate_private_key(ec.SECP256R1())
        base = {"name": "bad", "organization": str(organization.pk)}
        cases = [
            ({"certificate": "-----BEGIN CERTIFICATE-----\ngarbage\n", "private_key": to_pem(key)}, "certificate"),
            ({"certificate": to_pem(self_signed(key)), "private_key": "not a key"}, "private_key"),
            ({"certificate": to_pem(self_signed(key)), "private_key": to_pem(other)}, "private_key"),  # mismatch
            ({"certificate": to_pem(self_signed(key, days=5)), "private_key": to_pem(key)}, "certificate"),  # expired
            ({"certificate": to_pem(self_signed(key, is_ca=False)), "private_key": to_pem(key)}, "certificate"),
            ({"certificate": to_pem(self_signed(key))}, "private_key"),
        ]
        for extra, field in cases:
            error = error_of(admin.post(CAS, {**base, **extra}, format="json"), 422)
            assert error["message"] == "Validation error"
            assert f"body.{field}" in fields_of(error), (field, error)
        assert not Ca.objects.exists()

    def test_cert_not_issued_by_the_ca_is_422(self, admin, organization):
        ca = create_ca(admin, organization)
        key = ec.generate_private_key(ec.SECP256R1())
        payload = {
            "name": "stranger",
            "organization": str(organization.pk),
            "ca": ca["id"],
            "certificate": to_pem(self_signed(key, is_ca=False)),
            "private_key": to_pem(key),
        }
        error = error_of(admin.post(CERTS, payload, format="json"), 422)
        assert "not issued by the selected CA" in fields_of(error)["body.certificate"]
        assert not Cert.objects.exists()


class TestRenewRevokeCrl:
    def test_renew_cert_changes_serial_and_validity_keeps_key(self, admin, organization):
        ca = create_ca(admin, organization)
        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
        cert = create_cert(admin, organization, ca["id"], validity_start=start.isoformat())
        response = admin.post(f"{CERTS}{cert['id']}/renew/")
        assert response.status_code == 200, response.content
        renewed = response.json()
        old, new = pem_cert(cert["certificate"]), pem_cert(renewed["certificate"])
        assert new.serial_number != old.serial_number and renewed["serial_number"] == str(new.serial_number)
        assert new.not_valid_before_utc > old.not_valid_before_utc
        assert new.not_valid_after_utc > old.not_valid_after_utc
        assert renewed["validity_end"] != cert["validity_end"]
        assert public_der(new.public_key()) == public_der(old.public_key())
        new.verify_directly_issued_by(pem_cert(ca["certificate"]))

    def test_renew_ca_resigns_issued_certs(self, admin, organization):
        ca = create_ca(admin, organization)
        cert = create_cert(admin, organization, ca["id"])
        revoked = create_cert(admin, organization, ca["id"], name="gone")
        admin.post(f"{CERTS}{revoked['id']}/revoke/")
        response = admin.post(f"{CAS}{ca['id']}/renew/")
        assert response.status_code == 200, response.content
        new_root = pem_cert(response.json()["certificate"])
        assert new_root.serial_number != pem_cert(ca["certificate"]).serial_number
        assert public_der(new_root.public_key()) == public_der(pem_cert(ca["certificate"]).public_key())
        leaf = pem_cert(admin.get(f"{CERTS}{cert['id']}/").json()["certificate"])
        assert leaf.serial_number != pem_cert(cert["certificate"]).serial_number
        leaf.verify_directly_issued_by(new_root)
        # a revoked certificate is left as it was (it stays in the CRL under its serial)
        assert admin.get(f"{CERTS}{revoked['id']}/").json()["serial_number"] == revoked["serial_number"]

    def test_revoked_cert_is_in_the_crl_signed_by_the_ca(self, admin, viewer, organization):
        ca = create_ca(admin, organization)
        kept = create_cert(admin, organization, ca["id"], name="kept")
        gone = create_cert(admin, organization, ca["id"], name="gone")
        empty = x509.load_pem_x509_crl(admin.get(f"{CAS}{ca['id']}/crl/").content)
        assert len(list(empty)) == 0

        response = admin.post(f"{CERTS}{gone['id']}/revoke/")
        assert response.status_code == 200 and response.json()["revoked"] is True
        assert response.json()["revoked_at"]
        response = viewer.get(f"{CAS}{ca['id']}/crl/")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/x-pem-file"
        assert response["Content-Disposition"] == f'attachment; filename="{ca["id"]}.crl"'
        crl = x509.load_pem_x509_crl(response.content)
        root = pem_cert(ca["certificate"])
        assert crl.is_signature_valid(root.public_key())
        assert crl.issuer == root.subject
        assert crl.get_revoked_certificate_by_serial_number(int(gone["serial_number"])) is not None
        assert crl.get_revoked_certificate_by_serial_number(int(kept["serial_number"])) is None
        assert crl.next_update_utc > datetime.datetime.now(datetime.UTC)

    def test_delete_ca_with_certs_is_409(self, admin, organization):
        ca = create_ca(admin, organization)
        cert = create_cert(admin, organization, ca["id"])
        error_of(admin.delete(f"{CAS}{ca['id']}/"), 409)
        assert admin.delete(f"{CERTS}{cert['id']}/").status_code == 204
        assert admin.delete(f"{CAS}{ca['id']}/").status_code == 204

    def test_only_name_and_notes_change(self, admin, organization):
        ca = create_ca(admin, organization)
        response = admin.patch(
            f"{CAS}{ca['id']}/", {"name": "renamed", "notes": "n", "common_name": "evil"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "renamed" and response.json()["common_name"] == ca["common_name"]
        assert response.json()["certificate"] == ca["certificate"]


class TestPrivateKeys:
    def test_raw_column_is_ciphertext(self, admin, organization):
        ca = create_ca(admin, organization)
        cert = create_cert(admin, organization, ca["id"])
        with connection.cursor() as cursor:
            cursor.execute("SELECT private_key FROM pki_ca WHERE id = %s", [uuid.UUID(ca["id"]).hex])
            rows = cursor.fetchall()
            if not rows:  # PostgreSQL stores uuids natively
                cursor.execute("SELECT private_key FROM pki_ca WHERE id = %s", [uuid.UUID(ca["id"])])
                rows = cursor.fetchall()
            cursor.execute("SELECT private_key FROM pki_cert")
            rows += cursor.fetchall()
        assert len(rows) == 2
        for (raw,) in rows:
            assert "PRIVATE KEY" not in raw and raw.startswith("gAAAA")  # a Fernet token
        assert Ca.objects.get(pk=ca["id"]).private_key.startswith("-----BEGIN PRIVATE KEY-----")
        assert cert["private_key"] == Cert.objects.get(pk=cert["id"]).private_key

    def test_lists_never_include_keys(self, admin, organization):
        ca = create_ca(admin, organization)
        create_cert(admin, organization, ca["id"])
        for url in (CAS, CERTS):
            body = admin.get(url).json()
            assert set(body) == {"count", "next", "previous", "results"} and body["count"] == 1
            assert "private_key" not in body["results"][0] and "certificate" in body["results"][0]

    def test_viewer_never_sees_a_key_and_cannot_write(self, admin, viewer, organization):
        ca = create_ca(admin, organization)
        cert = create_cert(admin, organization, ca["id"])
        for url in (f"{CAS}{ca['id']}/", f"{CERTS}{cert['id']}/"):
            response = viewer.get(url)
            assert response.status_code == 200 and "private_key" not in response.json()
        error_of(viewer.post(CAS, {"name": "x", "organization": str(organization.pk)}, format="json"), 403)
        error_of(viewer.post(f"{CERTS}{cert['id']}/revoke/"), 403)
        error_of(viewer.post(f"{CAS}{ca['id']}/renew/"), 403)
        error_of(viewer.patch(f"{CAS}{ca['id']}/", {"name": "y"}, format="json"), 403)
        error_of(viewer.delete(f"{CERTS}{cert['id']}/"), 403)
        assert not Cert.objects.get(pk=cert["id"]).revoked


class TestTenancy:
    def test_other_tenant_objects_are_404(self, admin, client_as, organization, other_organization):
        ca = create_ca(admin, organization)
        cert = create_cert(admin, organization, ca["id"])
        stranger, _user = client_as(Role.NETWORK_ADMIN, org=other_organization)
        assert stranger.get(CAS).json()["count"] == 0
        for url in (f"{CAS}{ca['id']}/", f"{CAS}{ca['id']}/crl/", f"{CERTS}{cert['id']}/"):
            error_of(stranger.get(url), 404)
        error_of(stranger.post(f"{CERTS}{cert['id']}/revoke/"), 404)
        # issuing under another tenant's CA: that CA does not exist for the caller
        payload = {"name": "x", "organization": str(other_organization.pk), "ca": ca["id"], "key_type": "ec"}
        error = error_of(stranger.post(CERTS, {**payload, "key_length": 256}, format="json"), 422)
        assert "body.ca" in fields_of(error)
        # nor may it create in the first organization
        error = error_of(stranger.post(CAS, {"name": "x", "organization": str(organization.pk)}, format="json"), 422)
        assert "body.organization" in fields_of(error)

    def test_filters(self, admin, organization):
        ca = create_ca(admin, organization)
        create_cert(admin, organization, ca["id"], name="a")
        gone = create_cert(admin, organization, ca["id"], name="b")
        admin.post(f"{CERTS}{gone['id']}/revoke/")
        assert admin.get(f"{CERTS}?revoked=true").json()["count"] == 1
        assert admin.get(f"{CERTS}?ca={ca['id']}").json()["count"] == 2
        assert admin.get(f"{CAS}?organization_slug={organization.slug}").json()["count"] == 1
        assert admin.get(f"{CAS}?organization_slug=nope").json()["count"] == 0


def test_find_cert_by_common_name(admin, organization, other_organization):
    ca = create_ca(admin, organization)
    cert = create_cert(admin, organization, ca["id"], common_name="device-7")
    assert str(services.find_cert_by_common_name("device-7").pk) == cert["id"]
    assert str(services.find_cert_by_common_name("device-7", [organization.slug]).pk) == cert["id"]
    assert services.find_cert_by_common_name("device-7", [other_organization.slug]) is None
    admin.post(f"{CERTS}{cert['id']}/revoke/")
    assert services.find_cert_by_common_name("device-7") is None
