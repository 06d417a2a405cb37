"""Background tasks that outlive their failures, tied to an app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

logger = logging.getLogger("mflix.tasks")

TaskFactory = Callable[[], Awaitable[None]]


async def keep_running(
    name: str, factory: TaskFactory, *, restart_delay: float = 1.0
) -> None:
    """Run ``factory()`` again whenever it ends or raises, until cancelled."""
    while True:
        try:
            await factory()
            logger.warning("background task %s ended, restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("background task %s crashed, restarting", name)
        await asyncio.sleep(restart_delay)


@contextlib.asynccontextmanager
async def background(
    forever: dict[str, TaskFactory], once: dict[str, TaskFactory] | None = None
) -> AsyncIterator[None]:
    """Run tasks for the duration of the block, then cancel them.

    Tasks in ``forever`` are restarted whenever they end; tasks in ``once``
    run to completion a single time.
    """
    tasks = [
        asyncio.create_task(keep_running(name, factory), name=name)
        for name, factory in forever.items()
    ]
    tasks += [
        asyncio.create_task(factory(), name=name)  # type: ignore[arg-type]
        for name, factory in (once or {}).items()
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
