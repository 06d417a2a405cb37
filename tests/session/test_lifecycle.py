"""Session lifecycle in the session service: expiry, lazy writes, revocation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import aiohttp
import pytest

from tests.support.internal import call, count_touches, create_session, resolve
from tests.support.processes import Stack


@pytest.fixture
def short_stack(make_stack: Callable[..., Stack]) -> Stack:
    """A stack whose sessions idle out after 2 s and end after 6 s, never swept."""
    return make_stack(
        MFLIX_SESSION_IDLE_TIMEOUT="2",
        MFLIX_SESSION_ABSOLUTE_TIMEOUT="6",
        MFLIX_SESSION_TOUCH_INTERVAL="1",
        MFLIX_SESSION_SWEEP_INTERVAL="3600",
    )


async def test_internal_api_requires_service_credential(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    async with http.post(
        stack.url("session") + "/internal/v1/sessions/resolve", json={"token": "x"}
    ) as response:
        body = await response.json()

    assert response.status == 401
    assert body["error"]["code"] == "unauthorized"


async def test_internal_api_rejects_wrong_credential(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    async with http.get(
        stack.url("identity") + "/internal/v1/users/x",
        headers={"Authorization": "Bearer wrong"},
    ) as response:
        await response.read()

    assert response.status == 401


async def test_store_keeps_only_token_hash(
    http: aiohttp.ClientSession, stack: Stack, database: object
) -> None:
    token, _session = await create_session(http, stack)

    documents = [doc async for doc in database.sessions.find({})]  # type: ignore[attr-defined]

    assert documents
    assert all(token not in str(document) for document in documents)


async def test_resolve_reports_unknown_token(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    status, body = await resolve(http, stack, "B" * 43)

    assert status == 404
    assert body["error"]["reason"] == "unknown"


async def test_resolve_reports_revoked_token(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    token, _session = await create_session(http, stack)
    await call(
        http, stack, "session", "POST", "/internal/v1/sessions/revoke", {"token": token}
    )

    status, body = await resolve(http, stack, token)

    assert status == 404
    assert body["error"]["reason"] == "revoked"


async def test_rotation_kills_old_token_and_keeps_data(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    token, _session = await create_session(http, stack, data={"next": "/account"})

    status, rotated = await call(
        http, stack, "session", "POST", "/internal/v1/sessions/rotate", {"token": token}
    )
    old_status, old_body = await resolve(http, stack, token)
    new_status, new_body = await resolve(http, stack, rotated["token"])

    assert status == 201
    assert old_status == 404
    assert old_body["error"]["reason"] == "rotated"
    assert new_status == 200
    assert new_body["session"]["data"] == {"next": "/account"}


async def test_racing_rotations_leave_one_live_session(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    token, session = await create_session(http, stack, user_id="rotating-user")

    results = await asyncio.gather(
        *[
            call(
                http,
                stack,
                "session",
                "POST",
                "/internal/v1/sessions/rotate",
                {"token": token},
            )
            for _ in range(10)
        ]
    )
    status, listing = await call(
        http, stack, "session", "GET", "/internal/v1/users/rotating-user/sessions"
    )

    assert sorted(status for status, _ in results).count(201) == 1
    assert all(status in {201, 404} for status, _ in results)
    assert len(listing["sessions"]) == 1


async def test_session_data_with_operator_keys_round_trips(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    data = {"$where": "sleep(1000)", "a.b": {"$gt": ""}, "text": "🎬 \u0000"}

    token, _session = await create_session(http, stack, data=data)
    status, body = await resolve(http, stack, token)

    assert status == 200
    assert body["session"]["data"] == data


async def test_session_data_over_limit_answers_422(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    status, body = await call(
        http,
        stack,
        "session",
        "POST",
        "/internal/v1/sessions",
        {
            "user": {"id": "u", "name": "Ada", "email": "ada@example.com"},
            "data": {"blob": "x" * 10_000},
        },
    )

    assert status == 422
    assert body["error"]["code"] == "session_data_too_large"


async def test_idle_timeout_ends_unused_session(
    http: aiohttp.ClientSession, short_stack: Stack
) -> None:
    token, _session = await create_session(http, short_stack)

    await asyncio.sleep(2.5)
    status, body = await resolve(http, short_stack, token)

    assert status == 404
    assert body["error"]["reason"] == "idle_expired"


async def test_absolute_timeout_ends_active_session(
    http: aiohttp.ClientSession, short_stack: Stack
) -> None:
    token, _session = await create_session(http, short_stack)

    statuses = []
    for _ in range(14):
        await asyncio.sleep(0.5)
        statuses.append((await resolve(http, short_stack, token))[0])
    status, body = await resolve(http, short_stack, token)

    assert statuses[:9] == [200] * 9
    assert status == 404
    assert body["error"]["reason"] == "absolute_expired"


async def test_reads_write_at_most_once_per_touch_interval(
    http: aiohttp.ClientSession, short_stack: Stack
) -> None:
    token, _session = await create_session(http, short_stack)

    async def read() -> int:
        return (await resolve(http, short_stack, token))[0]

    counted = await count_touches(http, short_stack, read, seconds=1.8)

    # The touch interval is 1 s: at most one write per started second.
    assert len(counted.statuses) >= 10
    assert set(counted.statuses) == {200}
    assert 1 <= counted.touches <= math.ceil(counted.seconds) + 1


async def test_user_cannot_revoke_another_users_session(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    token, session = await create_session(http, stack, user_id="owner")

    status, _body = await call(
        http,
        stack,
        "session",
        "DELETE",
        f"/internal/v1/users/intruder/sessions/{session['id']}",
    )
    still, _ = await resolve(http, stack, token)

    assert status == 404
    assert still == 200


async def test_sweeper_removes_expired_sessions(
    http: aiohttp.ClientSession, make_stack: Callable[..., Stack], mongodb_url: str
) -> None:
    sweeping = make_stack(
        MFLIX_SESSION_IDLE_TIMEOUT="1", MFLIX_SESSION_SWEEP_INTERVAL="0.5"
    )
    token, _session = await create_session(http, sweeping)
    if "server has no TTL indexes" not in sweeping.logs():
        pytest.skip("the server removes expired sessions with a TTL index")

    status = 200
    for _ in range(40):
        await asyncio.sleep(0.25)
        status, body = await resolve(http, sweeping, token)
        if body.get("error", {}).get("reason") == "unknown":
            break

    assert status == 404
    assert body["error"]["reason"] == "unknown"
    assert "swept 1 expired sessions" in sweeping.logs()


async def test_login_as_other_user_does_not_inherit_data(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    token, _session = await create_session(
        http, stack, user_id="first", data={"cart": 3}
    )

    _new_token, second = await create_session(
        http, stack, user_id="second", previous_token=token
    )
    old_status, _ = await resolve(http, stack, token)

    assert second["data"] == {}
    assert old_status == 404


async def test_relogin_as_same_user_keeps_data(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    token, _session = await create_session(
        http, stack, user_id="same", data={"cart": 3}
    )

    _new_token, again = await create_session(
        http, stack, user_id="same", previous_token=token
    )

    assert again["data"] == {"cart": 3}
