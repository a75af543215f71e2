"""The `ssh_fanout` workload: run a command on N SSH devices through the API and time until all succeeded.

The devices are asyncssh servers in this process (one asyncio loop in a background thread), each listening on
its own loopback address (127.77.x.y, one port for all, as a fleet sharing one set of credentials would), with
a host key of its own and password login; they answer `echo ok` at once. The fleet is written in bulk through
`netfleet shell`; a Celery worker is started the way `netfleet serve` starts it (the bench instance runs with
`--no-celery`), on the instance's environment; then one `custom` command per device is POSTed over HTTP, and
the commands' details are read until none is `in-progress`.
"""

import asyncio
import contextlib
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import asyncssh

from bench import procs
from bench.instance import BenchError

COMMAND = "echo ok"
USERNAME = "bench"
WORKER_CONCURRENCY = 2  # as `netfleet serve` runs it
POST_THREADS = 8
POLL_THREADS = 4
POLL_INTERVAL = 0.1
READY_TIMEOUT = 60
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT = 20


def address(index):
    return f"127.77.{index // 250}.{index % 250 + 1}"


class _Server(asyncssh.SSHServer):
    def __init__(self, password):
        self.password = password

    def begin_auth(self, username):
        return True

    def password_auth_supported(self):
        return True

    def validate_password(self, username, password):
        return username == USERNAME and secrets.compare_digest(password, self.password)


async def _answer(process):
    if process.command == COMMAND:
        process.stdout.write("ok\n")
        process.exit(0)
    else:
        process.stderr.write(f"bench device: unsupported command {process.command!r}\n")
        process.exit(127)


class SshFleet:
    """N asyncssh servers on 127.77.x.y:port, served by one event loop in a daemon thread."""

    def __init__(self, count):
        self.count = count
        self.password = secrets.token_urlsafe(12)
        self.port = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ssh-fleet", daemon=True)
        self.servers = []

    def __enter__(self):
        # a listening socket per device, and the connections of a batch
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        needed = self.count + 1024
        if soft < needed:
            if hard != resource.RLIM_INFINITY and hard < needed:
                raise BenchError(f"{self.count} SSH devices need {needed} open files; the limit is {hard}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        self.thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=READY_TIMEOUT)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info):
        if self.loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=STOP_TIMEOUT)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=STOP_TIMEOUT)

    async def _listen(self, host, port):
        return await asyncssh.listen(
            host,
            port,
            server_factory=lambda: _Server(self.password),
            server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            process_factory=_answer,
            reuse_address=True,
        )

    async def _start(self):
        # the first listener picks a free port; every other address of 127.0.0.0/8 is free on it
        first = await self._listen(address(0), 0)
        self.port = first.sockets[0].getsockname()[1]
        self.servers = [first]
        for index in range(1, self.count):
            self.servers.append(await self._listen(address(index), self.port))

    async def _stop(self):
        for server in self.servers:
            server.close()
        await asyncio.gather(*(server.wait_closed() for server in self.servers), return_exceptions=True)


FLEET = """
import json
from netfleet.accounts.models import Organization
from netfleet.connections.models import Credentials, DeviceConnection
from netfleet.controller.models import Config, Device

organization = Organization.objects.get(slug="default")
Device.objects.filter(organization=organization, name__startswith="fanout-").delete()
Credentials.objects.filter(organization=organization, name="bench-fanout").delete()
credentials = Credentials(organization=organization, name="bench-fanout", connector="ssh",
                          params={{"username": {username!r}, "port": {port}}}, password={password!r})
credentials.full_clean()
credentials.save()
addresses = {addresses!r}
devices = Device.objects.bulk_create([
    Device(organization=organization, name=f"fanout-{{i:05d}}", key=f"fa{{i:030x}}", management_ip=ip,
           mac_address="02:FA:" + ":".join(f"{{(i >> s) & 0xFF:02X}}" for s in (24, 16, 8, 0)))
    for i, ip in enumerate(addresses)
])
Config.objects.bulk_create([Config(device=device) for device in devices])
DeviceConnection.objects.bulk_create([DeviceConnection(device=device, credentials=credentials) for device in devices])
print(json.dumps([str(device.pk) for device in devices]))
"""


def seed_fleet(instance, fleet):
    """N devices at the fleet's addresses, one shared SSH credentials set and a connection each; their ids."""
    code = FLEET.format(
        username=USERNAME,
        port=fleet.port,
        password=fleet.password,
        addresses=[address(index) for index in range(fleet.count)],
    )
    return json.loads(instance.shell(code).strip().splitlines()[-1])


class Worker:
    """`celery -A netfleet worker` on the instance's environment and data dir, as `netfleet serve` runs it."""

    def __init__(self, instance, concurrency):
        self.instance = instance
        self.concurrency = concurrency
        self.log_path = instance.data_dir / "fanout-worker.log"
        self.process = None

    def __enter__(self):
        command = [
            sys.executable, "-m", "celery", "-A", "netfleet", "worker", "--loglevel", "INFO",
            "--concurrency", str(self.concurrency), "--queues", "default", "--without-gossip", "--without-mingle",
            "--hostname", f"bench-fanout-{os.getpid()}@%h",
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                env=self.instance.env,
                cwd=self.instance.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the celery worker exited with {self.process.returncode}:\n{self.log_tail()}")
            if " ready." in self.log_path.read_text(errors="replace"):
                return self
            time.sleep(0.2)
        self.__exit__()
        raise BenchError(f"the celery worker was not ready within {READY_TIMEOUT} s:\n{self.log_tail()}")

    def __exit__(self, *exc_info):
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines=30):
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def rss_mb(self):
        """Resident memory of the worker: its main process and its pool processes."""
        pids = [self.process.pid, *procs.descendants(self.process.pid)]
        return sum(rss for rss in map(procs.rss_mb, pids) if rss is not None)


