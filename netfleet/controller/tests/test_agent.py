"""The device agent protocol, driven as openwisp-config drives it: form posts, plain-text answers."""

import hashlib
import io
import tarfile

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from netfleet.accounts.factories import OrganizationFactory
from netfleet.controller import agent, services
from netfleet.controller.choices import ConfigStatus
from netfleet.controller.factories import TemplateFactory, make_device
from netfleet.controller.models import Config, Device

pytestmark = pytest.mark.django_db

MAC = "00:11:22:33:44:55"


@pytest.fixture
def org_secret():
    organization = OrganizationFactory()
    return organization, services.organization_settings(organization).shared_secret


def register(client, secret, **fields):
    data = {"secret": secret, "name": "ap-lobby", "mac_address": MAC, "backend": "netjsonconfig.OpenWrt", **fields}
    return client.post("/controller/device/register/", data)


def lines(response):
    return dict(line.split(": ", 1) for line in response.content.decode().splitlines())


def consistent_key(base, secret):
    return hashlib.md5(f"{base}+{secret}".encode(), usedforsecurity=False).hexdigest()


class TestRegistration:
    def test_new_device(self, org_secret):
        organization, secret = org_secret
        response = register(Client(), secret, model="TP-Link WDR4300", tags="mesh")
        assert response.status_code == 201
        assert response["X-Openwisp-Controller"] == "true"
        assert response["Content-Type"].startswith("text/plain")
        body = lines(response)
        assert body["registration-result"] == "success" and body["is-new"] == "1" and body["hostname"] == "ap-lobby"
        device = Device.objects.get(pk=body["uuid"])
        assert device.key == body["key"] and device.organization == organization and device.model == "TP-Link WDR4300"
        assert len(body["uuid"]) == 32 and "-" not in body["uuid"]

    def test_consistent_key_finds_the_device_again(self, org_secret):
        _, secret = org_secret
        key = consistent_key(MAC, secret)
        first = lines(register(Client(), secret, key=key))
        again = register(Client(), secret, key=key, name="ap-renamed")
        assert again.status_code == 201
        body = lines(again)
        assert (body["uuid"], body["key"], body["is-new"], body["hostname"]) == (first["uuid"], key, "0", "ap-renamed")
        assert Device.objects.count() == 1

    def test_tags_default_and_required_templates(self, org_secret):
        organization, secret = org_secret
        required = TemplateFactory(organization=organization, required=True, default=True)
        default = TemplateFactory(organization=organization, default=True)
        tagged = TemplateFactory(organization=organization, tags=["mesh"])
        TemplateFactory(organization=organization, tags=["4g"])
        body = lines(register(Client(), secret, tags="mesh"))
        templates = set(Device.objects.get(pk=body["uuid"]).config.templates.values_list("pk", flat=True))
        assert templates == {required.pk, default.pk, tagged.pk}

    @pytest.mark.parametrize(
        ("secret", "expected"),
        [("wrong-secret", "error: unrecognized secret")],
    )
    def test_unknown_secret(self, org_secret, secret, expected):
        response = register(Client(), secret)
        assert response.status_code == 403 and response.content.decode().strip() == expected
        assert response["X-Openwisp-Controller"] == "true"

    def test_registration_disabled(self, org_secret):
        organization, secret = org_secret
        organization.config_settings.registration_enabled = False
        organization.config_settings.save()
        response = register(Client(), secret)
        assert response.status_code == 403 and response.content.decode().strip() == "error: registration disabled"

    def test_deactivated_device(self, org_secret):
        _, secret = org_secret
        key = consistent_key(MAC, secret)
        body = lines(register(Client(), secret, key=key))
        services.deactivate_device(device=Device.objects.get(pk=body["uuid"]))
        response = register(Client(), secret, key=key)
        assert response.status_code == 403 and response.content.decode().strip() == "error: device deactivated"

    @pytest.mark.parametrize("missing", ["secret", "name", "mac_address", "backend"])
    def test_missing_parameter(self, org_secret, missing):
        _, secret = org_secret
        data = {"secret": secret, "name": "x", "mac_address": MAC, "backend": "netjsonconfig.OpenWrt"}
        del data[missing]
        response = Client().post("/controller/register/", data)
        assert response.status_code == 400
        assert response.content.decode().strip() == f'error: missing required parameter "{missing}"'

    @pytest.mark.parametrize(
        "fields", [{"mac_address": "not-a-mac"}, {"name": "bad name!"}, {"backend": "netjsonconfig.Nope"}]
    )
    def test_validation_errors_are_400(self, org_secret, fields):
        _, secret = org_secret
        response = register(Client(), secret, **fields)
        assert response.status_code == 400 and response.content.decode().startswith("error: ")

    def test_name_of_another_device_is_400_and_stores_nothing(self, org_secret):
        # uniqueness is the database's constraint here (no query under the write lock): it must still answer
        _, secret = org_secret
        assert register(Client(), secret).status_code == 201
        response = register(Client(), secret, name="AP-LOBBY", mac_address="00:11:22:33:44:66")
        assert response.status_code == 400
        assert response.content.decode().strip() == "error: a device with this name or MAC address already exists"
        assert Device.objects.count() == 1 and Config.objects.count() == 1

    def test_device_limit(self, org_secret):
        organization, secret = org_secret
        organization.config_settings.device_limit = 1
        organization.config_settings.save()
        assert register(Client(), secret).status_code == 201
        response = register(Client(), secret, name="second", mac_address="00:11:22:33:44:66")
        assert response.status_code == 409 and "limit" in response.content.decode()

    def test_get_is_405(self):
        response = Client().get("/controller/device/register/")
        assert response.status_code == 405 and response["X-Openwisp-Controller"] == "true"


