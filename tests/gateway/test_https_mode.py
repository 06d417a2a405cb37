"""Behind HTTPS: __Host- cookies with Secure, and HSTS."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from tests.support.flows import PASSWORD
from tests.support.processes import Stack


async def test_https_public_url_secures_cookies(
    make_stack: Callable[..., Stack], email: str
) -> None:
    stack = make_stack(start=False)
    stack.settings["MFLIX_GATEWAY_PUBLIC_URL"] = "https://mflix.example"
    stack.start()

    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{stack.url()}/api/v1/signup",
            json={"name": "Ada", "email": email, "password": PASSWORD},
        ) as response:
            await response.read()
        async with client.get(f"{stack.url()}/login") as page:
            await page.read()

    cookie = response.cookies["__Host-mflix_sid"]
    assert response.status == 201
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""
    assert "mflix_sid" not in response.cookies
    assert page.cookies["__Host-mflix_csrf"]["secure"] is True
    assert page.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains"
    )
