"""The per-process session cache, driven by a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.gateway.cache import SessionCache


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def record(
    session_id: str, clock: FakeClock, idle_seconds: float = 3600
) -> dict[str, Any]:
    start = datetime.fromtimestamp(clock.now, UTC)
    return {
        "id": session_id,
        "idle_expires_at": (start + timedelta(seconds=idle_seconds)).isoformat(),
        "absolute_expires_at": (start + timedelta(days=14)).isoformat(),
    }


def make_cache(clock: FakeClock, max_entries: int = 10) -> SessionCache:
    return SessionCache(ttl=1.0, max_entries=max_entries, clock=clock)


def test_entry_served_within_ttl() -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    cache.put("k", record("s1", clock), fetched_at=clock())

    clock.now += 0.9

    cached = cache.get("k")
    assert cached is not None
    assert cached["id"] == "s1"


def test_entry_expires_after_ttl() -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    cache.put("k", record("s1", clock), fetched_at=clock())

    clock.now += 1.0

    assert cache.get("k") is None


def test_entry_never_outlives_idle_expiry() -> None:
    clock = FakeClock()
    cache = SessionCache(ttl=1.0, max_entries=10, clock=clock)
    cache.put("k", record("s1", clock, idle_seconds=0.5), fetched_at=clock())

    clock.now += 0.6

    assert cache.get("k") is None


def test_drop_session_by_public_id() -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    cache.put("k", record("s1", clock), fetched_at=clock())

    dropped = cache.drop_session("s1")

    assert dropped is True
    assert cache.get("k") is None


def test_lookup_started_before_drop_is_not_cached() -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    lookup_started = clock()
    clock.now += 0.01
    cache.drop_key("k")

    cache.put("k", record("s1", clock), fetched_at=lookup_started)

    assert cache.get("k") is None


def test_lookup_started_before_session_revoked_event_is_not_cached() -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    lookup_started = clock()
    clock.now += 0.01
    cache.drop_session("s1")

    cache.put("k", record("s1", clock), fetched_at=lookup_started)

    assert cache.get("k") is None


def test_eviction_keeps_size_bounded() -> None:
    clock = FakeClock()
    cache = make_cache(clock, max_entries=2)

    for number in range(5):
        cache.put(f"k{number}", record(f"s{number}", clock), fetched_at=clock())

    assert len(cache) == 2
    assert cache.get("k4") is not None
    assert cache.drop_session("s0") is False
