"""Helpers of the event bus tests: a Redis server of one test, streams, polling."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from services.common.events import ENVELOPE_FIELD
from tests.support.processes import (
    ROOT,
    Stack,
    free_port,
    start_redis,
    stop,
    wait_for_ready,
    with_database,
)

ResultT = TypeVar("ResultT")


@dataclass
class RedisServer:
    """A redis-server that one test may stop and start again.

    It keeps its port and data folder across restarts, and writes an
    append-only file, so a restart keeps streams and consumer groups.
    """

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process, _url = start_redis(self.directory, self.port)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


def start_second_gateway(stack: Stack, name: str = "gateway-2") -> str:
    """Start another gateway process of ``stack`` on a port of its own.

    The process joins ``stack.processes`` under ``name``, so ``stack.stop()``
    and ``stack.kill(name)`` end it. Returns its base URL.
    """
    stack.ports[name] = free_port()
    environment = {**stack.environment, "MFLIX_GATEWAY_PORT": str(stack.ports[name])}
    log = open(stack.log_dir / f"{stack.name}-{name}.log", "ab")  # noqa: SIM115
    stack.processes[name] = subprocess.Popen(
        [sys.executable, "-m", "services.gateway"],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_ready(stack.url(name) + "/readyz")
    return stack.url(name)


async def poll(
    probe: Callable[[], Awaitable[ResultT]],
    done: Callable[[ResultT], bool],
    *,
    seconds: float,
    interval: float = 0.05,
) -> ResultT:
    """Call ``probe`` until ``done`` accepts its result or ``seconds`` pass.

    Returns the last result, accepted or not, so the caller asserts on it.
    The number of calls is bounded too, by ``seconds / interval + 1``.
    """
    deadline = time.monotonic() + seconds
    result = await probe()
    for _attempt in range(int(seconds / interval)):
        if done(result) or time.monotonic() >= deadline:
            break
        await asyncio.sleep(interval)
        result = await probe()
    return result


@asynccontextmanager
async def stack_database(stack: Stack) -> AsyncIterator[AsyncDatabase[Any]]:
    """Open the MongoDB database of ``stack``."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        with_database(stack.mongodb_url, stack.database), tz_aware=True
    )
    try:
        yield client.get_default_database()
    finally:
        await client.close()


@asynccontextmanager
async def redis_client(url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
    try:
        yield client
    finally:
        await client.aclose()


async def stream_envelopes(redis: Redis, stream: str) -> list[dict[str, Any]]:
    """Return the decoded envelopes of a stream, oldest first."""
    entries = await redis.xrange(stream)
    return [
        json.loads(fields[ENVELOPE_FIELD.encode()])
        for _entry_id, fields in entries
        if ENVELOPE_FIELD.encode() in fields
    ]


async def unacknowledged_count(redis: Redis, stream: str, group: str) -> int:
    """Count the entries that ``group`` has not acknowledged yet.

    That is its pending entries plus the entries never delivered to it.
    Without the stream or the group, every entry counts.
    """
    if not await redis.exists(stream):
        return 0
    groups = {_text(info["name"]): info for info in await redis.xinfo_groups(stream)}
    if group not in groups:
        return int(await redis.xlen(stream))
    last_delivered = _text(groups[group]["last-delivered-id"])
    undelivered = await redis.xrange(stream, min=f"({last_delivered}", max="+")
    return int(groups[group]["pending"]) + len(undelivered)


async def run_cli(
    stack: Stack, *arguments: str, **environment: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m services.cli`` with the environment of ``stack``."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", *arguments],
        cwd=ROOT,
        env={**stack.environment, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def error_log_lines(stack: Stack) -> list[str]:
    """Return the log lines of ``stack`` at level ERROR or above.

    Lines that are not JSON count as errors too. Every service logs JSON, so
    such a line was written around the logging, as a traceback is.
    """
    errors = []
    for line in stack.logs().splitlines():
        if not line.strip():
            continue
        try:
            level = json.loads(line).get("level")
        except ValueError:
            errors.append(line)
            continue
        if level in {"ERROR", "CRITICAL"}:
            errors.append(line)
    return errors


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
