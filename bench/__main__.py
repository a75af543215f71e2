"""`python -m bench`: benchmark a fresh, production-like netfleet instance with wrk."""

import argparse
import json
import os
import signal
import sys
import tempfile
import time

from bench import fanout, procs, seed, wrk
from bench.instance import BenchError, Instance
from bench.workloads import BY_NAME, INGEST_DOCUMENT, WORKLOADS, Context

MAX_DURATION = 30


def _bounded_int(low, high):
    def parse(value):
        number = int(value)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return number

    return parse


def parse_args(argv):
    listing = "\n".join(f"  {workload.name:<12} {workload.description}" for workload in WORKLOADS)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Start netfleet as a user would (production settings, fresh temporary data dir,\n"
            "`netfleet serve --no-celery`), seed it, drive each workload with wrk and print one JSON line per\n"
            'workload on stdout ({"name", "requests", "rps", "p50_ms", "p99_ms", "errors", ...}), then a line\n'
            '"rss" with the resident memory of the HTTP worker processes. Progress goes to stderr.\n'
            "Exits 1 if a workload failed or had errors (non-2xx/3xx responses or socket errors)."
        ),
        epilog=(
            f"workloads:\n{listing}\n\n"
            "environment:\n"
            "  BENCH_DATABASE_URL  DATABASE_URL for the instance (an empty throwaway PostgreSQL database);\n"
            "                      default: a fresh SQLite file in the temporary data dir"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workload", action="append", choices=[*BY_NAME, "config_render_cold", "ssh_fanout"], metavar="NAME",
        help="run only this workload (repeatable); default: all",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=_bounded_int(1, MAX_DURATION), default=10, metavar="SECONDS",
        help=f"measured seconds per workload, at most {MAX_DURATION} (default: 10)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=_bounded_int(0, 5), default=1, metavar="SECONDS",
        help="unmeasured load before each workload, so every worker is warm (default: 1; 0 to skip)",
    )  # fmt: skip
    parser.add_argument("--threads", type=_bounded_int(1, 64), default=2, help="wrk threads (default: 2)")
    parser.add_argument("--connections", type=_bounded_int(1, 4096), default=32, help="wrk connections (default: 32)")
    parser.add_argument(
        "--timeout", type=_bounded_int(1, 30), default=5, metavar="SECONDS",
        help="wrk counts a response slower than this as a timeout error (default: 5)",
    )  # fmt: skip
    parser.add_argument("--workers", type=_bounded_int(1, 16), default=2, help="HTTP worker processes (default: 2)")
    parser.add_argument(
        "--server-threads", type=_bounded_int(1, 64), default=2, metavar="N",
        help="threads per HTTP worker (`netfleet serve --threads`; default: 2, serve's own default)",
    )  # fmt: skip
    parser.add_argument("--sites", type=_bounded_int(1, 1_000_000), default=200, help="sites to seed (default: 200)")
    parser.add_argument(
        "--fleet", type=_bounded_int(1, 1_000_000), default=10_000, help="devices to seed (default: 10000)"
    )
    parser.add_argument(
        "--fanout", type=_bounded_int(1, 60_000), default=200, metavar="N",
        help="SSH devices the ssh_fanout workload runs a command on (default: 200)",
    )  # fmt: skip
    parser.add_argument(
        "--agent-sample",
        type=_bounded_int(1, 100_000),
        default=1000,
        help="random devices the agent and ingest workloads poll (default: 1000); small = steady-state cache hits",
    )
    args = parser.parse_args(argv)
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return args


def _log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_workload(workload, context, instance, args):
    request = workload.build(context)
    status, body = instance.request(request.method, request.path, request.body, request.headers)
    if not 200 <= status < 400:
        detail = body[:300].decode(errors="replace")
        raise BenchError(f"{request.method} {request.path} answered {status} before the run: {detail}")
    script = instance.data_dir / f"{workload.name}.lua"
    script.write_text(wrk.lua_script(request.method, request.headers, request.body, request.paths, request.lua))
    url = instance.base_url + request.path
    options = {"threads": args.threads, "connections": args.connections, "timeout": args.timeout}
    # polls of a random device fill each worker's cache first (the embedded cache is per process)
    warmup = max(args.warmup, 5) if request.paths and request.method == "GET" else args.warmup
    if warmup:
        wrk.run(url, script, duration=warmup, **options)
    before = _settled_count(request, instance) if request.count_stored else None  # the warm-up's, all stored
    workers = [
        pid
        for pid, (ppid, _) in procs.descendants(instance.process.pid).items()
        # the monitoring writer stores what the HTTP workers accept: its CPU is part of each ingest request
        if _role(pid, ppid, instance.process.pid) in ("http-worker", "monitoring-writer")
    ]
    cpu_before = procs.cpu_seconds(workers)
    result = wrk.run(url, script, duration=args.duration, **options)
    # the server's own CPU per answered request: comparable between runs even when other work shares the cores
    if result["requests"]:
        result["server_cpu_ms_per_request"] = round(
            (procs.cpu_seconds(workers) - cpu_before) * 1000 / result["requests"], 3
        )
    if request.count_stored:
        # what the answered requests stored: by the end of the run (the rate it was stored at, and the backlog left
        # behind), then once the server has stored everything it accepted (nothing may be missing)
        per_request = request.stored_per_request
        stored_by_end = (request.count_stored(instance) - before) // per_request
        stored = (_settled_count(request, instance) - before) // per_request
        result.update(
            stored=stored,
            stored_per_s=round(stored_by_end / args.duration, 1),
            backlog_at_end=max(result["requests"] - stored_by_end, 0),
            lost=max(result["requests"] - stored, 0),
        )
    if result["errors"]:
        # what the server said about them (timeouts leave no line: wrk gave up waiting)
        result["server_errors"] = [line[:300] for line in instance.log_tail(400).splitlines() if '"ERROR"' in line][-3:]
    return {
        "name": workload.name,
        **result,
        "duration_s": args.duration,
        "threads": args.threads,
        "connections": args.connections,
        **request.extra,
    }


