"""Listing and revoking sessions, and changing the password, through the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from tests.support.flows import (
    COOKIE,
    PASSWORD,
    api_login,
    api_signup,
    current_session_id,
    form_csrf_token,
    me_status,
)
from tests.support.processes import Stack

NEW_PASSWORD = "butter on the popcorn"


async def wait_for_status(
    client: aiohttp.ClientSession, stack: Stack, expected: int, attempts: int = 50
) -> int:
    status = await me_status(client, stack)
    for _ in range(attempts):
        if status == expected:
            break
        await asyncio.sleep(0.1)
        status = await me_status(client, stack)
    return status


async def test_sessions_lists_every_device_and_marks_current(
    stack: Stack, new_client: Callable[[], aiohttp.ClientSession], email: str
) -> None:
    laptop, phone = new_client(), new_client()
    await api_signup(laptop, stack, email)
    await api_login(phone, stack, email)

    async with laptop.get(f"{stack.url()}/api/v1/sessions") as response:
        body = await response.json()

    assert response.status == 200
    assert len(body["sessions"]) == 2
    assert [s["current"] for s in body["sessions"]].count(True) == 1
    assert {"id", "created_at", "last_seen_at", "user_agent", "ip"} <= set(
        body["sessions"][0]
    )


async def test_revoking_another_device_logs_it_out(
    stack: Stack, new_client: Callable[[], aiohttp.ClientSession], email: str
) -> None:
    laptop, phone = new_client(), new_client()
    await api_signup(laptop, stack, email)
    await api_login(phone, stack, email)
    phone_session = await current_session_id(phone, stack)

    async with laptop.delete(
        f"{stack.url()}/api/v1/sessions/{phone_session}"
    ) as response:
        await response.read()

    assert response.status == 204
    assert await wait_for_status(phone, stack, 401) == 401
    assert await me_status(laptop, stack) == 200


async def test_user_cannot_revoke_other_users_session(
    stack: Stack, new_client: Callable[[], aiohttp.ClientSession], email: str
) -> None:
    victim, attacker = new_client(), new_client()
    await api_signup(victim, stack, email)
    await api_signup(attacker, stack, "attacker-" + email)
    victim_session = await current_session_id(victim, stack)

    async with attacker.delete(
        f"{stack.url()}/api/v1/sessions/{victim_session}"
    ) as response:
        body = await response.json()
    async with attacker.get(f"{stack.url()}/api/v1/sessions") as listing:
        attacker_sessions = (await listing.json())["sessions"]

    assert response.status == 404
    assert body["error"]["code"] == "not_found"
    assert await me_status(victim, stack) == 200
    assert victim_session not in {s["id"] for s in attacker_sessions}


async def test_password_change_rotates_cookie_and_revokes_others(
    stack: Stack, new_client: Callable[[], aiohttp.ClientSession], email: str
) -> None:
    laptop, phone = new_client(), new_client()
    signup = await api_signup(laptop, stack, email)
    old_token = signup.cookies[COOKIE].value
    await api_login(phone, stack, email)

    async with laptop.post(
        f"{stack.url()}/api/v1/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    ) as response:
        await response.read()

    assert response.status == 204
    assert response.cookies[COOKIE].value not in {"", old_token}
    assert await me_status(laptop, stack) == 200
    assert await wait_for_status(phone, stack, 401) == 401
    async with aiohttp.ClientSession(cookies={COOKIE: old_token}) as replay:
        assert await me_status(replay, stack) == 401
    async with aiohttp.ClientSession() as fresh:
        assert (await api_login(fresh, stack, email, NEW_PASSWORD)).status == 200
        assert (await api_login(fresh, stack, email, PASSWORD)).status == 401


async def test_password_change_with_wrong_current_answers_422(
    stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(http, stack, email)

    async with http.post(
        f"{stack.url()}/api/v1/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
    ) as response:
        body = await response.json()

    assert response.status == 422
    assert body["error"]["fields"] == {
        "current_password": "The current password is wrong."
    }


async def test_password_change_requires_login(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{stack.url()}/api/v1/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    ) as response:
        await response.read()

    assert response.status == 401


async def test_logout_racing_requests_never_answer_5xx(
    stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    signup = await api_signup(http, stack, email)
    token = signup.cookies[COOKIE].value

    async with aiohttp.ClientSession(cookies={COOKIE: token}) as racer:
        requests = [me_status(racer, stack) for _ in range(50)]
        logout = http.post(f"{stack.url()}/api/v1/logout")
        results = await asyncio.gather(*requests[:25], logout, *requests[25:])
        after = await me_status(racer, stack)

    statuses = [r for r in results if isinstance(r, int)]
    assert all(status in {200, 401} for status in statuses)
    assert after == 401


async def test_revoked_device_is_refused_at_once_by_same_gateway(
    stack: Stack, new_client: Callable[[], aiohttp.ClientSession], email: str
) -> None:
    laptop, phone = new_client(), new_client()
    await api_signup(laptop, stack, email)
    await api_login(phone, stack, email)
    phone_session = await current_session_id(phone, stack)

    async with laptop.delete(
        f"{stack.url()}/api/v1/sessions/{phone_session}"
    ) as response:
        await response.read()
    immediately = await me_status(phone, stack)

    assert response.status == 204
    assert immediately == 401


async def test_revoke_others_form_is_effective_at_once(
    stack: Stack, new_client: Callable[[], aiohttp.ClientSession], email: str
) -> None:
    laptop = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    phone = new_client()
    await api_signup(laptop, stack, email)
    await api_login(phone, stack, email)
    assert await me_status(phone, stack) == 200
    token = await form_csrf_token(laptop, f"{stack.url()}/account")

    async with laptop.post(
        f"{stack.url()}/account/sessions/revoke-others",
        data={"csrf_token": token},
        allow_redirects=False,
    ) as response:
        await response.read()
    immediately = await me_status(phone, stack)
    await laptop.close()

    assert response.status == 303
    assert immediately == 401
