"""The machine a run measures on: its description and its bcrypt speed."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import bcrypt

from bench.systems import PASSWORD
from tests.support.processes import FERRETDB, ROOT


def core_count() -> int:
    """Return the number of CPU cores, which the bcrypt limit is based on."""
    return os.cpu_count() or 1


def command_output(command: Sequence[str]) -> str:
    """Return the first output line of a command, or "missing" when it fails."""
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    lines = (completed.stdout or completed.stderr).strip().splitlines()
    return lines[0].strip() if lines else "missing"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def memory_total_gib() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def describe_machine() -> dict[str, str]:
    return {
        "load average at start (1, 5, 15 min)": load_average(),
        "commit": command_output(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(core_count()),
        "cpu": cpu_model(),
        "memory": memory_total_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": metadata.version("aiohttp"),
        "pyca/bcrypt": metadata.version("bcrypt"),
        "node": command_output(["node", "--version"]),
        "ferretdb": command_output([str(FERRETDB), "--version"]),
        "redis": command_output(["redis-server", "--version"]),
        "wrk": command_output(["wrk", "--version"]),
    }


def bcrypt_limit(seconds_per_hash: float) -> float:
    """Return the machine's bcrypt limit in hashes/s: cores over one hash's time."""
    return core_count() / seconds_per_hash


def time_parallel_bcrypt(cost: int, threads: int, hashes: int) -> float:
    """Return hashes per second of ``threads`` threads hashing at ``cost`` at once.

    pyca/bcrypt releases the GIL while it hashes, so threads run in parallel.
    """
    salt = bcrypt.gensalt(cost)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as executor:
        list(
            executor.map(
                lambda _: bcrypt.hashpw(PASSWORD.encode(), salt), range(hashes)
            )
        )
    return hashes / (time.perf_counter() - started)


def time_bcrypt(cost: int, rounds: int = 5) -> float:
    """Return the median seconds of one pyca/bcrypt hash at ``cost``."""
    salt = bcrypt.gensalt(cost)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        bcrypt.hashpw(PASSWORD.encode(), salt)
        samples.append(time.perf_counter() - started)
    samples.sort()
    return samples[len(samples) // 2]
