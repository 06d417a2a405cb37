"""The public JSON API against the real stack."""

from __future__ import annotations

import aiohttp

from tests.support.flows import COOKIE, PASSWORD, api_login, api_signup, me_status
from tests.support.processes import Stack


async def test_signup_logs_in_and_returns_user(
    http: aiohttp.ClientSession, stack: Stack, email: str
) -> None:
    response = await api_signup(http, stack, email, name="Grace")

    assert response.status == 201
    async with http.get(f"{stack.url()}/api/v1/me") as me:
        body = await me.json()
    assert me.status == 200
    assert body["user"]["email"] == email
    assert body["user"]["name"] == "Grace"
    assert set(body["session"]) == {
        "id",
        "created_at",
        "last_seen_at",
        "idle_expires_at",
        "absolute_expires_at",
        "remember",
    }


async def test_signup_cookie_attributes(
    http: aiohttp.ClientSession, stack: Stack, email: str
) -> None:
    response = await api_signup(http, stack, email)

    cookie = response.cookies[COOKIE]
    assert len(cookie.value) == 43
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == ""
    assert cookie["secure"] == ""


async def test_login_with_remember_sets_persistent_cookie(
    http: aiohttp.ClientSession, stack: Stack, email: str
) -> None:
    await api_signup(http, stack, email)

    response = await api_login(http, stack, email, remember=True)

    cookie = response.cookies[COOKIE]
    assert response.status == 200
    assert 14 * 24 * 3600 - 60 <= int(cookie["max-age"]) <= 14 * 24 * 3600


async def test_login_issues_new_token(
    http: aiohttp.ClientSession, stack: Stack, email: str
) -> None:
    first = await api_signup(http, stack, email)
    old_token = first.cookies[COOKIE].value

    second = await api_login(http, stack, email)

    assert second.status == 200
    assert second.cookies[COOKIE].value != old_token
    async with aiohttp.ClientSession(cookies={COOKIE: old_token}) as replay:
        assert await me_status(replay, stack) == 401


async def test_signup_email_taken_case_insensitively(
    http: aiohttp.ClientSession, stack: Stack, email: str
) -> None:
    await api_signup(http, stack, email)

    async with aiohttp.ClientSession() as other:
        response = await api_signup(other, stack, email.upper())
        async with other.post(
            f"{stack.url()}/api/v1/signup",
            json={"name": "X", "email": email.upper(), "password": PASSWORD},
        ) as again:
            body = await again.json()

    assert response.status == 409
    assert body["error"]["code"] == "email_taken"
    assert COOKIE not in response.cookies


async def test_signup_invalid_fields_answer_422(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    async with http.post(
        f"{stack.url()}/api/v1/signup",
        json={"name": " ", "email": "not-an-email", "password": "password"},
    ) as response:
        body = await response.json()

    assert response.status == 422
    assert body["error"]["code"] == "validation_failed"
    assert set(body["error"]["fields"]) == {"name", "email", "password"}
    assert COOKIE not in response.cookies


async def test_login_rejects_operator_object(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    async with http.post(
        f"{stack.url()}/api/v1/login", json={"email": {"$ne": None}, "password": "x"}
    ) as response:
        body = await response.json()

    assert response.status == 422
    assert body["error"]["fields"] == {"email": "Must be a string."}
    assert COOKIE not in response.cookies


async def test_login_unknown_email_and_wrong_password_look_alike(
    http: aiohttp.ClientSession, stack: Stack, email: str
) -> None:
    await api_signup(http, stack, email)

    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{stack.url()}/api/v1/login",
            json={"email": email, "password": "wrong pass!"},
        ) as wrong:
            wrong_body = await wrong.json()
        async with client.post(
            f"{stack.url()}/api/v1/login",
            json={"email": "nobody-" + email, "password": "wrong pass!"},
        ) as unknown:
            unknown_body = await unknown.json()

    assert wrong.status == 401
    assert unknown.status == 401
    assert wrong_body == unknown_body
    assert wrong_body["error"]["message"] == "Invalid email or password."


async def test_logout_ends_session_server_side(
    http: aiohttp.ClientSession, stack: Stack, email: str
) -> None:
    signup = await api_signup(http, stack, email)
    token = signup.cookies[COOKIE].value

    async with http.post(f"{stack.url()}/api/v1/logout") as response:
        await response.read()

    assert response.status == 204
    assert response.cookies[COOKIE].value == ""
    async with aiohttp.ClientSession(cookies={COOKIE: token}) as replay:
        assert await me_status(replay, stack) == 401


async def test_me_without_cookie_answers_401(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    async with http.get(f"{stack.url()}/api/v1/me") as response:
        body = await response.json()

    assert response.status == 401
    assert body["error"]["code"] == "not_logged_in"


async def test_me_with_forged_cookie_answers_401(stack: Stack) -> None:
    forged = "A" * 43

    async with aiohttp.ClientSession(cookies={COOKIE: forged}) as client:
        async with client.get(f"{stack.url()}/api/v1/me") as response:
            await response.read()

    assert response.status == 401
    assert response.cookies[COOKIE].value == ""


async def test_malformed_json_answers_400(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{stack.url()}/api/v1/login",
        data=b'{"email": ',
        headers={"Content-Type": "application/json"},
    ) as response:
        body = await response.json()

    assert response.status == 400
    assert body["error"]["code"] == "bad_request"


async def test_wrong_content_type_answers_415(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{stack.url()}/api/v1/login", data="email=a&password=b"
    ) as response:
        await response.read()

    assert response.status == 415


async def test_oversized_body_answers_413(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{stack.url()}/api/v1/login",
        json={"email": "a@example.com", "password": "x" * 100_000},
    ) as response:
        body = await response.json()

    assert response.status == 413
    assert body["error"]["code"] == "payload_too_large"


async def test_deeply_nested_json_answers_400(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{stack.url()}/api/v1/login",
        data=b"[" * 5000 + b"]" * 5000,
        headers={"Content-Type": "application/json"},
    ) as response:
        await response.read()

    assert response.status == 400


async def test_cross_site_api_call_is_refused(
    stack: Stack, http: aiohttp.ClientSession, email: str
) -> None:
    async with http.post(
        f"{stack.url()}/api/v1/login",
        json={"email": email, "password": PASSWORD},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    ) as response:
        body = await response.json()

    assert response.status == 403
    assert body["error"]["code"] == "cross_site_request"
