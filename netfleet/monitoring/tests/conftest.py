import pytest

from netfleet.controller.factories import make_device

INGEST_TIME = "%d-%m-%Y_%H:%M:%S.%f"


def document(*, rx=0, tx=0, clients=(), load=0.5, cpus=2, memory=None, disks=None, extra_interfaces=()):
    """A NetJSON DeviceMonitoring document with eth0 counters and wlan0 clients."""
    return {
        "type": "DeviceMonitoring",
        "general": {"hostname": "ap-1", "local_time": 1700000000, "uptime": 1234},
        "resources": {
            "load": [load, 0.4, 0.3],
            "cpus": cpus,
            "memory": memory or {"total": 1000, "free": 200, "buffered": 100, "shared": 10},
            "swap": {"total": 0, "free": 0},
            "disk": disks or [{"used_bytes": 30, "size_bytes": 100, "mount_point": "/", "filesystem": "/dev/root"}],
        },
        "interfaces": [
            {"name": "eth0", "type": "ethernet", "statistics": {"rx_bytes": rx, "tx_bytes": tx}},
            {
                "name": "wlan0",
                "type": "wireless",
                "statistics": {"rx_bytes": 0, "tx_bytes": 0},
                "wireless": {
                    "ssid": "guests",
                    "mode": "access_point",
                    "clients": [{"mac": mac, "vendor": "ACME"} for mac in clients],
                },
            },
            *extra_interfaces,
        ],
        "neighbors": [{"ip_address": "192.0.2.10", "mac_address": "00:11:22:33:44:66", "interface": "br-lan"}],
        "dhcp_leases": [{"expiry": 1700001000, "mac": "00:11:22:33:44:77", "ip": "192.0.2.20"}],
    }


@pytest.fixture
def device(organization):
    return make_device(organization)


@pytest.fixture
def post_document(api_client):
    """post_document(device, doc, time=None, key=None, **params) -> response of the ingest endpoint."""

    def post(device, doc, time=None, key=None, **params):
        query = {"key": key or device.key, **params}
        if time is not None:
            query["time"] = time.strftime(INGEST_TIME)
        url = f"/api/v1/monitoring/device/{device.pk.hex}/?" + "&".join(f"{k}={v}" for k, v in query.items())
        return api_client.post(url, doc, format="json")

    return post
