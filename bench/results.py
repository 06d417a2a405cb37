"""Results of each phase, per system, and the report that collects them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadResult:
    """Totals and latency, in milliseconds, of one bounded load."""

    generator: str
    requests: int
    # wrk counts only responses with a status of 400 or more here.
    non_2xx: int
    socket_errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    # CPU seconds the client itself used (wrk, or the aiohttp process).
    client_cpu_seconds: float = 0.0
    # Responses by HTTP status; wrk reports only the non-2xx total.
    statuses: dict[int, int] = field(default_factory=dict)
    # 2xx responses received before the planned end; requests still in
    # flight then may finish later and count only in ``requests``.
    ok_before_deadline: int = 0
    planned_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else math.nan

    @property
    def failed(self) -> int:
        """Return ``non_2xx`` plus the requests that got no response."""
        return self.non_2xx + self.socket_errors


@dataclass
class Revocation:
    """One logout under load, timed in milliseconds.

    ``logout_ms`` is the logout request's own latency. ``visible_after_ms``
    runs from its response to the first 401 for the same cookie.
    """

    logout_status: int
    logout_ms: float
    visible_after_ms: float | None
    stale_polls: int
    under_load: bool


@dataclass
class MePhase:
    load: LoadResult
    revocations: list[Revocation]
    # % of one core per process during the load.
    cpu: dict[str, float]


@dataclass
class LoginPhase:
    flood: LoadResult
    logins_ok: int
    probe_idle: LoadResult
    probe_flood: LoadResult
    # % of one core per process during the flood.
    cpu: dict[str, float]
    # Seconds after the flood's last response until the servers went idle.
    busy_after_seconds: float

    @property
    def logins_per_second(self) -> float:
        """Successful logins per second within the planned flood duration."""
        flood = self.flood
        return flood.ok_before_deadline / flood.planned_seconds


@dataclass
class ScalingPhase:
    inserted: int
    insert_seconds: float
    before: LoadResult
    after: LoadResult
    # % of one core per process: idle and under load, before and after.
    cpu: dict[str, dict[str, float]]
    # VmRSS and VmHWM in KiB of the system's servers by role, read before
    # the insert and after the last /me load.
    memory_kib_before: dict[str, tuple[int, int]] = field(default_factory=dict)
    memory_kib_after: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class SystemResults:
    name: str
    settings: dict[str, str]
    me: MePhase | None = None
    logins: LoginPhase | None = None
    memory_kib: dict[str, tuple[int, int]] = field(default_factory=dict)
    scaling: ScalingPhase | None = None


@dataclass
class Report:
    machine: dict[str, str]
    options: dict[str, Any]
    bcrypt_seconds: float
    bcrypt_limit: float
    # Hashes per second measured with one thread per core hashing at once.
    bcrypt_parallel_rate: float
    systems: dict[str, SystemResults]
    notes: list[str]
