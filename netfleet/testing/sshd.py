"""A real OpenSSH server on a loopback port, standing in for a managed Linux device.

`SshServer` runs `/usr/sbin/sshd -D -e` with its own host key and config in a throwaway directory. Logins go to
a dedicated unprivileged user (created with `useradd` when running as root; otherwise the current user, with
key authentication only). The user accepts both a password and an authorized key.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from netfleet.testing.servers import _stop, free_port, wait_for_port

SSHD = "/usr/sbin/sshd"
TEST_USER = "netfleet-ssh"
TEST_PASSWORD = "netfleet-ssh-pw-8472"


def _ensure_user(name, password):
    """Create the unprivileged login user (as root) and set its password; returns its passwd entry."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--create-home", "--shell", "/bin/sh", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True)
    Path(entry.pw_dir).mkdir(parents=True, exist_ok=True)
    os.chown(entry.pw_dir, entry.pw_uid, entry.pw_gid)
    return entry


class SshServer:
    """sshd on 127.0.0.1:<free port>; `user`, `password`, `client_key` (an OpenSSH private key) and `home`."""

    def __init__(self):
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="netfleet-sshd-"))
        self.process = None
        self.password = TEST_PASSWORD
        if os.geteuid() == 0:
            self.account = _ensure_user(TEST_USER, TEST_PASSWORD)
        else:
            self.account = pwd.getpwuid(os.geteuid())
        self.user = self.account.pw_name
        self.home = Path(self.account.pw_dir)

    def _keygen(self, path, kind="ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, capture_output=True)
        return path

    def start(self):
        self.host_key = self._keygen(self.root / "ssh_host_ed25519_key")
        self.client_key_path = self._keygen(self.root / "client_ed25519")
        self.client_key = self.client_key_path.read_text()
        keys = self.root / "authorized_keys"
        keys.write_text((self.root / "client_ed25519.pub").read_text())
        os.chmod(self.root, 0o755)  # noqa: S103 - sshd reads the authorized keys as the login user
        os.chmod(keys, 0o644)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        config = self.root / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {keys}",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin no",
                    "UsePAM no",
                    "StrictModes no",
                    f"AllowUsers {self.user}",
                    "MaxStartups 200:30:400",
                    "MaxSessions 50",
                    "LogLevel ERROR",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        self.log_path = self.root / "sshd.log"
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config), "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"),  # noqa: SIM115 - closed with the process
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        return self

    def replace_host_key(self):
        """Restart with a new host key, as a re-imaged (or impersonated) device would present."""
        _stop(self.process)
        self.host_key.unlink()
        Path(f"{self.host_key}.pub").unlink()
        self.port = free_port()
        return self.start()

    def run_as_user(self, *command, **kwargs):
        """Run a command on the "device" as its login user (test setup and assertions)."""
        prefix = ["runuser", "-u", self.user, "--"] if os.geteuid() == 0 and self.user != "root" else []
        return subprocess.run([*prefix, *command], cwd=self.home, capture_output=True, text=True, **kwargs)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self):
        _stop(self.process)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
