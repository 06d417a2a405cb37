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

# Playwright names this path when it is missing: apt-get install chromium.
CHROMIUM = "/usr/bin/chromium"
# QUIC, background networking, component updates and sync are off so the
# browser makes no requests except those of the pages under test.
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
