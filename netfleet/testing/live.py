"""An embedded netfleet instance started exactly as `make run` does: migrate, bootstrap, serve."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from netfleet.testing.servers import free_port

SCALE_VARIABLES = ("DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL", "CHANNEL_LAYER_URL")
NETFLEET = str(Path(sys.executable).with_name("netfleet"))


class EmbeddedInstance:
    """Runs `netfleet serve` on free loopback ports with a fresh data dir and the embedded defaults."""

    def __init__(self, *, workers=1, extra_env=None, serve_args=()):
        self.data_dir = Path(tempfile.mkdtemp(prefix="netfleet-embedded-"))
        self.port = free_port()
        self.ws_port = free_port()
        self.workers = workers
        self.serve_args = list(serve_args)
        self.env = {k: v for k, v in os.environ.items() if k not in SCALE_VARIABLES and not k.startswith("PYTEST")}
        self.env.update(NETFLEET_DATA_DIR=str(self.data_dir), LOG_LEVEL="WARNING", **(extra_env or {}))
        self.process = None
        self.admin_password = None
        self.log_path = self.data_dir / "serve.log"

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args):
        return subprocess.run([NETFLEET, *args], env=self.env, capture_output=True, text=True, check=True, timeout=120)

    def start(self, timeout=60):
        self.manage("migrate", "--noinput")
        output = self.manage("bootstrap").stdout
        match = re.search(r"admin password: (\S+)", output)
        self.admin_password = match.group(1) if match else self.env.get("NETFLEET_ADMIN_PASSWORD")
        command = [
            NETFLEET, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--ws-port", str(self.ws_port),
            "--workers", str(self.workers), *self.serve_args,
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"netfleet serve exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"netfleet serve did not become healthy in {timeout}s:\n{self.log()}")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout=30):
        """SIGTERM, as an init system would; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode
