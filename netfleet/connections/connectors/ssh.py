"""The SSH connector, on asyncssh: trust-on-first-use host keys, connect/exec timeouts, streamed and capped
output, and uploads verified by checksum."""

import asyncio
import contextlib
import hashlib
import shlex

import asyncssh
from django.conf import settings
from django.core.exceptions import ValidationError

from . import AuthenticationFailed, ConnectionFailed, DeviceUnreachable, ExecResult, HostKeyMismatch, Target

PARAMS = {
    # name: (type, minimum, maximum)
    "username": (str, 1, 64),
    "port": (int, 1, 65535),
    "connect_timeout": (int, 1, 300),
    "exec_timeout": (int, 1, 3600),
}
READ_CHUNK = 64 * 1024


def fingerprint(public_key):
    """SHA256 fingerprint of an OpenSSH public key line, as `ssh-keygen -l` prints it."""
    try:
        return asyncssh.import_public_key(public_key).get_fingerprint("sha256")
    except (asyncssh.KeyImportError, ValueError):
        return "unknown key"


class SshConnector:
    name = "ssh"

    @staticmethod
    def validate_credentials(credentials):
        params = credentials.params
        if not isinstance(params, dict):
            raise ValidationError({"params": "Must be a JSON object."})
        errors = {}
        for name in sorted(set(params) - set(PARAMS)):
            errors[f"params.{name}"] = f"Unknown parameter {name!r} for the SSH connector."
        for name, (kind, low, high) in PARAMS.items():
            value = params.get(name)
            if value is None:
                if name == "username":
                    errors["params.username"] = "This field is required."
                continue
            if kind is int and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
                errors[f"params.{name}"] = f"Must be an integer from {low} to {high}."
            elif kind is str and (not isinstance(value, str) or not low <= len(value.strip()) <= high):
                errors[f"params.{name}"] = f"Must be a string of {low} to {high} characters."
        if not credentials.password and not credentials.private_key:
            errors["params.password"] = "Give a password or a private key."
        if credentials.private_key:
            try:
                asyncssh.import_private_key(credentials.private_key)
            except (asyncssh.KeyImportError, ValueError):
                errors["params.key"] = "Not a valid unencrypted private key (OpenSSH or PEM)."
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def target(credentials, *, host, host_key=""):
        params = credentials.params
        return Target(
            host=host,
            port=params.get("port", 22),
            username=params["username"],
            password=credentials.password,
            private_key=credentials.private_key,
            host_key=host_key,
            connect_timeout=params.get("connect_timeout", settings.NETFLEET_CONNECTIONS_CONNECT_TIMEOUT),
            exec_timeout=params.get("exec_timeout", settings.NETFLEET_CONNECTIONS_EXEC_TIMEOUT),
        )

    @staticmethod
    @contextlib.asynccontextmanager
    async def session(target):
        session = SshSession(target)
        await session.open()
        try:
            yield session
        finally:
            session.close()

    @classmethod
    async def probe(cls, target):
        """Log in and run a no-op (`true`): the device is reachable, accepts the credentials and runs commands.
        Returns the host key it presented; raises ConnectionFailed otherwise."""
        async with cls.session(target) as session:
            result = await session.run("true", timeout=target.connect_timeout)
        if result.timed_out:
            raise DeviceUnreachable(
                f"{target.host}:{target.port} accepted the login but did not run a no-op command within "
                f"{target.connect_timeout} s"
            )
        return session.host_key


