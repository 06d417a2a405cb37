"""The login phase: a flood of correct logins, and /me latency beside it.

Logins per second are compared with the machine's bcrypt limit. A probe of
one logged-in user calls /me at a steady pace, first without and then
during the flood, to show whether the flood starves other requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bench.harness import Bench
from bench.load import LoadSpec, RequestSpec, drive, drive_in_process
from bench.results import LoginPhase
from bench.systems import ME_PATH, PASSWORD, System, User

# Seconds one login may take before it counts as an error. It is longer
# than other requests' because a flood queues it behind other bcrypt checks.
LOGIN_TIMEOUT = 30.0
# Pause between two /me requests of the latency probe.
PROBE_INTERVAL = 0.02
# Seconds left out at each end of a flood, so the probe runs only under it.
FLOOD_MARGIN = 1.0


def probe_spec(system: System, cookie: str, seconds: float) -> LoadSpec:
    """Return a load of one user calling /me every PROBE_INTERVAL seconds."""
    return LoadSpec(
        requests=[RequestSpec("GET", system.url(ME_PATH), cookie=cookie)],
        concurrency=1,
        seconds=seconds,
        interval=PROBE_INTERVAL,
    )


def login_flood_spec(
    system: System, users: Sequence[User], concurrency: int, seconds: float
) -> LoadSpec:
    """Return a load of logins with correct passwords, the users taking turns."""
    url = system.url("/api/v1/login")
    return LoadSpec(
        requests=[
            RequestSpec("POST", url, body={"email": user.email, "password": PASSWORD})
            for user in users
        ],
        concurrency=concurrency,
        seconds=seconds,
        timeout=LOGIN_TIMEOUT,
    )


async def login_phase(
    bench: Bench, system: System, users: Sequence[User], probe_cookie: str
) -> LoginPhase:
    """Flood logins with correct passwords while one user keeps calling /me."""
    options = bench.options
    await bench.settle()
    probe_idle = await drive(probe_spec(system, probe_cookie, options.probe_seconds))
    flood_spec = login_flood_spec(system, users, options.concurrency, options.duration)
    probe_seconds = max(1.0, options.duration - 2 * FLOOD_MARGIN)
    start = bench.cpu_start()
    async with asyncio.TaskGroup() as group:
        flood_task = group.create_task(drive_in_process(bench.pool, flood_spec))
        probe_task = group.create_task(
            drive(
                probe_spec(system, probe_cookie, probe_seconds),
                delay=FLOOD_MARGIN,
            )
        )
    flood, probe_flood = flood_task.result(), probe_task.result()
    cpu = bench.cpu_since(start, flood)
    busy_after = await bench.settle()
    logins_ok = flood.requests - flood.non_2xx
    return LoginPhase(flood, logins_ok, probe_idle, probe_flood, cpu, busy_after)
