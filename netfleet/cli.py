"""The `netfleet` command: `serve` runs every process of an instance; anything else is a manage.py command."""

import argparse
import os
import signal
import subprocess
import sys
import time

STOP_GRACE_SECONDS = 10


def _child_commands(args):
    python = sys.executable
    data_dir = os.environ.get("NETFLEET_DATA_DIR", "var")
    http = [
        python, "-m", "granian", "--interface", "wsgi", "netfleet.wsgi:application",
        "--host", args.host, "--port", str(args.port),
        "--workers", str(args.workers), "--blocking-threads", str(args.threads),
        "--no-ws",
    ]  # fmt: skip
    websockets = [
        python, "-m", "uvicorn", "netfleet.asgi:application",
        "--host", args.host, "--port", str(args.ws_port), "--no-access-log", "--lifespan", "off",
    ]  # fmt: skip
    worker = [
        python, "-m", "celery", "-A", "netfleet", "worker", "--loglevel", "INFO",
        "--concurrency", str(args.celery_concurrency), "--queues", args.queues, "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    beat = [
        python, "-m", "celery", "-A", "netfleet", "beat", "--loglevel", "INFO",
        "--schedule", os.path.join(data_dir, "celerybeat-schedule"),
    ]  # fmt: skip
    # stores the metric documents the HTTP workers spool (NETFLEET_MONITORING_SPOOL, set for them in serve())
    monitoring_writer = [python, "-m", "netfleet.cli", "monitoring_writer"]
    commands = {"http": http, "websockets": websockets, "monitoring-writer": monitoring_writer}
    if not args.no_celery:
        commands.update(worker=worker, beat=beat)
    return commands


def serve(argv):
    parser = argparse.ArgumentParser(
        prog="netfleet serve", description="Run the HTTP, websocket, worker and beat processes."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--ws-port", type=int, default=None, help="websocket listener port (default: port + 1)")
    parser.add_argument("--workers", type=int, default=2, help="HTTP worker processes")
    # 2 measured best on 2 cores (docs/PERFORMANCE.md, A/B of every workload): with 4, GIL hand-offs cost ~20 %
    # more CPU per device list or create, and ingest batches no better since its write path got shorter
    parser.add_argument("--threads", type=int, default=2, help="threads per HTTP worker (default: 2)")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--queues", default="default,firmware", help="comma-separated Celery queues for the worker")
    parser.add_argument("--no-celery", action="store_true", help="do not start the worker and beat")
    args = parser.parse_args(argv)
    if args.ws_port is None:
        args.ws_port = args.port + 1

    children = {}
    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    # the HTTP workers hand metric documents to the monitoring writer, which serve runs too
    http_env = {**os.environ, "NETFLEET_MONITORING_SPOOL": "true"}
    for name, command in _child_commands(args).items():
        # each child gets its own process group so a terminal's Ctrl-C reaches them only through us
        env = http_env if name == "http" else None
        children[name] = subprocess.Popen(command, start_new_session=True, env=env)
    print(
        f"netfleet: http://{args.host}:{args.port}/ (websockets on port {args.ws_port}); Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"netfleet: {name} exited with {child.returncode}; stopping", file=sys.stderr, flush=True)
                exit_code = child.returncode or 1
                stopping = True
                break
        time.sleep(0.2)
    _stop_children(children)
    return exit_code


def _stop_children(children):
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netfleet.settings")
    if argv and argv[0] == "serve":
        sys.exit(serve(argv[1:]))
    from django.core.management import execute_from_command_line

    execute_from_command_line(["netfleet", *argv])


if __name__ == "__main__":
    main()
