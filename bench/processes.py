"""CPU and memory readings of processes from /proc, and process control.

CPU use is reported in % of one core, so a 2-core machine has 200%.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import time
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.results import LoadResult

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Row names, beside the server roles, of the CPU tables.
LOAD_GENERATOR = "load generator"
OTHER_PROCESSES = "other"
T = TypeVar("T")
# Seconds a child process may run beyond its planned duration before it is
# killed.
GRACE_SECONDS = 30


def rss_kib(pid: int) -> tuple[int, int]:
    """Return VmRSS and VmHWM (peak RSS) of a process in KiB, (0, 0) if it ended."""
    values = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    for line in status.splitlines():
        parts = line.split()
        if parts and parts[0] in values:
            values[parts[0]] = int(parts[1])
    return values["VmRSS:"], values["VmHWM:"]


def rss_by_role(pids: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Return VmRSS and VmHWM in KiB of every process, by role."""
    return {role: rss_kib(pid) for role, pid in pids.items()}


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds of a process, 0.0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # proc(5) puts utime and stime in fields 14 and 15. The command name in
    # field 2 may contain spaces, so fields are counted from the ")" after it.
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """Return the CPU seconds all cores spent outside idle and I/O wait since boot."""
    first_line = Path("/proc/stat").read_text().splitlines()[0]
    # proc(5) lists user, nice, system, idle, iowait, irq, softirq and steal
    # first. Guest time is already counted in user.
    values = [int(value) for value in first_line.split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds of processes by role and of the whole machine, with the time."""

    taken_at: float
    seconds: dict[str, float]
    machine_busy: float


def cpu_snapshot(pids: dict[str, int]) -> CpuSnapshot:
    seconds = {role: cpu_seconds(pid) for role, pid in pids.items()}
    return CpuSnapshot(time.monotonic(), seconds, machine_busy_seconds())


def phase_cpu(
    before: CpuSnapshot, after: CpuSnapshot, load: LoadResult | None
) -> dict[str, float]:
    """Return CPU use by process between two snapshots, in % of one core.

    The load generator's share comes from ``load``. "other" is what the
    machine spent beyond every listed process: other programs on the host.
    """
    wall = after.taken_at - before.taken_at
    usage = {
        role: 100 * (after.seconds[role] - used) / wall
        for role, used in before.seconds.items()
    }
    usage[LOAD_GENERATOR] = 100 * load.client_cpu_seconds / wall if load else 0.0
    machine = 100 * (after.machine_busy - before.machine_busy) / wall
    usage[OTHER_PROCESSES] = max(0.0, machine - sum(usage.values()))
    return usage


def children_cpu_seconds() -> float:
    """Return the CPU seconds of this process's children that have ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def paused(pids: Sequence[int]) -> Iterator[None]:
    """Suspend processes with SIGSTOP for the block, and resume them after it."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def kill_unfinished(processes: Sequence[asyncio.subprocess.Process]) -> None:
    """Kill and reap the child processes that have not exited yet."""
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def wait_bounded(
    awaitable: Awaitable[T],
    processes: Sequence[asyncio.subprocess.Process],
    seconds: float,
) -> T:
    """Wait for ``processes`` planned to run ``seconds``, then kill any left over.

    Raises TimeoutError when they are still running GRACE_SECONDS later.
    """
    try:
        return await asyncio.wait_for(awaitable, timeout=seconds + GRACE_SECONDS)
    finally:
        await kill_unfinished(processes)
