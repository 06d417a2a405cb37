"""The tools every phase shares: options, work folder, load generators, CPU meter."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path

from bench.load import LoadSpec, RequestSpec, drive_in_process
from bench.options import Options
from bench.processes import CpuSnapshot, cpu_snapshot, phase_cpu
from bench.results import LoadResult
from bench.systems import ME_PATH, System
from bench.wrk import resolve_generator, run_wrk

# A phase starts once all servers together use less than this share of one
# core (in %) over SETTLE_WINDOW seconds, or after SETTLE_LIMIT seconds.
SETTLED_CPU_PERCENT = 15.0
SETTLE_WINDOW = 0.5
SETTLE_LIMIT = 30.0
# Seconds over which the CPU use of idle servers is measured.
IDLE_SAMPLE_SECONDS = 3.0


class Bench:
    """The shared tools of every phase: options, folder and load generators."""

    def __init__(
        self,
        options: Options,
        work: Path,
        pool: Executor,
        server_pids: dict[str, int],
    ) -> None:
        self.options = options
        self.work = work
        self.pool = pool
        # Every server process of both systems and this process (which runs
        # the probes), for CPU accounting.
        self.server_pids = server_pids
        self.cpu_pids = {**server_pids, "bench": os.getpid()}
        self.generator = resolve_generator(options.load_generator)

    def cpu_start(self) -> CpuSnapshot:
        """Read the CPU time of every process, as the start of a measured span."""
        return cpu_snapshot(self.cpu_pids)

    def cpu_since(
        self, start: CpuSnapshot, load: LoadResult | None
    ) -> dict[str, float]:
        """Return the CPU use of every process since ``start``, in % of one core.

        ``load`` is the load that ran meanwhile, for its client's share.
        """
        return phase_cpu(start, cpu_snapshot(self.cpu_pids), load)

    async def settle(self) -> float:
        """Wait until the servers are idle again and return the seconds waited.

        Idle means that all servers together use less than SETTLED_CPU_PERCENT
        of one core over SETTLE_WINDOW. The wait ends after SETTLE_LIMIT.
        """
        started = time.monotonic()
        while time.monotonic() - started < SETTLE_LIMIT:
            before = cpu_snapshot(self.server_pids)
            await asyncio.sleep(SETTLE_WINDOW)
            after = cpu_snapshot(self.server_pids)
            used = sum(after.seconds.values()) - sum(before.seconds.values())
            if 100 * used / (after.taken_at - before.taken_at) < SETTLED_CPU_PERCENT:
                break
        return time.monotonic() - started

    async def idle_cpu(self, seconds: float = IDLE_SAMPLE_SECONDS) -> dict[str, float]:
        """Return the CPU use of every process over ``seconds`` without load."""
        start = self.cpu_start()
        await asyncio.sleep(seconds)
        return self.cpu_since(start, None)

    async def measured_load_me(
        self, system: System, cookies: Sequence[str], seconds: int
    ) -> tuple[LoadResult, dict[str, float]]:
        """Run load_me and return its result with the CPU use during it."""
        start = self.cpu_start()
        load = await self.load_me(system, cookies, seconds)
        return load, self.cpu_since(start, load)

    async def load_me(
        self, system: System, cookies: Sequence[str], seconds: int
    ) -> LoadResult:
        """Drive GET /api/v1/me with ``cookies`` in turn at the set concurrency."""
        url = system.url(ME_PATH)
        if self.generator == "wrk":
            return await run_wrk(url, cookies, seconds, self.options, self.work)
        spec = LoadSpec(
            requests=[RequestSpec("GET", url, cookie=cookie) for cookie in cookies],
            concurrency=self.options.concurrency,
            seconds=seconds,
        )
        return await drive_in_process(self.pool, spec)
