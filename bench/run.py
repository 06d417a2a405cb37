"""Benchmark mflix-auth against the reference Express peer on this machine.

One run starts FerretDB, Redis, the three services (at their default bcrypt
cost) and the reference Express peer (express-session with connect-mongo),
all on 127.0.0.1 in a temporary folder, then measures in this order:

1. ``GET /api/v1/me`` throughput and latency at a fixed concurrency, with
   users logged out under that load to time how soon their cookie gets 401.
2. Logins per second against this machine's bcrypt limit, and ``/me``
   latency of one user with and without that login flood.
3. The resident memory of every server process.
4. Optionally, py-spy profiles of our services under both loads.
5. ``/me`` throughput and latency again after extra session documents were
   inserted into both session collections.

Before each phase it waits until the servers are idle, and it reports the
CPU use of every process during each phase, including "other" programs on
the machine. It prints Markdown tables and stops every process it started,
also on Ctrl-C, SIGTERM or an error. Every load goes only to servers that
this script started and is bounded in time and request count.

    .venv/bin/python -m bench.run --duration 20 --concurrency 32

The ``/me`` load comes from ``wrk`` when it is installed, because it needs
far less CPU than a Python client. Without it, an aiohttp client in a
separate process drives the load. The login flood always uses that aiohttp
process. All of them share the machine's cores with the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from bench.harness import Bench
from bench.load import start_pool
from bench.login_flood import login_phase
from bench.machine import (
    bcrypt_limit,
    core_count,
    describe_machine,
    load_average,
    time_bcrypt,
    time_parallel_bcrypt,
)
from bench.me_load import me_phase
from bench.options import Options, parse_options
from bench.processes import rss_by_role
from bench.profiles import profile_ours
from bench.report import contention_notes, default_notes, render, write_json
from bench.results import Report, SystemResults
from bench.servers import start_servers
from bench.stored_sessions import scaling_phases
from bench.systems import (
    DEFAULT_BCRYPT_COST,
    OURS,
    System,
    User,
    find_ours,
    live_cookies,
    sign_up_users,
)


async def measure(
    bench: Bench, systems: list[System], shared_pids: dict[str, int], report: Report
) -> None:
    """Run every phase on every system and fill ``report`` in."""
    options = bench.options
    users: dict[str, list[User]] = {}
    for system in systems:
        print(f"signing up {options.users} users on {system.name}")
        users[system.name] = await sign_up_users(system, options.users)

    for system in systems:
        print(f"/me load on {system.name} for {options.duration} s")
        report.systems[system.name].me = await me_phase(
            bench, system, users[system.name]
        )

    for system in systems:
        print(f"login flood on {system.name} for {options.duration} s")
        probe_cookie = users[system.name][-1].cookie
        report.systems[system.name].logins = await login_phase(
            bench, system, users[system.name], probe_cookie
        )

    record_memory(report, systems, shared_pids)

    if options.profile_dir is not None:
        # Before the extra sessions, so profiles show the common case.
        ours = find_ours(systems)
        await profile_ours(bench, ours, users[OURS], options.profile_dir)

    if options.extra_sessions > 0:
        print(f"inserting up to {options.extra_sessions:,} sessions per system")
        live = {
            name: live_cookies(items, options.revocations)
            for name, items in users.items()
        }
        scaling = await scaling_phases(bench, systems, live)
        for name, phase in scaling.items():
            report.systems[name].scaling = phase
    report.notes.extend(contention_notes(report))


def record_memory(
    report: Report, systems: Sequence[System], shared_pids: dict[str, int]
) -> None:
    """Read the RSS of every server. FerretDB and Redis are listed under ours."""
    for system in systems:
        report.systems[system.name].memory_kib = rss_by_role(system.pids)
    report.systems[OURS].memory_kib.update(
        {f"{role} (shared)": rss for role, rss in rss_by_role(shared_pids).items()}
    )


def work_directory(resources: contextlib.ExitStack, options: Options) -> Path:
    """Return --work-dir, created if needed, or a temporary folder."""
    if options.work_dir is not None:
        options.work_dir.mkdir(parents=True, exist_ok=True)
        return options.work_dir.resolve()
    return Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))


def new_report(
    machine: dict[str, str],
    hash_seconds: float,
    parallel_rate: float,
    options: Options,
    systems: Sequence[System],
    bench: Bench,
) -> Report:
    """Return a report with the machine and options filled in, no results yet."""
    local_paths = {"peer_dir", "work_dir", "json_path", "profile_dir"}
    return Report(
        machine=machine,
        options={
            key: value
            for key, value in asdict(options).items()
            if key not in local_paths
        },
        bcrypt_seconds=hash_seconds,
        bcrypt_limit=bcrypt_limit(hash_seconds),
        bcrypt_parallel_rate=parallel_rate,
        systems={
            system.name: SystemResults(system.name, system.settings)
            for system in systems
        },
        notes=default_notes(bench.generator),
    )


def run(options: Options) -> Report:
    """Time bcrypt, start every server, measure, and stop every process."""
    with contextlib.ExitStack() as resources:
        machine = describe_machine()
        print(f"timing bcrypt at cost {DEFAULT_BCRYPT_COST}")
        hash_seconds = time_bcrypt(DEFAULT_BCRYPT_COST)
        cores = core_count()
        parallel_rate = time_parallel_bcrypt(DEFAULT_BCRYPT_COST, cores, 4 * cores)

        work = work_directory(resources, options)
        if options.profile_dir is not None:
            options.profile_dir.mkdir(parents=True, exist_ok=True)
        systems, shared_pids = start_servers(resources, options, work)
        pool = start_pool(resources)
        server_pids = {
            **{role: pid for system in systems for role, pid in system.pids.items()},
            **shared_pids,
        }
        bench = Bench(options, work, pool, server_pids)

        report = new_report(
            machine, hash_seconds, parallel_rate, options, systems, bench
        )
        asyncio.run(measure(bench, systems, shared_pids, report))
        report.machine["load average at end (1, 5, 15 min)"] = load_average()
        print("stopping every process")
    return report


def raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    try:
        report = run(options)
    except KeyboardInterrupt:
        print("interrupted: every started process was stopped", file=sys.stderr)
        return 130
    print()
    print(render(report))
    if options.json_path is not None:
        write_json(report, options.json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
