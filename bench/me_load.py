"""The /me phase: throughput and latency of GET /api/v1/me under load.

While the load runs, a second client logs some users out and times how
soon their cookie gets 401.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp

from bench.harness import Bench
from bench.load import REQUEST_TIMEOUT, http_client
from bench.results import MePhase, Revocation
from bench.systems import ME_PATH, System, User

# Pause between /me polls after a logout, and the maximum wait for a 401.
POLL_INTERVAL = 0.015
REVOCATION_WAIT_LIMIT = 5.0
# Logouts start at this share of the load's duration, this many seconds
# apart at least.
REVOCATION_START_SHARE = 0.4
REVOCATION_GAP_SECONDS = 2.0


async def me_phase(bench: Bench, system: System, users: Sequence[User]) -> MePhase:
    """Load /me with every user's cookie while the first users log out."""
    cookies = [user.cookie for user in users]
    revoked = cookies[: bench.options.revocations]
    seconds = bench.options.duration
    await bench.settle()
    start = bench.cpu_start()
    async with asyncio.TaskGroup() as group:
        load_task = group.create_task(bench.load_me(system, cookies, seconds))
        revocations_task = group.create_task(
            revoke_during_load(system, revoked, seconds)
        )
    load = load_task.result()
    cpu = bench.cpu_since(start, load)
    return MePhase(load, revocations_task.result(), cpu)


async def revoke_during_load(
    system: System, cookies: Sequence[str], seconds: int
) -> list[Revocation]:
    """Log users out one by one, from 40% of the load on, 2 s apart at least."""
    load_ends = time.monotonic() + seconds
    await asyncio.sleep(seconds * REVOCATION_START_SHARE)
    results = []
    for cookie in cookies:
        results.append(await measure_revocation(system, cookie, load_ends))
        await asyncio.sleep(REVOCATION_GAP_SECONDS)
    return results


async def measure_revocation(
    system: System, cookie: str, load_ends: float
) -> Revocation:
    """Log out with ``cookie``, then poll /me with it until it returns 401."""
    headers = {"Cookie": cookie}
    async with http_client(REQUEST_TIMEOUT) as http:
        started = time.perf_counter()
        async with http.post(system.url("/api/v1/logout"), headers=headers) as reply:
            await reply.read()
            logout_status = reply.status
        logged_out = time.perf_counter()
        visible_after, stale_polls = await _poll_until_401(
            http, system.url(ME_PATH), headers, logged_out
        )
    return Revocation(
        logout_status=logout_status,
        logout_ms=(logged_out - started) * 1000,
        visible_after_ms=visible_after,
        stale_polls=stale_polls,
        under_load=time.monotonic() < load_ends,
    )


async def _poll_until_401(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    logged_out: float,
) -> tuple[float | None, int]:
    """Poll ``url`` until it returns 401 or REVOCATION_WAIT_LIMIT has passed.

    Returns the milliseconds from ``logged_out`` (a perf_counter reading) to
    the first 401, None without one, and the number of other responses.
    """
    stale_polls = 0
    while time.perf_counter() - logged_out < REVOCATION_WAIT_LIMIT:
        async with http.get(url, headers=headers) as reply:
            await reply.read()
            status = reply.status
        if status == 401:
            return (time.perf_counter() - logged_out) * 1000, stale_polls
        stale_polls += 1
        await asyncio.sleep(POLL_INTERVAL)
    return None, stale_polls