def _json(instance, method, path, token, payload=None):
    headers = {"Authorization": f"Bearer {token}"}
    body = None
    if payload is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(payload).encode()
    status, answer = instance.request(method, path, body, headers, timeout=30)
    return status, json.loads(answer) if answer else None


def _process_cpu_seconds(pid):
    """user + system CPU seconds of a live process (0 once it is gone), from /proc like bench.procs."""
    try:
        stat = (procs.PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _cpu_seconds(instance, worker):
    """CPU time used so far by the HTTP server's process tree, the worker's, and this process (the SSH devices
    and the client): where the run's time went."""

    def tree(pid):
        return sum(_process_cpu_seconds(one) for one in [pid, *procs.descendants(pid)])

    return {"http": tree(instance.process.pid), "worker": tree(worker.process.pid), "bench": time.process_time()}


def _finished_at(body):
    return datetime.fromisoformat(body["finished"].replace("Z", "+00:00")).timestamp()


def _wait_for(instance, token, commands, deadline, sample):
    """Wait until no command is in progress or the deadline passes; ({command id: body}, [(device, command) still
    unfinished]). Polling must not load the server it measures: until the last command POSTed has finished (they
    run about in order), only that one is polled; then every detail is read once, POLL_THREADS at once, and
    whatever is still in progress is read again."""

    def get(item):
        device, command = item
        status, body = _json(instance, "GET", f"/api/v1/controller/device/{device}/command/{command}/", token)
        if status != 200:
            raise BenchError(f"GET command {command} of {device} answered {status}: {body}")
        return body

    while time.monotonic() < deadline and get(commands[-1])["status"] == "in-progress":
        sample()
        time.sleep(POLL_INTERVAL)
    pending, finished = list(commands), {}
    with ThreadPoolExecutor(POLL_THREADS) as pool:
        while pending and time.monotonic() < deadline:
            bodies = list(pool.map(get, pending))
            finished.update((body["id"], body) for body in bodies if body["status"] != "in-progress")
            pending = [item for item in pending if item[1] not in finished]
            if pending:
                sample()
                time.sleep(POLL_INTERVAL)
    return finished, pending


def run(instance, token, count, log, *, concurrency=WORKER_CONCURRENCY):
    """The workload's JSON line. `seconds` runs from the first POST to the moment the last command finished (its
    `finished` time: the server shares this machine's clock); `observed_seconds` until this client saw it."""
    with SshFleet(count) as fleet:
        log(f"ssh_fanout: {count} SSH devices on 127.77.x.y:{fleet.port}")
        devices = seed_fleet(instance, fleet)
        with Worker(instance, concurrency) as worker:
            idle_rss = worker.rss_mb()
            peak_rss = idle_rss
            log(f"ssh_fanout: worker ready ({concurrency} processes, {idle_rss:.0f} MB); running `{COMMAND}`")
            payload = {"type": "custom", "input": {"command": COMMAND}}

            def post(device):
                status, body = _json(instance, "POST", f"/api/v1/controller/device/{device}/command/", token, payload)
                if status != 202:
                    raise BenchError(f"POST command on {device} answered {status}: {body}")
                return device, body["id"]

            def sample():
                nonlocal peak_rss
                peak_rss = max(peak_rss, worker.rss_mb())

            cpu_before = _cpu_seconds(instance, worker)
            started_at, started = time.time(), time.monotonic()
            with ThreadPoolExecutor(POST_THREADS) as pool:
                commands = list(pool.map(post, devices))
            posted = time.monotonic() - started
            # generous: a stuck run ends with its unfinished commands reported
            finished, pending = _wait_for(instance, token, commands, started + 60 + count, sample)
            observed = time.monotonic() - started
            sample()
            cpu = {name: round(used - cpu_before[name], 2) for name, used in _cpu_seconds(instance, worker).items()}
    failed = [body for body in finished.values() if body["status"] != "success"]
    for body in failed[:3]:
        log(f"ssh_fanout: command {body['id']} {body['status']}: {body['failure_reason']}")
    elapsed = max(map(_finished_at, finished.values())) - started_at if finished and not pending else observed
    succeeded = len(finished) - len(failed)
    return {
        "name": "ssh_fanout",
        "devices": count,
        "seconds": round(elapsed, 2),
        "devices_per_s": round(succeeded / elapsed, 1) if elapsed > 0 else None,
        "worker_rss_mb": round(peak_rss, 1),
        "failed": len(failed) + len(pending),
        "unfinished": len(pending),
        "observed_seconds": round(observed, 2),
        "post_seconds": round(posted, 2),
        "worker_concurrency": concurrency,
        "worker_idle_rss_mb": round(idle_rss, 1),
        "cpu_s": cpu,
    }
