"""Drive a workload with wrk (C, so the load generator takes little of the 2 cores) and parse its report."""

import os
import re
import shutil
import subprocess

from bench.instance import BenchError

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX_3XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def executable():
    path = shutil.which("wrk") or "/usr/bin/wrk"
    if not os.access(path, os.X_OK):
        raise BenchError("wrk is not installed: run `apt-get install wrk` (Debian package) and try again")
    return path


def _lua_string(value):
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def lua_script(method, headers, body=None, paths=None, lua=None):
    """A wrk script that sends every request with this method, headers and body; with `paths`, each request
    goes to a random one of them (e.g. a different device per poll); `lua` may define its own `request()`."""
    lines = [f"wrk.method = {_lua_string(method)}"]
    lines += [f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body.decode() if isinstance(body, bytes) else body)}")
    if paths:
        lines.append("local paths = {" + ", ".join(_lua_string(path) for path in paths) + "}")
        lines.append("request = function() return wrk.format(nil, paths[math.random(#paths)]) end")
    if lua:
        lines.append(lua)
    return "\n".join(lines) + "\n"


def _percentile_ms(output, percent):
    match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)], 3) if match else None


def parse(output):
    """requests, rps, p50_ms, p99_ms and errors (non-2xx/3xx responses + socket errors) from `wrk --latency`."""
    requests = _REQUESTS.search(output)
    rps = _RPS.search(output)
    if requests is None or rps is None:
        raise BenchError(f"could not parse wrk output:\n{output}")
    socket_errors = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX_3XX.search(output)
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return {
        "requests": int(requests.group(1)),
        "rps": round(float(rps.group(1)), 1),
        "p50_ms": _percentile_ms(output, 50),
        "p99_ms": _percentile_ms(output, 99),
        "errors": errors,
    }


def run(url, script_path, *, duration, threads, connections, timeout):
    """Run wrk for `duration` seconds and return its parsed report."""
    command = [
        executable(), "--latency", "--duration", f"{duration}s", "--threads", str(threads),
        "--connections", str(connections), "--timeout", f"{timeout}s", "--script", str(script_path), url,
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=duration + timeout + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {duration + timeout + 30} s") from None
    if result.returncode != 0:
        raise BenchError(f"wrk failed with {result.returncode}: {result.stderr.strip() or result.stdout.strip()}")
    return parse(result.stdout)
