"""When a run started: what metrics.json's `seconds` and metrics.csv's `elapsed_seconds` count from."""

from __future__ import annotations

import os
import time

_clock = {"run": time.time()}


def count_from_process_start() -> None:
    """A command's first run counts from its process's start: the interpreter and every import count."""
    _clock["command"] = process_start() or time.time()


def run_started() -> float:
    """A run begins; when its clock starts: its command's process start for a command's first run, else
    now (a multirun's next job in the same process, a run started from Python)."""
    _clock["run"] = _clock.pop("command", None) or time.time()
    return _clock["run"]


def started_at() -> float:
    """The wall-clock time (time.time()) the current run's clock counts from."""
    return _clock["run"]


def process_start() -> float | None:
    """When this process started, to the kernel's clock tick (Linux); None where /proc does not say."""
    try:
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as f:
            ticks = int(f.read().rpartition(")")[2].split()[19])  # field 22: start time, ticks after boot
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError, AttributeError):  # no /proc, no os.sysconf (Windows)
        return None
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
