"""Live servers for the test suite: PostgreSQL and Redis in throwaway directories on free loopback ports.

`python -m netfleet.testing.servers -- pytest ...` starts them, runs the command with DATABASE_URL, CACHE_URL,
CELERY_BROKER_URL and CHANNEL_LAYER_URL pointing at them, and stops them afterwards whatever happens.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POSTGRES_BIN = Path(os.environ.get("NETFLEET_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
UNPRIVILEGED_USER = "postgres"  # PostgreSQL refuses to run as root


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=30.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _as_unprivileged(command):
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]


class PostgresServer:
    def __init__(self):
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="netfleet-pg-"))
        self.data = self.root / "data"
        self.process = None

    def start(self):
        if os.geteuid() == 0:
            owner = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            _as_unprivileged(
                [str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-U", "netfleet", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = [
            "-p", str(self.port), "-h", "127.0.0.1", "-k", str(self.root),
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            _as_unprivileged([str(POSTGRES_BIN / "postgres"), "-D", str(self.data), *options]),
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "postgres.log", "wb"),  # noqa: SIM115 - closed with the process
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        for _ in range(100):  # listening is not yet accepting queries
            ready = subprocess.run(
                [str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            )
            if ready.returncode == 0:
                break
            time.sleep(0.1)
        return self

    @property
    def url(self):
        return f"postgres://netfleet@127.0.0.1:{self.port}/postgres"

    def stop(self):
        _stop(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    def __init__(self):
        self.port = free_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                "16",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process)
        return self

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self):
        _stop(self.process)


def _stop(process):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main(argv):
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: python -m netfleet.testing.servers -- COMMAND ...", file=sys.stderr)
        return 2
    postgres, redis = PostgresServer(), RedisServer()
    try:
        postgres.start()
        redis.start()
        env = dict(
            os.environ,
            DATABASE_URL=postgres.url,
            CACHE_URL=redis.url(0),
            CELERY_BROKER_URL=redis.url(1),
            CHANNEL_LAYER_URL=redis.url(2),
            NETFLEET_TEST_REDIS_URL=redis.url(3),
        )
        print(f"test servers: PostgreSQL on {postgres.port}, Redis on {redis.port}", file=sys.stderr, flush=True)
        return subprocess.call(argv, env=env)
    finally:
        redis.stop()
        postgres.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