class SshSession:
    def __init__(self, target):
        self.target = target
        self.connection = None
        self.host_key = ""

    async def open(self):
        target = self.target
        # no trusted key yet: trust on first use (the caller records the key presented)
        known_hosts = ([asyncssh.import_public_key(target.host_key)], [], []) if target.host_key else None
        options = {
            "port": target.port,
            "username": target.username,
            "known_hosts": known_hosts,
            "connect_timeout": target.connect_timeout,
            "login_timeout": target.connect_timeout,
            "keepalive_interval": 15,
            "agent_path": None,
            "client_keys": [asyncssh.import_private_key(target.private_key)] if target.private_key else None,
            "password": target.password or None,
            "preferred_auth": "publickey,password" if target.private_key else "password",
            # AES-GCM first: as strong as ChaCha20-Poly1305 and far cheaper with AES-NI (about a third less CPU per
            # connection on both ends, at fleet scale); a device without it negotiates the rest of the defaults
            "encryption_algs": "^aes128-gcm@openssh.com,aes256-gcm@openssh.com",
        }
        where = f"{target.host}:{target.port}"
        try:
            self.connection = await asyncssh.connect(target.host, **options)
        except asyncssh.HostKeyNotVerifiable:
            raise HostKeyMismatch(
                f"Host key verification failed on {where}: the device no longer presents the trusted host key "
                f"{fingerprint(target.host_key)} (changed or impersonated). Clear the connection's host_key to "
                "trust the new key."
            ) from None
        except asyncssh.PermissionDenied:
            raise AuthenticationFailed(
                f"Authentication failed on {where} for user {target.username!r} (wrong password or key)"
            ) from None
        except TimeoutError:
            raise DeviceUnreachable(f"Timed out connecting to {where} after {target.connect_timeout} s") from None
        except ConnectionRefusedError:
            raise DeviceUnreachable(f"Connection refused by {where}") from None
        except OSError as exc:
            raise DeviceUnreachable(f"Cannot connect to {where}: {exc.strerror or exc}") from None
        except asyncssh.Error as exc:
            raise DeviceUnreachable(f"SSH connection to {where} failed: {exc.reason}") from None
        server_key = self.connection.get_server_host_key()
        self.host_key = server_key.export_public_key().decode().strip() if server_key else ""

    def close(self):
        if self.connection is not None:
            self.connection.close()

    async def run(self, command, *, stdin=None, timeout=None, limit=None, on_output=None):
        """Run a shell command; stdout and stderr interleaved, capped at `limit` bytes, `on_output(text)` called
        as output arrives. A command still running after `timeout` seconds is stopped (exit_code None)."""
        limit = limit or settings.NETFLEET_CONNECTIONS_OUTPUT_LIMIT
        timeout = timeout or self.target.exec_timeout
        chunks, size, truncated = [], 0, False
        try:
            process = await self.connection.create_process(command, stderr=asyncssh.STDOUT, encoding=None)
        except asyncssh.Error as exc:
            raise DeviceUnreachable(f"Could not start the command: {exc.reason}") from None
        if stdin is not None:
            process.stdin.write(stdin.encode())
        process.stdin.write_eof()

        async def collect():
            nonlocal size, truncated
            while True:
                data = await process.stdout.read(READ_CHUNK)
                if not data:
                    break
                appended = size < limit
                if appended:
                    chunks.append(data[: limit - size])
                truncated = truncated or size + len(data) > limit
                size += len(data)
                if on_output is not None and appended:
                    await on_output(b"".join(chunks).decode(errors="replace"))
            return await process.wait()

        try:
            completed = await asyncio.wait_for(collect(), timeout)
        except TimeoutError:
            process.close()
            output = b"".join(chunks).decode(errors="replace")
            return ExecResult(exit_code=None, output=output, truncated=truncated, timed_out=True)
        except asyncssh.Error as exc:
            raise ConnectionFailed(f"The connection dropped while the command ran: {exc.reason}") from None
        output = b"".join(chunks).decode(errors="replace")
        return ExecResult(exit_code=completed.exit_status, output=output, truncated=truncated)

    async def upload(self, data, path):
        """Write `data` to `path` on the device (through a temporary name), verify its sha256 there, then move
        it into place. Raises ConnectionFailed on a checksum mismatch."""
        expected = hashlib.sha256(data).hexdigest()
        partial = f"{path}.part"
        try:
            async with self.connection.start_sftp_client() as sftp, sftp.open(partial, "wb") as remote:
                await remote.write(data)
        except (asyncssh.Error, OSError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            raise ConnectionFailed(f"Upload of {path} failed: {reason}") from None
        quoted, quoted_partial = shlex.quote(path), shlex.quote(partial)
        result = await self.run(f"sha256sum {quoted_partial}")
        found = result.output.split()[0] if result.output.split() else ""
        if result.exit_code != 0 or found != expected:
            await self.run(f"rm -f {quoted_partial}")
            raise ConnectionFailed(f"Upload of {path} failed checksum verification (sha256 {found or '?'})")
        result = await self.run(f"mv -f {quoted_partial} {quoted}")
        if result.exit_code != 0:
            raise ConnectionFailed(f"Could not move the upload into {path}: {result.output.strip()}")
        return expected