@pytest.fixture
def device():
    organization = OrganizationFactory()
    template = TemplateFactory(organization=organization)
    return make_device(organization, templates=[template])


class TestPolling:
    def test_checksum_is_the_md5_of_the_download(self, device):
        client = Client()
        checksum = client.get(f"/controller/device/checksum/{device.pk.hex}/", {"key": device.key})
        assert checksum.status_code == 200 and checksum["X-Openwisp-Controller"] == "true"
        archive = client.get(f"/controller/device/download-config/{device.pk.hex}/", {"key": device.key})
        assert archive.status_code == 200
        assert archive["Content-Disposition"] == f"attachment; filename={device.name}.tar.gz"
        assert hashlib.md5(archive.content, usedforsecurity=False).hexdigest() == checksum.content.decode()
        with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
            assert "etc/config/network" in tar.getnames()

    def test_dashed_id_and_legacy_paths(self, device):
        for path in (f"/controller/device/checksum/{device.pk}/", f"/controller/checksum/{device.pk.hex}/"):
            assert Client().get(path, {"key": device.key}).status_code == 200

    def test_cache_hit_touches_no_database(self, device):
        url = f"/controller/device/checksum/{device.pk.hex}/"
        Client().get(url, {"key": device.key})  # records last_ip
        with CaptureQueriesContext(connection) as queries:
            response = Client().get(url, {"key": device.key})
        assert response.status_code == 200
        assert len(queries) == 0, [q["sql"] for q in queries]

    def test_cache_hits_are_answered_below_django_as_django_would(self, device):
        """netfleet.wsgi answers a cached poll itself (agent.cached_checksum); anything else goes to the view."""
        url = f"/controller/device/checksum/{device.pk.hex}/"
        by_view = Client(REMOTE_ADDR="127.0.0.1").get(url, {"key": device.key})  # fills the cache, records last_ip

        def shortcut(path=url, key=device.key, method="GET", **environ):
            started = {}
            environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": f"key={key}",
                       "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "testserver", **environ}  # fmt: skip
            body = agent.cached_checksum(
                environ, lambda status, headers: started.update(status=status, headers=headers)
            )
            return body, started

        with CaptureQueriesContext(connection) as queries:
            body, started = shortcut(HTTP_X_REQUEST_ID="poll-1")
        assert queries.captured_queries == []
        assert body == [by_view.content] and started["status"] == "200 OK"
        headers = dict(started["headers"])
        assert headers["X-Openwisp-Controller"] == "true" and headers["X-Request-ID"] == "poll-1"
        assert headers["Content-Type"] == by_view["Content-Type"]
        assert shortcut(path=url[:-1])[0] == [by_view.content]  # without the trailing slash, as the agent may ask
        # the view answers everything else: wrong key, a new address, other methods, unknown devices
        assert shortcut(key="wrong")[0] is None
        assert shortcut(REMOTE_ADDR="192.0.2.9")[0] is None
        assert shortcut(QUERY_STRING=f"key={device.key}&management_ip=10.9.9.9")[0] is None
        assert shortcut(method="HEAD")[0] is None and shortcut(method="POST")[0] is None
        assert shortcut(path=f"/controller/device/checksum/{'0' * 32}/")[0] is None
        assert shortcut(path=f"/controller/device/download-config/{device.pk.hex}/")[0] is None
        assert shortcut(HTTP_HOST="evil.example")[0] is None

    def test_hosts_outside_allowed_hosts_are_refused(self, device):
        response = Client(HTTP_HOST="evil.example").get(
            f"/controller/device/checksum/{device.pk.hex}/", {"key": device.key}
        )
        assert response.status_code == 400

    def test_records_last_ip_and_management_ip(self, device):
        Client().get(
            f"/controller/device/checksum/{device.pk.hex}/",
            {"key": device.key, "management_ip": "10.8.0.5"},
            REMOTE_ADDR="192.0.2.7",
        )
        device.refresh_from_db()
        assert (device.last_ip, device.management_ip) == ("192.0.2.7", "10.8.0.5")

    def test_polling_never_means_applied(self, device):
        Client().get(f"/controller/device/checksum/{device.pk.hex}/", {"key": device.key})
        Client().get(f"/controller/device/download-config/{device.pk.hex}/", {"key": device.key})
        assert Config.objects.get(device=device).status == ConfigStatus.MODIFIED

    def test_wrong_key_missing_key_unknown_device(self, device):
        url = f"/controller/device/checksum/{device.pk.hex}/"
        wrong = Client().get(url, {"key": "x" * 32})
        assert wrong.status_code == 403 and wrong.content.decode().strip() == "error: wrong key"
        missing = Client().get(url)
        assert (
            missing.status_code == 400 and missing.content.decode().strip() == 'error: missing required parameter "key"'
        )
        unknown = Client().get("/controller/device/checksum/0123456789abcdef0123456789abcdef/", {"key": device.key})
        assert unknown.status_code == 404 and unknown["X-Openwisp-Controller"] == "true"
        assert Client().get("/controller/device/checksum/garbage/", {"key": device.key}).status_code == 404

    def test_wrong_key_is_refused_from_cache_too(self, device):
        url = f"/controller/device/checksum/{device.pk.hex}/"
        Client().get(url, {"key": device.key})
        assert Client().get(url, {"key": "y" * 32}).status_code == 403

    def test_deactivated_device_and_inactive_organization_are_404(self, device):
        url = f"/controller/device/checksum/{device.pk.hex}/"
        services.deactivate_device(device=device)
        assert Client().get(url, {"key": device.key}).status_code == 404
        services.activate_device(device=device)
        assert Client().get(url, {"key": device.key}).status_code == 200
        device.organization.is_active = False
        device.organization.save()
        services.forget_agent_cache(device.pk)
        assert Client().get(url, {"key": device.key}).status_code == 404


