"""The HTML forms over real HTTP: CSRF, statuses, messages and headers."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.support.flows import COOKIE, PASSWORD, api_signup, form_csrf_token
from tests.support.processes import Stack


@pytest.fixture
async def browser() -> aiohttp.ClientSession:
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        yield session  # type: ignore[misc]


async def post_form(
    browser: aiohttp.ClientSession, url: str, data: dict[str, str], **headers: str
) -> tuple[aiohttp.ClientResponse, str]:
    async with browser.post(
        url, data=data, allow_redirects=False, headers=headers
    ) as response:
        return response, await response.text()


async def test_login_page_has_form_fields(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(f"{stack.url()}/login") as response:
        html = await response.text()

    assert response.status == 200
    assert "Welcome back" in html
    for field in (
        'name="email"',
        'name="password"',
        'name="remember"',
        'name="csrf_token"',
    ):
        assert field in html
    assert 'href="/signup"' in html


async def test_home_redirects_anonymous_to_login(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(f"{stack.url()}/", allow_redirects=False) as response:
        await response.read()

    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/"


async def test_form_signup_then_home_greets_user(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    token = await form_csrf_token(browser, f"{stack.url()}/signup")

    response, _ = await post_form(
        browser,
        f"{stack.url()}/signup",
        {"name": "Ada <b>", "email": email, "password": PASSWORD, "csrf_token": token},
    )
    async with browser.get(f"{stack.url()}/") as home:
        html = await home.text()

    assert response.status == 303
    assert response.headers["Location"] == "/"
    assert "Welcome back, Ada &lt;b&gt;" in html


async def test_form_login_redirects_to_safe_next(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    async with aiohttp.ClientSession() as other:
        await api_signup(other, stack, email)
    token = await form_csrf_token(browser, f"{stack.url()}/login?next=/account")

    response, _ = await post_form(
        browser,
        f"{stack.url()}/login",
        {"email": email, "password": PASSWORD, "csrf_token": token, "next": "/account"},
    )

    assert response.status == 303
    assert response.headers["Location"] == "/account"


async def test_form_login_ignores_offsite_next(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    async with aiohttp.ClientSession() as other:
        await api_signup(other, stack, email)
    token = await form_csrf_token(browser, f"{stack.url()}/login")

    response, _ = await post_form(
        browser,
        f"{stack.url()}/login",
        {
            "email": email,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example",
        },
    )

    assert response.status == 303
    assert response.headers["Location"] == "/"


async def test_form_login_failure_answers_401_with_message(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    token = await form_csrf_token(browser, f"{stack.url()}/login")

    response, html = await post_form(
        browser,
        f"{stack.url()}/login",
        {"email": email, "password": "wrong password", "csrf_token": token},
    )

    assert response.status == 401
    assert "Invalid email or password." in html
    assert COOKIE not in response.cookies


async def test_form_signup_invalid_answers_422_with_field_messages(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    token = await form_csrf_token(browser, f"{stack.url()}/signup")

    response, html = await post_form(
        browser,
        f"{stack.url()}/signup",
        {"name": "", "email": "nope", "password": "123", "csrf_token": token},
    )

    assert response.status == 422
    assert "This field is required." in html
    assert "Must be at least 8 characters." in html
    assert 'aria-invalid="true"' in html


async def test_form_signup_taken_email_answers_409(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    async with aiohttp.ClientSession() as other:
        await api_signup(other, stack, email)
    token = await form_csrf_token(browser, f"{stack.url()}/signup")

    response, html = await post_form(
        browser,
        f"{stack.url()}/signup",
        {"name": "Ada", "email": email, "password": PASSWORD, "csrf_token": token},
    )

    assert response.status == 409
    assert "An account with this email already exists." in html


async def test_form_post_without_csrf_token_is_refused(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    await form_csrf_token(browser, f"{stack.url()}/login")

    response, html = await post_form(
        browser, f"{stack.url()}/login", {"email": email, "password": PASSWORD}
    )

    assert response.status == 403
    assert "The form has expired." in html


async def test_csrf_token_of_another_browser_is_refused(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as attacker:
        stolen = await form_csrf_token(attacker, f"{stack.url()}/login")
    await form_csrf_token(browser, f"{stack.url()}/login")

    response, _ = await post_form(
        browser,
        f"{stack.url()}/login",
        {"email": email, "password": PASSWORD, "csrf_token": stolen},
    )

    assert response.status == 403


async def test_cross_site_form_post_is_refused(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    token = await form_csrf_token(browser, f"{stack.url()}/login")

    response, _ = await post_form(
        browser,
        f"{stack.url()}/login",
        {"email": email, "password": PASSWORD, "csrf_token": token},
        Origin="https://evil.example",
    )

    assert response.status == 403


async def test_logout_form_ends_session_and_clears_site_data(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    await api_signup(browser, stack, email)
    async with browser.get(f"{stack.url()}/") as home:
        token = re.search(
            r'name="csrf_token" value="([0-9a-f]{64})"', await home.text()
        )
    assert token is not None

    response, _ = await post_form(
        browser, f"{stack.url()}/logout", {"csrf_token": token.group(1)}
    )

    assert response.status == 303
    assert response.headers["Location"] == "/login"
    assert response.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert response.cookies[COOKIE].value == ""


@pytest.mark.parametrize("path", ["/login", "/api/v1/me", "/healthz"])
async def test_security_headers_on_every_response(
    stack: Stack, browser: aiohttp.ClientSession, path: str
) -> None:
    async with browser.get(f"{stack.url()}{path}") as response:
        await response.read()

    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers


async def test_static_assets_are_cacheable(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(f"{stack.url()}/static/mflix.css") as response:
        await response.read()

    assert response.status == 200
    assert "Cache-Control" not in response.headers


async def test_csrf_token_from_before_login_dies_at_login(
    stack: Stack, browser: aiohttp.ClientSession, email: str
) -> None:
    async with aiohttp.ClientSession() as other:
        await api_signup(other, stack, email)
    before = await form_csrf_token(browser, f"{stack.url()}/login")
    await post_form(
        browser,
        f"{stack.url()}/login",
        {"email": email, "password": PASSWORD, "csrf_token": before},
    )

    response, _ = await post_form(
        browser, f"{stack.url()}/logout", {"csrf_token": before}
    )
    after = await form_csrf_token(browser, f"{stack.url()}/account")

    assert response.status == 403
    assert after != before
