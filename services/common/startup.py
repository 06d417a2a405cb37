"""Start-up steps that wait for the database instead of crashing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .errors import ServiceUnavailable
from .mongo import retry_until_done


class StartupGate:
    """Run a start-up step in the background and report readiness until it is done."""

    def __init__(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._step = step
        self._done = asyncio.Event()

    async def run(self) -> None:
        await retry_until_done(self._step, name=self.name)
        self._done.set()

    async def check(self) -> None:
        if not self._done.is_set():
            raise ServiceUnavailable(detail=f"{self.name} not finished")
