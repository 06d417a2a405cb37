"""Throttling of failed logins and signups, shared through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest

from tests.support.flows import PASSWORD, api_login, api_signup, form_csrf_token
from tests.support.processes import Stack


@pytest.fixture
def strict_stack(make_stack: Callable[..., Stack]) -> Stack:
    """A stack that locks an account after 3 failures and an address after 6."""
    return make_stack(
        MFLIX_GATEWAY_LOGIN_ACCOUNT_FAILURES="3",
        MFLIX_GATEWAY_LOGIN_ADDRESS_FAILURES="6",
        MFLIX_GATEWAY_LOGIN_MAX_LOCK="4",
        MFLIX_GATEWAY_SIGNUPS_PER_ADDRESS="3",
    )


async def fail_login(stack: Stack, email: str, times: int) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as attacker:
        for _ in range(times):
            response = await api_login(attacker, stack, email, "not the password")
            statuses.append(response.status)
    return statuses


async def test_repeated_failures_lock_account_with_retry_after(
    strict_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, strict_stack, email)

    statuses = await fail_login(strict_stack, email, 4)
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{strict_stack.url()}/api/v1/login",
            json={"email": email, "password": PASSWORD},
        ) as locked:
            body = await locked.json()

    assert statuses[:3] == [401, 401, 401]
    assert statuses[3] == 429
    assert locked.status == 429
    assert body["error"]["code"] == "too_many_requests"
    assert 1 <= int(locked.headers["Retry-After"]) <= 4


async def test_device_cookie_bypasses_account_lock(
    strict_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, strict_stack, email)
    first = await api_login(http, strict_stack, email)

    await fail_login(strict_stack, email, 3)
    again = await api_login(http, strict_stack, email)

    assert first.status == 200
    assert again.status == 200


async def test_lock_expires_after_max_lock(
    strict_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, strict_stack, email)
    await fail_login(strict_stack, email, 3)

    await asyncio.sleep(4.2)
    async with aiohttp.ClientSession() as new_browser:
        response = await api_login(new_browser, strict_stack, email)

    assert response.status == 200


async def test_signups_limited_per_address(strict_stack: Stack) -> None:
    statuses = []
    async with aiohttp.ClientSession() as client:
        for number in range(4):
            response = await api_signup(
                client, strict_stack, f"burst-{number}@example.com"
            )
            statuses.append(response.status)

    assert statuses == [201, 201, 201, 429]


async def test_login_form_shows_throttle_message(
    strict_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, strict_stack, email)
    await fail_login(strict_stack, email, 3)
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as browser:
        token = await form_csrf_token(browser, f"{strict_stack.url()}/login")
        async with browser.post(
            f"{strict_stack.url()}/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token},
            allow_redirects=False,
        ) as response:
            html = await response.text()

    assert response.status == 429
    assert "Too many attempts. Try again in" in html
    assert "Retry-After" in response.headers


async def test_concurrent_guesses_cannot_pass_the_limit_together(
    strict_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, strict_stack, email)

    async with aiohttp.ClientSession() as attacker:
        responses = await asyncio.gather(
            *[api_login(attacker, strict_stack, email, f"guess {n}") for n in range(8)]
        )
    statuses = sorted(response.status for response in responses)

    assert statuses.count(401) <= 3
    assert statuses.count(429) >= 5
    assert set(statuses) <= {401, 429}


async def test_password_change_guesses_are_throttled(
    strict_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, strict_stack, email)

    statuses = []
    for number in range(4):
        async with http.post(
            f"{strict_stack.url()}/api/v1/password",
            json={
                "current_password": f"guess {number}",
                "new_password": "a brand new one",
            },
        ) as response:
            await response.read()
            statuses.append(response.status)

    assert statuses == [422, 422, 422, 429]


async def test_other_spellings_of_email_share_the_account_limit(
    strict_stack: Stack, http: aiohttp.ClientSession
) -> None:
    await api_signup(http, strict_stack, "victim@mail.example.com")
    spellings = [
        "victim@mail。example.com",
        "VICTIM@MAIL.EXAMPLE.COM",
        "ｖｉｃｔｉｍ@mail.example.com",
        " victim@mail.example.com ",
    ]

    statuses = []
    async with aiohttp.ClientSession() as attacker:
        for spelling in spellings:
            response = await api_login(attacker, strict_stack, spelling, "wrong guess")
            statuses.append(response.status)

    assert statuses == [401, 401, 401, 429]


async def test_stolen_device_cookie_gets_its_own_small_limit(
    strict_stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, strict_stack, email)
    await api_login(http, strict_stack, email)

    statuses = []
    for _ in range(4):
        response = await api_login(http, strict_stack, email, "wrong guess")
        statuses.append(response.status)

    assert statuses == [401, 401, 401, 429]
