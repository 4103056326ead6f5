"""When a run started: what metrics.json's `seconds` and metrics.csv's `elapsed_seconds` count from."""

from __future__ import annotations

import os
import time

_start = {"at": time.time()}  # until a command says otherwise: when lightcls's configuration was imported


def started_at() -> float:
    """The wall-clock time (time.time()) the current run's clock counts from."""
    return _start["at"]


def count_from_process_start() -> None:
    """A command's clock starts with its process: the interpreter's start and every import count."""
    _start["at"] = process_start() or _start["at"]


def restart() -> None:
    """The next run in this process (a multirun's next job) counts from now."""
    _start["at"] = time.time()


def process_start() -> float | None:
    """When this process started, to the kernel's clock tick (Linux); None where /proc does not say."""
    try:
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as f:
            ticks = int(f.read().rpartition(")")[2].split()[19])  # field 22: start time, ticks after boot
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
