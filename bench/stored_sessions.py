"""The stored-sessions phase: /me before and after many extra sessions.

Extra session documents, shaped like each system's own, go straight into
its ``sessions`` collection. A large store should change neither lookup
latency nor memory noticeably.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import MongoClient

from bench.harness import Bench
from bench.processes import paused, rss_by_role
from bench.results import ScalingPhase
from bench.systems import OURS, System, find_ours

INSERT_BATCH_SIZE = 1000


def our_session_documents(count: int, now: datetime) -> Iterator[dict[str, Any]]:
    """Yield live session documents shaped like the session service's."""
    for index in range(count):
        user_id = f"{index % 10_000:024x}"
        yield {
            "_id": secrets.token_hex(32),
            "session_id": secrets.token_urlsafe(12),
            "user_id": user_id,
            "user": {"id": user_id, "name": "Extra", "email": f"x{index}@example.com"},
            "data": "{}",
            "remember": False,
            "user_agent": "bench",
            "ip": "127.0.0.1",
            "created_at": now,
            "last_seen_at": now,
            "idle_expires_at": now + timedelta(days=1),
            "absolute_expires_at": now + timedelta(days=14),
            "expires_at": now + timedelta(days=1),
            "revoked_at": None,
        }


def peer_session_documents(count: int, now: datetime) -> Iterator[dict[str, Any]]:
    """Yield live session documents shaped like connect-mongo's (stringified)."""
    expires = now + timedelta(days=1)
    for index in range(count):
        session = {
            "cookie": {
                "originalMaxAge": 86_400_000,
                "expires": expires.isoformat(),
                "httpOnly": True,
                "path": "/",
            },
            "userId": f"{index:024x}",
            "name": "Extra",
        }
        yield {
            "_id": secrets.token_urlsafe(24),
            "expires": expires,
            "session": json.dumps(session),
        }


def insert_sessions(system: System, count: int, time_limit: float) -> tuple[int, float]:
    """Insert up to ``count`` extra sessions in batches, for at most ``time_limit``.

    Returns the number inserted and the seconds it took.
    """
    make = our_session_documents if system.name == OURS else peer_session_documents
    documents = make(count, datetime.now(UTC))
    client: MongoClient[dict[str, Any]] = MongoClient(
        system.mongodb_url, serverSelectionTimeoutMS=5000
    )
    inserted = 0
    started = time.monotonic()
    try:
        collection = client[system.database]["sessions"]
        while inserted < count and time.monotonic() - started < time_limit:
            batch = list(itertools.islice(documents, INSERT_BATCH_SIZE))
            collection.insert_many(batch, ordered=False)
            inserted += len(batch)
    finally:
        client.close()
    return inserted, time.monotonic() - started


async def scaling_phases(
    bench: Bench, systems: Sequence[System], cookies: dict[str, list[str]]
) -> dict[str, ScalingPhase]:
    """Measure /me before and after extra sessions, as many for every system.

    mflix-auth goes first. Its processes are paused (SIGSTOP) while the
    peer is measured, so that background work on its own extra sessions
    does not slow the peer down.
    """
    options = bench.options
    results: dict[str, ScalingPhase] = {}
    target = options.extra_sessions
    ours_pids = list(find_ours(systems).pids.values())
    for system in systems:
        pause = paused(ours_pids) if system.name != OURS else contextlib.nullcontext()
        with pause:
            results[system.name] = await scaling_phase(
                bench, system, cookies[system.name], target
            )
        # The next system gets the count the first could insert in time.
        target = results[system.name].inserted
    return results


async def scaling_phase(
    bench: Bench, system: System, cookies: Sequence[str], count: int
) -> ScalingPhase:
    """Measure idle CPU and /me, insert ``count`` sessions, and measure again."""
    seconds = bench.options.scaling_duration
    cpu: dict[str, dict[str, float]] = {}
    await bench.settle()
    cpu["idle before"] = await bench.idle_cpu()
    before, cpu["/me before"] = await bench.measured_load_me(system, cookies, seconds)
    memory_before = rss_by_role(system.pids)
    inserted, took = await asyncio.to_thread(
        insert_sessions, system, count, bench.options.insert_seconds
    )
    await bench.settle()
    cpu["idle after"] = await bench.idle_cpu()
    after, cpu["/me after"] = await bench.measured_load_me(system, cookies, seconds)
    memory_after = rss_by_role(system.pids)
    return ScalingPhase(inserted, took, before, after, cpu, memory_before, memory_after)