def _settled_count(request, instance, *, quiet=1.0, limit=60):
    """count_stored once it stops moving (the server stores accepted work behind its answers)."""
    count, deadline = request.count_stored(instance), time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = request.count_stored(instance)
        if again == count:
            break
        count = again
    return count


def _role(pid, ppid, serve_pid):
    command = procs.cmdline(pid)
    if "granian" in command:
        # granian's master is started by serve; its workers are forks of the master
        return "http-master" if ppid == serve_pid else "http-worker"
    if "uvicorn" in command:
        return "websockets"
    if "monitoring_writer" in command:
        return "monitoring-writer"
    return "other"


def memory(serve_pid):
    """RSS of every process of the serve tree; `rss_mb` sums the HTTP workers."""
    processes = [{"pid": serve_pid, "role": "serve", "rss_mb": procs.rss_mb(serve_pid)}]
    for pid, (ppid, _) in sorted(procs.descendants(serve_pid).items()):
        processes.append({"pid": pid, "role": _role(pid, ppid, serve_pid), "rss_mb": procs.rss_mb(pid)})
    processes = [{**p, "rss_mb": round(p["rss_mb"], 1)} for p in processes if p["rss_mb"] is not None]
    workers = [p["rss_mb"] for p in processes if p["role"] == "http-worker"]
    return {
        "rss_mb": round(sum(workers), 1),
        "worker_rss_mb": workers,
        "tree_rss_mb": round(sum(p["rss_mb"] for p in processes), 1),
        "processes": processes,
    }


def run(args, instance):
    selected = [BY_NAME[n] for n in dict.fromkeys(args.workload) if n in BY_NAME] if args.workload else WORKLOADS
    _log(f"preparing an instance in {instance.data_dir}")
    instance.prepare()
    sites = seed.seed_sites(instance, args.sites)
    devices, sample = seed.seed_devices(instance, args.fleet, args.agent_sample)
    instance.start()
    token, how = instance.access_token()
    _log(
        f"serving on {instance.base_url} ({args.workers} HTTP workers, {sites} sites, {devices} devices, "
        f"token by {how})"
    )
    chart_documents = 0
    if any(workload.name == "device_chart_7d" for workload in selected):
        _log("device_chart_7d: ingesting 7 days of 5-minute documents for one device")
        chart_documents = seed.seed_chart_history(instance, sample[-1][0], INGEST_DOCUMENT)
    idle = memory(instance.process.pid)
    _status, body = instance.request(
        "GET", "/api/v1/organizations/?slug=default", None, {"Authorization": f"Bearer {token}"}
    )
    organization = json.loads(body)["items"][0]["id"]
    context = Context(
        base_url=instance.base_url, token=token, sites=sites, devices=devices, sample=tuple(sample),
        organization=organization, chart_documents=chart_documents,
    )  # fmt: skip

    ok = True
    for workload in selected:
        _log(f"{workload.name}: {args.warmup}+{args.duration} s")
        try:
            line = run_workload(workload, context, instance, args)
        except BenchError as exc:
            _log(f"{workload.name} failed: {exc}")
            line = {"name": workload.name, "requests": 0, "rps": None, "p50_ms": None, "p99_ms": None, "errors": None}
            line["error"] = str(exc)
        ok = ok and not line.get("error") and line["errors"] == 0
        print(json.dumps(line), flush=True)

    if not args.workload or "config_render_cold" in args.workload:
        rendered = seed.render_cold(instance)
        rate = round(rendered["configs"] / rendered["seconds"], 1) if rendered["seconds"] else None
        print(json.dumps({"name": "config_render_cold", "configs": rendered["configs"], "configs_per_s": rate}))

    if not args.workload or "ssh_fanout" in args.workload:
        try:
            line = fanout.run(instance, token, args.fanout, _log)
        except BenchError as exc:
            _log(f"ssh_fanout failed: {exc}")
            line = {"name": "ssh_fanout", "devices": args.fanout, "error": str(exc)}
        ok = ok and not line.get("error") and line["failed"] == 0
        print(json.dumps(line), flush=True)

    after = memory(instance.process.pid)
    print(json.dumps({"name": "rss", **after, "idle_rss_mb": idle["rss_mb"]}), flush=True)
    return 0 if ok else 1


def _terminate(signum, frame):
    # turn SIGTERM (e.g. from make or a CI timeout) into the same clean-up path as Ctrl-C
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        wrk.executable()
        with (
            tempfile.TemporaryDirectory(prefix="netfleet-bench-") as data_dir,
            Instance(
                data_dir,
                workers=args.workers,
                threads=args.server_threads,
                database_url=os.environ.get("BENCH_DATABASE_URL"),
            ) as instance,
        ):
            return run(args, instance)
    except BenchError as exc:
        _log(str(exc))
        return 1
    except KeyboardInterrupt:
        _log("interrupted; server stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
