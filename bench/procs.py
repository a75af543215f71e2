"""Process tree and memory of the server, read straight from /proc (Linux)."""

import os
from pathlib import Path

PROC = Path("/proc")


def _stat(pid):
    """(ppid, pgid) of a live process, or None."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after its last ")"
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2])


def descendants(root_pid):
    """{pid: (ppid, pgid)} of every live process below root_pid."""
    table = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                table[int(entry.name)] = stat
    found, frontier = {}, [root_pid]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, pgid) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = (ppid, pgid)
                frontier.append(pid)
    return found


def cmdline(pid):
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def rss_mb(pid):
    """Resident set size (VmRSS) in MiB, or None once the process is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # reported in kB
    except OSError:
        return None
    return None


def cpu_seconds(pids):
    """User + system CPU seconds the live processes among `pids` have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            text = (PROC / str(pid) / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)
    return total
