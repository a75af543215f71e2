"""A throwaway netfleet instance, started the way a user would: migrate, bootstrap, serve."""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench import procs

HOST = "127.0.0.1"
READY_TIMEOUT = 60
# `netfleet serve` gives its children 10 s to stop before killing them; allow for that plus its own exit.
STOP_TIMEOUT = 20
COMMAND_TIMEOUT = 300
# Settings that would point the instance at servers of the caller's environment instead of the embedded defaults.
DROPPED_ENV = ("DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL", "CHANNEL_LAYER_URL")

# Bearer auth that checks the token's session (`sid` claim) needs one opened by the accounts service; a bare
# AccessToken is enough for the JWT-only authentication that came before it.
MINT_TOKEN = """
from django.contrib.auth import get_user_model

user = get_user_model().objects.get(username="admin")
try:
    from netfleet.accounts.services import start_session
except ImportError:
    from rest_framework_simplejwt.tokens import AccessToken

    print(AccessToken.for_user(user))
else:
    print(start_session(user=user).access_token)
"""

# urllib would honour http_proxy & co.; the suite only ever talks to the loopback server.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BenchError(Exception):
    """A failure that ends the run with a message instead of a traceback."""


def free_port(exclude=()):
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        if port not in exclude:
            return port


class Instance:
    """migrate + bootstrap + `netfleet serve` in data_dir; use as a context manager so the server always stops."""

    def __init__(self, data_dir, *, workers=2, threads=2, database_url=None):
        self.data_dir = Path(data_dir)
        self.workers = workers
        self.threads = threads
        self.netfleet = str(Path(sys.prefix) / "bin" / "netfleet")
        if not os.access(self.netfleet, os.X_OK):
            raise BenchError(f"{self.netfleet} not found: install the project into this virtualenv first")
        self.env = {key: value for key, value in os.environ.items() if key not in DROPPED_ENV}
        self.env.update(
            NETFLEET_DATA_DIR=str(self.data_dir),
            DEBUG="false",
            NETFLEET_ENVIRONMENT="production",
            LOG_LEVEL="WARNING",
            # One client sends every request: keep the rate limiter running (its cost is part of each request)
            # but with limits no run can reach, so the server never answers 429.
            NETFLEET_RATELIMIT_API="1000000000/60",
            NETFLEET_RATELIMIT_BURST="1000000000/1",
        )
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.admin_password = secrets.token_urlsafe(18)
        self.port = None
        self.process = None
        self.log_path = self.data_dir / "serve.log"

    @property
    def base_url(self):
        return f"http://{HOST}:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def manage(self, *args, extra_env=None, timeout=COMMAND_TIMEOUT):
        """Run `netfleet <args>` against this instance's data and return its stdout."""
        env = {**self.env, **(extra_env or {})}
        try:
            result = subprocess.run(
                [self.netfleet, *args], env=env, cwd=self.data_dir, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"`netfleet {args[0]}` did not finish within {timeout} s") from None
        if result.returncode != 0:
            raise BenchError(f"`netfleet {args[0]}` failed with {result.returncode}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def shell(self, code):
        return self.manage("shell", "-c", code)

    def prepare(self):
        self.manage("migrate", "--noinput")
        self.manage("bootstrap", extra_env={"NETFLEET_ADMIN_PASSWORD": self.admin_password})

    def start(self):
        self.port = free_port()
        ws_port = free_port(exclude={self.port})
        command = [
            self.netfleet, "serve", "--host", HOST, "--port", str(self.port), "--ws-port", str(ws_port),
            "--workers", str(self.workers), "--threads", str(self.threads), "--no-celery",
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"`netfleet serve` exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _ = self.request("GET", "/api/v1/health/", timeout=2)
            except OSError:
                status = None
            if status == 200:
                return
            time.sleep(0.25)
        raise BenchError(f"GET /api/v1/health/ did not answer 200 within {READY_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self):
        process, self.process = self.process, None
        if process is None:
            return
        # serve starts each child in its own session, so killing serve's group alone would orphan them:
        # remember every group of the tree before signalling.
        groups = {process.pid} | {pgid for _, pgid in procs.descendants(process.pid).values()}
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):  # a second Ctrl-C means: don't wait
            print("bench: netfleet serve did not stop in time; killing it", file=sys.stderr)
            for pgid in groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=10):
        """(status, body bytes) of one request to the instance; HTTP errors are returned, not raised."""
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers or {})  # noqa: S310
        try:
            with _opener.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()

    def access_token(self):
        """(token, how): from POST /api/v1/auth/login when it exists, else minted in a shell."""
        body = json.dumps({"login": "admin", "password": self.admin_password}).encode()
        status, payload = self.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
        if status == 200:
            token = json.loads(payload).get("access_token")
            if token:
                return token, "login"
        if status != 404:
            # e.g. a reused PostgreSQL database whose admin has another password
            print(f"bench: POST /api/v1/auth/login answered {status}; minting a token instead", file=sys.stderr)
        output = self.shell(MINT_TOKEN)
        return output.strip().splitlines()[-1], "minted"
