"""Headless Chromium from the system package, for the browser tests.

Playwright drives /usr/bin/chromium (the Debian package) instead of a
browser it downloads itself. Tests open one browser context per simulated
user, so cookies never leak between users or tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from tests.support.processes import ARTIFACTS

# Playwright's launch error names this path when it is missing, and
# `apt-get install chromium` provides it.
CHROMIUM = "/usr/bin/chromium"
# The last three flags turn off Chromium's own background requests (component
# updates, sync and other background networking), which the tests never start.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SCREENSHOTS = ARTIFACTS / "screenshots"


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """Launch headless Chromium, yield it, and close it on exit."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            await browser.close()


def screenshot_path(name: str) -> Path:
    """Return the PNG path for a screenshot name, creating its folder."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
