"""Shared helpers of the connections tests."""

from netfleet.connections import services
from netfleet.connections.models import DeviceConnection

CREDENTIALS = "/api/v1/connection/credential/"


def device_url(device, what, pk=None):
    base = f"/api/v1/controller/device/{device.pk}/{what}/"
    return f"{base}{pk}/" if pk else base


def error_of(response, code):
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["request_id"]
    return error


def fields_of(error):
    return {item["field"]: item["message"] for item in error["details"]}


def ssh_credentials(organization, server, *, name="lab", password=None, **params):
    """Credentials for the test sshd (password login unless `password=""` and a key is given)."""
    fields = {"username": server.user, "port": server.port, **params}
    private_key = fields.pop("private_key", "")
    return services.create_credentials(
        organization=organization,
        name=name,
        connector="ssh",
        params=fields,
        password=server.password if password is None else password,
        private_key=private_key,
    )


def connect(device, credentials, **fields):
    return DeviceConnection.objects.create(device=device, credentials=credentials, **fields)
