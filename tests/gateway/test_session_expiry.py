"""Session expiry, device details and lazy writes, seen through the gateway."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import aiohttp
import pytest

from tests.support.flows import COOKIE, api_signup, me_status
from tests.support.internal import count_touches
from tests.support.processes import Stack


@pytest.fixture
def short_stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(
        MFLIX_SESSION_IDLE_TIMEOUT="2",
        MFLIX_SESSION_ABSOLUTE_TIMEOUT="5",
        MFLIX_SESSION_TOUCH_INTERVAL="1",
        MFLIX_SESSION_SWEEP_INTERVAL="3600",
        MFLIX_GATEWAY_TRUSTED_PROXIES="127.0.0.1",
    )


async def test_cookie_replayed_after_idle_timeout_answers_401(
    short_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    signup = await api_signup(http, short_stack, email)
    token = signup.cookies[COOKIE].value

    await asyncio.sleep(2.5)
    async with aiohttp.ClientSession(cookies={COOKIE: token}) as replay:
        status = await me_status(replay, short_stack)

    assert status == 401
    assert "session cookie rejected: idle_expired" in short_stack.logs()


async def test_steady_activity_ends_at_absolute_timeout(
    short_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, short_stack, email)

    statuses = []
    for _ in range(12):
        await asyncio.sleep(0.5)
        statuses.append(await me_status(http, short_stack))

    assert statuses[:8] == [200] * 8
    assert statuses[-1] == 401


async def test_steady_reads_write_once_per_touch_interval(
    short_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, short_stack, email)

    counted = await count_touches(
        http, short_stack, lambda: me_status(http, short_stack), seconds=2.5
    )

    # The touch interval is 1 s: at most one write per started second.
    assert len(counted.statuses) >= 10
    assert set(counted.statuses) == {200}
    assert 1 <= counted.touches <= math.ceil(counted.seconds) + 1


async def test_session_records_forwarded_client_address(
    short_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    async with http.post(
        f"{short_stack.url()}/api/v1/signup",
        json={"name": "Ada", "email": email, "password": "popcorn at midnight"},
        headers={
            "X-Forwarded-For": "203.0.113.9, 127.0.0.1",
            "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) "
            "Gecko/20100101 Firefox/120.0",
        },
    ) as response:
        await response.read()

    async with http.get(f"{short_stack.url()}/api/v1/sessions") as listing:
        sessions = (await listing.json())["sessions"]

    assert response.status == 201
    assert sessions[0]["ip"] == "203.0.113.9"
    assert "Firefox" in sessions[0]["user_agent"]


async def test_untrusted_peer_cannot_spoof_address(
    stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    async with http.post(
        f"{stack.url()}/api/v1/signup",
        json={"name": "Ada", "email": email, "password": "popcorn at midnight"},
        headers={"X-Forwarded-For": "198.51.100.7"},
    ) as response:
        await response.read()

    async with http.get(f"{stack.url()}/api/v1/sessions") as listing:
        sessions = (await listing.json())["sessions"]

    assert sessions[0]["ip"] == "127.0.0.1"