class TestReports:
    def test_report_status_and_update_info(self, device):
        url = f"/controller/device/report-status/{device.pk.hex}/"
        response = Client().post(url, {"key": device.key, "status": "applied"})
        assert response.status_code == 200
        assert response.content.decode() == "report-result: success\ncurrent-status: applied\n"
        assert Config.objects.get(device=device).status == ConfigStatus.APPLIED
        error = Client().post(url, {"key": device.key, "status": "error", "error_reason": "uci: parse error"})
        assert error.status_code == 200
        config = Config.objects.get(device=device)
        assert (config.status, config.error_reason) == (ConfigStatus.ERROR, "uci: parse error")
        info = Client().post(
            f"/controller/update-info/{device.pk.hex}/",
            {"key": device.key, "model": "GL.iNet", "os": "OpenWrt 23.05", "system": "MediaTek"},
        )
        assert info.status_code == 200 and info.content.decode() == "update-info: success\n"
        device.refresh_from_db()
        assert (device.model, device.os, device.system) == ("GL.iNet", "OpenWrt 23.05", "MediaTek")

    def test_bad_status(self, device):
        url = f"/controller/device/report-status/{device.pk.hex}/"
        assert Client().post(url, {"key": device.key, "status": "bogus"}).status_code == 400
        assert Client().post(url, {"key": device.key}).status_code == 400
        assert Client().post(url, {"key": "z" * 32, "status": "applied"}).status_code == 403

    def test_deactivation_completes_on_report(self, device):
        services.deactivate_device(device=device)
        assert Config.objects.get(device=device).status == ConfigStatus.DEACTIVATING
        # a deactivated device's agent still reports; the reference system lets it finish deactivating
        Device.objects.filter(pk=device.pk).update(is_deactivated=False)
        Client().post(f"/controller/device/report-status/{device.pk.hex}/", {"key": device.key, "status": "applied"})
        assert Config.objects.get(device=device).status == ConfigStatus.DEACTIVATED


def test_scripted_agent_end_to_end(org_secret):
    """register -> checksum -> download -> verify md5 -> report applied; template change -> modified."""
    organization, secret = org_secret
    template = TemplateFactory(organization=organization, default=True)
    agent = Client(REMOTE_ADDR="198.51.100.20")
    registered = lines(register(agent, secret, key=consistent_key(MAC, secret)))
    uuid, key = registered["uuid"], registered["key"]
    checksum = agent.get(f"/controller/checksum/{uuid}/", {"key": key}).content.decode()
    archive = agent.get(f"/controller/download-config/{uuid}/", {"key": key}).content
    assert hashlib.md5(archive, usedforsecurity=False).hexdigest() == checksum
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}
    assert "config interface 'eth0'" in files["etc/config/network"]
    agent.post(f"/controller/report-status/{uuid}/", {"key": key, "status": "applied"})
    assert Config.objects.get(device_id=uuid).status == ConfigStatus.APPLIED
    # the agent polls once more as its connectivity test: still applied
    assert agent.get(f"/controller/checksum/{uuid}/", {"key": key}).content.decode() == checksum
    assert Config.objects.get(device_id=uuid).status == ConfigStatus.APPLIED

    template.config = {"interfaces": [{"name": "eth0", "type": "ethernet", "mtu": 1400}]}
    template.save()
    services.refresh_affected(config_ids=services.configs_using_template(template))
    new_checksum = agent.get(f"/controller/checksum/{uuid}/", {"key": key}).content.decode()
    assert new_checksum != checksum
    assert Config.objects.get(device_id=uuid).status == ConfigStatus.MODIFIED
