"""Calls to the internal APIs with the service credential, as the gateway makes them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.processes import SERVICE_TOKEN, Stack

AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


async def call(
    http: aiohttp.ClientSession,
    stack: Stack,
    service: str,
    method: str,
    path: str,
    payload: Any = None,
) -> tuple[int, dict[str, Any]]:
    async with http.request(
        method, stack.url(service) + path, json=payload, headers=AUTH
    ) as response:
        body = await response.json() if response.status != 204 else {}
        return response.status, body


async def create_session(
    http: aiohttp.ClientSession, stack: Stack, user_id: str = "user-1", **extra: Any
) -> tuple[str, dict[str, Any]]:
    status, body = await call(
        http,
        stack,
        "session",
        "POST",
        "/internal/v1/sessions",
        {
            "user": {"id": user_id, "name": "Ada", "email": "ada@example.com"},
            "user_agent": "tests",
            "ip": "127.0.0.1",
            **extra,
        },
    )
    assert status == 201, body
    return body["token"], body["session"]


async def resolve(
    http: aiohttp.ClientSession, stack: Stack, token: str
) -> tuple[int, dict[str, Any]]:
    return await call(
        http,
        stack,
        "session",
        "POST",
        "/internal/v1/sessions/resolve",
        {"token": token},
    )


async def metric(
    http: aiohttp.ClientSession, stack: Stack, service: str, sample: str
) -> float:
    """Read one Prometheus sample, such as ``name{label="x"}``; 0 when absent."""
    async with http.get(stack.url(service) + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


TOUCHES = 'mflix_session_writes_total{operation="touch"}'


@dataclass(frozen=True)
class TouchCount:
    """Session store touches counted while reading a session steadily."""

    statuses: list[int]
    touches: float
    seconds: float


async def count_touches(
    http: aiohttp.ClientSession,
    stack: Stack,
    read: Callable[[], Awaitable[int]],
    *,
    seconds: float,
) -> TouchCount:
    """Call ``read`` every 50 ms for ``seconds`` and count the touches it caused."""
    before = await metric(http, stack, "session", TOUCHES)
    statuses: list[int] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        statuses.append(await read())
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    after = await metric(http, stack, "session", TOUCHES)
    return TouchCount(statuses, after - before, elapsed)
