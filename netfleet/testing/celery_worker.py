"""A real Celery worker process for end-to-end tests: `python -m celery -A netfleet worker`, on the suite's Redis
broker and the test database that pytest-django created (tests using it need `django_db(transaction=True)` so
the worker sees committed rows).

Each pytest-xdist process gets a broker database of its own, so a worker never takes another process's tasks.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BROKER_DB_BASE = 12  # Redis databases 12.. (the cache uses 8.., the suite's fixed urls 0-3)


def isolated_broker_url(url):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return url.rsplit("/", 1)[0] + f"/{BROKER_DB_BASE + index}"


def database_url_for(url, name):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def use_broker(app, url):
    """Point this process's Celery app at `url` (Celery reads CELERY_BROKER_URL from the environment first);
    connections pooled for the previous broker are dropped, not closed: producers may still hold them."""
    if url is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = url
    app._pool = None
    app.amqp._producer_pool = None


class CeleryWorker:
    def __init__(self, *, broker_url, database_url, extra_env=None, concurrency=1):
        self.log_path = Path(tempfile.mkstemp(prefix="netfleet-celery-", suffix=".log")[1])
        self.env = dict(os.environ, CELERY_BROKER_URL=broker_url, DATABASE_URL=database_url, **(extra_env or {}))
        self.env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        self.concurrency = concurrency
        self.process = None

    def start(self, timeout=60):
        command = [
            sys.executable, "-m", "celery", "-A", "netfleet", "worker", "--loglevel", "INFO",
            "--concurrency", str(self.concurrency), "--queues", "default",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"test-{os.getpid()}@%h",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.process.returncode}:\n{self.log()}")
            if " ready." in self.log():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"celery worker not ready after {timeout}s:\n{self.log()}")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self):
        """SIGKILL the worker and its pool processes at once, as a crash or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout=20):
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        self.log_path.unlink(missing_ok=True)
