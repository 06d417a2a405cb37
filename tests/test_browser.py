"""The server-rendered pages in headless Chromium against real services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Response,
    expect,
)

from tests.support.browser import launch_chromium, screenshot_path
from tests.support.bus import RedisServer
from tests.support.flows import COOKIE, PASSWORD, api_signup
from tests.support.processes import Stack

pytestmark = pytest.mark.browser

NewContext = Callable[[str], Awaitable[BrowserContext]]
NEW_PASSWORD = "butter on the popcorn"

# Returns the focused element's id (its text when it has no id) and outline.
FOCUSED_ELEMENT = """() => {
  const element = document.activeElement;
  const style = getComputedStyle(element);
  return {
    name: element.id || element.textContent.trim(),
    outlineStyle: style.outlineStyle,
    outlineWidth: style.outlineWidth,
  };
}"""
# Runs before the page's own scripts, so no violation is missed.
CSP_VIOLATION_RECORDER = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
async def new_context(browser: Browser) -> AsyncIterator[NewContext]:
    """Open browser contexts, one per simulated user, and close them after the test."""
    contexts: list[BrowserContext] = []

    async def make(base_url: str) -> BrowserContext:
        context = await browser.new_context(base_url=base_url)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


@pytest.fixture
async def page(new_context: NewContext, stack: Stack) -> Page:
    context = await new_context(stack.url())
    return await context.new_page()


def is_form_submission(response: Response) -> bool:
    request = response.request
    return request.method == "POST" and request.is_navigation_request()


def path_of(page: Page) -> str:
    return urlsplit(page.url).path


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def submit(button: Locator) -> Response:
    """Click a form's submit button and return the response to its POST.

    Returns after the resulting page (after any redirect) has loaded, so
    checks never run against the page that held the form.
    """
    page = button.page
    async with page.expect_event("load"):
        async with page.expect_response(is_form_submission) as submission:
            await button.click()
    return await submission.value


async def sign_up_through_form(page: Page, name: str, email: str) -> None:
    await page.goto("/signup")
    await page.get_by_label("Name", exact=True).press_sequentially(name)
    await page.get_by_label("Email", exact=True).press_sequentially(email)
    await page.get_by_label("Password", exact=True).press_sequentially(PASSWORD)

    response = await submit(page.get_by_role("button", name="Sign up"))

    assert response.status == 303, f"signup of {email} returned {response.status}"
    assert path_of(page) == "/"


async def log_in_through_form(page: Page, email: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Email", exact=True).press_sequentially(email)
    await page.get_by_label("Password", exact=True).press_sequentially(PASSWORD)

    response = await submit(page.get_by_role("button", name="Log in"))

    assert response.status == 303, f"login of {email} returned {response.status}"
    assert path_of(page) == "/"


async def test_form_login_survives_service_restart(
    new_context: NewContext, make_stack: Callable[..., Stack], email: str
) -> None:
    # Killing services of the shared stack would break tests running beside it.
    stack = make_stack()
    page = await (await new_context(stack.url())).new_page()
    heading = page.get_by_role("heading", level=1)

    await sign_up_through_form(page, "Rita Reel", email)

    await expect(heading).to_have_text("Welcome back, Rita Reel")
    await page.screenshot(path=screenshot_path("home-page-logged-in"), full_page=True)

    header = page.get_by_role("banner")

    logout = await submit(header.get_by_role("button", name="Log out"))

    assert logout.status == 303
    assert path_of(page) == "/login"
    await expect(heading).to_have_text("Welcome back")

    await log_in_through_form(page, email)

    await expect(heading).to_have_text("Welcome back, Rita Reel")

    stack.kill("session")
    stack.kill("gateway")
    stack.start("session", "gateway")
    response = await page.reload()

    assert response is not None
    assert response.status == 200
    assert path_of(page) == "/"
    await expect(heading).to_have_text("Welcome back, Rita Reel")


async def test_signup_form_shows_field_errors(page: Page) -> None:
    await page.goto("/signup")
    await page.get_by_label("Name", exact=True).press_sequentially("Rita Reel")
    await page.get_by_label("Email", exact=True).press_sequentially("rita.example.com")
    await page.get_by_label("Password", exact=True).press_sequentially("short")

    response = await submit(page.get_by_role("button", name="Sign up"))

    assert response.status == 422
    assert path_of(page) == "/signup"
    await expect(page.get_by_role("alert")).to_have_text(
        "Please correct the fields below."
    )
    await expect(page.locator("#email-error")).to_be_visible()
    await expect(page.locator("#password-error")).to_have_text(
        "Must be at least 8 characters."
    )
    await expect(page.get_by_label("Email", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Rita Reel")
    await page.screenshot(
        path=screenshot_path("signup-page-validation-errors"), full_page=True
    )


async def test_wrong_password_keeps_email(
    page: Page, http: aiohttp.ClientSession, stack: Stack, email: str
) -> None:
    await api_signup(http, stack, email)
    await page.goto("/login")
    await page.get_by_label("Email", exact=True).press_sequentially(email)
    await page.get_by_label("Password", exact=True).press_sequentially(
        "popcorn at noon"
    )

    response = await submit(page.get_by_role("button", name="Log in"))

    assert response.status == 401
    assert path_of(page) == "/login"
    await expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")
    await expect(page.get_by_label("Email", exact=True)).to_have_value(email)
    await expect(page.get_by_label("Password", exact=True)).to_have_value("")


async def test_login_form_keyboard_order(page: Page) -> None:
    await page.goto("/login")
    stops: list[dict[str, str]] = []

    # Eight stops pass the skip link and the brand link with room to spare.
    for _ in range(8):
        await page.keyboard.press("Tab")
        stops.append(await page.evaluate(FOCUSED_ELEMENT))

    names = [stop["name"] for stop in stops]
    assert "email" in names, f"Tab never reached the email field: {names}"
    start = names.index("email")
    form_stops = stops[start : start + 4]
    assert [stop["name"] for stop in form_stops] == [
        "email",
        "password",
        "remember",
        "Log in",
    ]
    for stop in form_stops:
        assert stop["outlineStyle"] != "none", f"no focus outline on {stop['name']}"
        assert stop["outlineWidth"] != "0px", f"zero-width outline on {stop['name']}"


async def test_login_page_no_console_errors(page: Page) -> None:
    console_errors: list[str] = []
    page_errors: list[str] = []

    def record_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    page.on("console", record_console)
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    await page.add_init_script(CSP_VIOLATION_RECORDER)

    response = await page.goto("/login", wait_until="networkidle")

    assert response is not None
    assert response.status == 200
    # Without the header the browser enforces nothing and the check is empty.
    assert "content-security-policy" in await response.all_headers()
    assert console_errors == []
    assert page_errors == []
    assert await page.evaluate("() => window.cspViolations") == []
    await page.screenshot(path=screenshot_path("login-page"), full_page=True)


async def test_login_page_requests_own_origin_only(page: Page, stack: Stack) -> None:
    requested: list[str] = []

    def record_request(request: Request) -> None:
        requested.append(request.url)

    page.on("request", record_request)

    await page.goto("/login", wait_until="networkidle")

    assert f"{stack.url()}/static/mflix.css" in requested
    foreign = [url for url in requested if origin_of(url) != stack.url()]
    assert foreign == []


async def test_revoked_session_logs_out_other_browser(
    new_context: NewContext, stack: Stack, email: str
) -> None:
    first = await (await new_context(stack.url())).new_page()
    second = await (await new_context(stack.url())).new_page()
    await sign_up_through_form(first, "Rita Reel", email)
    await log_in_through_form(second, email)
    await first.goto("/account")
    rows = first.locator("table.sessions tbody tr")
    await expect(rows).to_have_count(2)
    await first.screenshot(
        path=screenshot_path("account-page-two-sessions"), full_page=True
    )
    other_row = rows.filter(has_not=first.get_by_text("This device"))

    revoke = await submit(other_row.get_by_role("button", name="Log out"))

    assert revoke.status == 303
    await expect(first.get_by_role("status")).to_have_text("The device was logged out.")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("This device")

    await second.goto("/")

    assert path_of(second) == "/login"
    await expect(second.get_by_role("heading", level=1)).to_have_text("Welcome back")


async def session_cookie_of(context: BrowserContext) -> str | None:
    for cookie in await context.cookies():
        if cookie["name"] == COOKIE:
            return cookie["value"]
    return None


async def change_password_through_form(page: Page) -> Response:
    await page.goto("/account")
    await page.get_by_label("Current password", exact=True).press_sequentially(PASSWORD)
    await page.get_by_label("New password", exact=True).press_sequentially(NEW_PASSWORD)
    return await submit(page.get_by_role("button", name="Change password"))


async def seconds_until_logged_out(page: Page, attempts: int = 100) -> float | None:
    """Reload / until it lands on /login; return the elapsed seconds, or None."""
    started = time.monotonic()
    for _ in range(attempts):
        await page.goto("/")
        if path_of(page) == "/login":
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def test_password_change_logs_other_browser_out(
    new_context: NewContext, make_stack: Callable[..., Stack], email: str
) -> None:
    stack = make_stack()
    first_context = await new_context(stack.url())
    first = await first_context.new_page()
    second = await (await new_context(stack.url())).new_page()
    await sign_up_through_form(first, "Rita Reel", email)
    await log_in_through_form(second, email)
    cookie_before = await session_cookie_of(first_context)

    response = await change_password_through_form(first)
    elapsed = await seconds_until_logged_out(second)
    await first.goto("/")

    assert response.status == 303
    assert elapsed is not None
    assert elapsed < 1.0
    assert path_of(first) == "/"
    assert await session_cookie_of(first_context) not in {None, cookie_before}


async def test_password_change_with_redis_down_logs_out_after_recovery(
    new_context: NewContext,
    make_stack: Callable[..., Stack],
    email: str,
    tmp_path: Path,
) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        stack = make_stack(REDIS_URL=redis.url)
        first = await (await new_context(stack.url())).new_page()
        second = await (await new_context(stack.url())).new_page()
        await sign_up_through_form(first, "Rita Reel", email)
        await log_in_through_form(second, email)

        redis.stop()
        response = await change_password_through_form(first)
        still_in = await second.goto("/")
        redis.start()
        elapsed = await seconds_until_logged_out(second)
        await first.goto("/")
    finally:
        redis.stop()

    assert response.status == 303
    assert still_in is not None
    assert elapsed is not None
    assert path_of(first) == "/"


async def test_account_page_has_no_horizontal_scroll(page: Page, email: str) -> None:
    await sign_up_through_form(page, "Rita Reel", email)

    await page.goto("/account")
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth"
    )

    assert overflow <= 0
