"""HTTP steps that many tests share: sign up, log in, read the session cookie."""

from __future__ import annotations

import re
from typing import Any, Protocol

import aiohttp

PASSWORD = "popcorn at midnight"
COOKIE = "mflix_sid"
_CSRF_INPUT = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


class Stack(Protocol):
    """Anything that provides the URL of a running gateway."""

    def url(self, service: str = "gateway") -> str: ...


async def api_signup(
    http: aiohttp.ClientSession,
    stack: Stack,
    email: str,
    password: str = PASSWORD,
    name: str = "Ada Viewer",
) -> aiohttp.ClientResponse:
    async with http.post(
        f"{stack.url()}/api/v1/signup",
        json={"name": name, "email": email, "password": password},
    ) as response:
        await response.read()
        return response


async def api_login(
    http: aiohttp.ClientSession,
    stack: Stack,
    email: str,
    password: str = PASSWORD,
    **extra: Any,
) -> aiohttp.ClientResponse:
    async with http.post(
        f"{stack.url()}/api/v1/login",
        json={"email": email, "password": password, **extra},
    ) as response:
        await response.read()
        return response


async def me_status(http: aiohttp.ClientSession, stack: Stack) -> int:
    async with http.get(f"{stack.url()}/api/v1/me") as response:
        await response.read()
        return response.status


def session_cookie(http: aiohttp.ClientSession) -> str | None:
    for cookie in http.cookie_jar:
        if cookie.key == COOKIE:
            return cookie.value
    return None


async def form_csrf_token(http: aiohttp.ClientSession, url: str) -> str:
    """Load a form page and return its CSRF token (its cookie lands in the jar)."""
    async with http.get(url) as response:
        html = await response.text()
    match = _CSRF_INPUT.search(html)
    assert match is not None, f"no csrf_token in {url}"
    return match.group(1)


async def current_session_id(http: aiohttp.ClientSession, stack: Stack) -> str:
    """Return the public id of the client's session, from GET /api/v1/me."""
    async with http.get(f"{stack.url()}/api/v1/me") as response:
        body = await response.json()
    return str(body["session"]["id"])
