"""The tests' OpenWrt stand-in on the real sshd host: a `sysupgrade` script, per-device state, and reboots.

Each device is an sshd (the suite's, or one a test starts); its state lives in the login user's home under
`netfleet-fw-state-<sshd port>` (the script finds its port in $SSH_CONNECTION), so devices never share state.
"""

import os
import subprocess
import threading
import time
from pathlib import Path

from netfleet.connections import services as connection_services
from netfleet.connections.models import DeviceConnection
from netfleet.controller.factories import make_device
from netfleet.firmware.factories import ARCHER_C7_V5_MODEL
from netfleet.testing.servers import _stop, wait_for_port
from netfleet.testing.sshd import SSHD

SYSUPGRADE = """\
#!/bin/sh
# Stand-in for OpenWrt's sysupgrade: records each call and the image it flashed; files in the device's state
# directory make it refuse the image (`refuse`), fail to flash (`fail`) or ask for a reboot (`reboot`: the test
# then stops sshd for a while, as a rebooting device would).
state="$HOME/netfleet-fw-state-${SSH_CONNECTION##* }"
mkdir -p "$state"
echo "$*" >> "$state/calls"
for image; do :; done
if [ "$1" = "--test" ]; then
    if [ -e "$state/refuse" ]; then echo "Image metadata not present"; exit 1; fi
    echo "Image check passed"
    exit 0
fi
if [ -e "$state/fail" ]; then echo "Flash write failed: I/O error" >&2; exit 1; fi
sha256sum "$image" | cut -d' ' -f1 > "$state/flashed.sha256"
head -n 1 "$image" > "$state/version"
rm -f "$image"
echo "Commencing upgrade. Closing all shell sessions."
if [ -e "$state/reboot" ]; then touch "$state/rebooting"; fi
exit 0
"""
VERSION_COMMAND = 'cat "$HOME/netfleet-fw-state-${SSH_CONNECTION##* }/version"'


def install_sysupgrade(server):
    """Write the stand-in into a directory of the login user's home; returns the script's path."""
    directory = server.home / f"netfleet-fw-bin-{os.getpid()}"
    directory.mkdir(exist_ok=True)
    os.chmod(directory, 0o755)  # noqa: S103 - the login user runs the script
    script = directory / "sysupgrade"
    script.write_text(SYSUPGRADE)
    os.chmod(script, 0o755)  # noqa: S103
    return script


def upload_dir(server):
    directory = server.home / f"netfleet-fw-upload-{os.getpid()}"
    server.run_as_user("mkdir", "-p", str(directory), check=True)
    return directory


def firmware_settings(server):
    """NETFLEET_FIRMWARE_* values pointing the OpenWrt upgrader at the stand-in, with short reboot timings."""
    return {
        "NETFLEET_FIRMWARE_OPENWRT_UPGRADE_COMMAND": str(install_sysupgrade(server)),
        "NETFLEET_FIRMWARE_OPENWRT_UPLOAD_DIR": str(upload_dir(server)),
        "NETFLEET_FIRMWARE_OPENWRT_VERSION_COMMAND": VERSION_COMMAND,
        "NETFLEET_FIRMWARE_REBOOT_DELAY": 0.5,
        "NETFLEET_FIRMWARE_REBOOT_POLL": 0.2,
        "NETFLEET_FIRMWARE_REBOOT_TIMEOUT": 10,
    }


class FirmwareHost:
    """One device's state on the sshd host: flags for the stand-in, and what it recorded."""

    def __init__(self, server):
        self.server = server
        self.state = Path(server.home) / f"netfleet-fw-state-{server.port}"
        server.run_as_user("rm", "-rf", str(self.state), check=True)
        server.run_as_user("mkdir", "-p", str(self.state), check=True)

    def set(self, *flags):
        for flag in flags:
            self.server.run_as_user("touch", str(self.state / flag), check=True)

    def read(self, name):
        path = self.state / name
        return path.read_text().strip() if path.exists() else None

    def calls(self):
        text = self.read("calls")
        return text.splitlines() if text else []


def ssh_device(organization, server, *, model=ARCHER_C7_V5_MODEL, name=None, **params):
    """A device reached through `server` with password credentials of its own."""
    device = make_device(organization, model=model, management_ip="127.0.0.1", **({"name": name} if name else {}))
    credentials = connection_services.create_credentials(
        organization=organization,
        name=f"lab-{server.port}",
        params={"username": server.user, "port": server.port, **params},
        password=server.password,
    )
    DeviceConnection.objects.create(device=device, credentials=credentials)
    return device


def restart_listener(server):
    """Start a stopped sshd again on the same port, host key and configuration."""
    server.process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(server.root / "sshd_config"), "-p", str(server.port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(server.port, process=server.process)


def reboot_when_asked(host, *, down=1.0):
    """A thread that, once the stand-in asks for a reboot, stops the device's sshd for `down` seconds (None:
    it never comes back), as a flashing device would."""

    def run():
        marker, deadline = host.state / "rebooting", time.monotonic() + 60
        while not marker.exists():
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        _stop(host.server.process)
        if down is not None:
            time.sleep(down)
            restart_listener(host.server)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
