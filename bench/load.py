"""The aiohttp load generator: bounded loads of HTTP requests, timed.

A load runs either in the current event loop (the light /me probe) or in a
separate worker process, so that a heavy load does not share this process's
event loop and CPU accounting with the probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field

import aiohttp

from bench.results import LoadResult

# Seconds one benchmark request may take before it counts as an error.
REQUEST_TIMEOUT = 10.0
# Upper bound on the requests of one aiohttp load, whatever its duration
# (wrk stops by time only).
MAX_REQUESTS_PER_LOAD = 5_000_000


def http_client(
    timeout: float, connector: aiohttp.TCPConnector | None = None
) -> aiohttp.ClientSession:
    """Return a client session that keeps no cookies, with a total timeout."""
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


@dataclass(frozen=True)
class RequestSpec:
    method: str
    url: str
    cookie: str | None = None
    body: dict[str, str] | None = None


@dataclass(frozen=True)
class LoadSpec:
    """A bounded load: ``requests`` taken in turn by ``concurrency`` loops."""

    requests: list[RequestSpec]
    concurrency: int
    seconds: float
    # Minimum seconds between the starts of two requests of one loop.
    interval: float = 0.0
    max_requests: int = MAX_REQUESTS_PER_LOAD
    # Seconds one request may take before it counts as a socket error.
    timeout: float = REQUEST_TIMEOUT


def nearest_rank(ascending: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ascending values, or NaN for none."""
    if not ascending:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ascending)))
    return ascending[rank - 1]


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    socket_errors: int = 0
    ok_before_deadline: int = 0


async def _request_loop(
    http: aiohttp.ClientSession,
    spec: LoadSpec,
    turns: Iterator[int],
    deadline: float,
    tally: _Tally,
) -> None:
    while time.monotonic() < deadline and len(tally.latencies) < spec.max_requests:
        request = spec.requests[next(turns) % len(spec.requests)]
        headers = {"Cookie": request.cookie} if request.cookie else None
        started = time.perf_counter()
        try:
            async with http.request(
                request.method, request.url, json=request.body, headers=headers
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            tally.socket_errors += 1
            await asyncio.sleep(0.01)
            continue
        latency = time.perf_counter() - started
        tally.latencies.append(latency)
        tally.statuses[status] += 1
        if 200 <= status < 300 and time.monotonic() <= deadline:
            tally.ok_before_deadline += 1
        if spec.interval > latency:
            await asyncio.sleep(spec.interval - latency)


async def drive(spec: LoadSpec, *, delay: float = 0.0) -> LoadResult:
    """Run a load with an aiohttp client in the current event loop, after ``delay``."""
    await asyncio.sleep(delay)
    tally = _Tally()
    turns = itertools.count()
    cpu_started = time.process_time()
    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    async with http_client(spec.timeout, connector) as http:
        started = time.monotonic()
        deadline = started + spec.seconds
        loops = [
            _request_loop(http, spec, turns, deadline, tally)
            for _ in range(spec.concurrency)
        ]
        await asyncio.gather(*loops)
        seconds = time.monotonic() - started
    return _summarize(spec, tally, seconds, time.process_time() - cpu_started)


def _summarize(
    spec: LoadSpec, tally: _Tally, seconds: float, cpu_seconds: float
) -> LoadResult:
    latencies = sorted(tally.latencies)
    return LoadResult(
        generator="aiohttp",
        requests=len(latencies),
        non_2xx=sum(
            count for status, count in tally.statuses.items() if status // 100 != 2
        ),
        socket_errors=tally.socket_errors,
        seconds=seconds,
        p50_ms=nearest_rank(latencies, 0.50) * 1000,
        p99_ms=nearest_rank(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else math.nan,
        client_cpu_seconds=cpu_seconds,
        statuses=dict(sorted(tally.statuses.items())),
        ok_before_deadline=tally.ok_before_deadline,
        planned_seconds=spec.seconds,
    )


def load_worker(spec: LoadSpec) -> LoadResult:
    """Run one load in a worker process of the pool."""
    return asyncio.run(drive(spec))


async def drive_in_process(pool: Executor, spec: LoadSpec) -> LoadResult:
    """Run a load in the pool's worker process and wait for its result."""
    return await asyncio.get_running_loop().run_in_executor(pool, load_worker, spec)


def start_pool(resources: contextlib.ExitStack) -> ProcessPoolExecutor:
    """Start the load-generator process now, so its start-up is not measured."""
    pool = ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    )
    resources.callback(pool.shutdown, wait=True, cancel_futures=True)
    pool.submit(nearest_rank, [1.0], 0.5).result(timeout=60)
    return pool
