"""MongoDB or Redis down: clear 503 responses, no crash, automatic recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.support.flows import PASSWORD, api_login, api_signup, me_status
from tests.support.processes import Stack, start_ferretdb, stop, wait_for_ready


async def test_database_outage_answers_503_then_recovers(
    make_stack: Callable[..., Stack], tmp_path: Path, email: str
) -> None:
    process, url = start_ferretdb(tmp_path / "ferretdb")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    stack = make_stack(MONGODB_URL=url)
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as client:
        await api_signup(client, stack, email)
        await asyncio.sleep(1.1)

        stop(process)
        async with client.post(
            f"{stack.url()}/api/v1/login", json={"email": email, "password": PASSWORD}
        ) as down:
            down_body = await down.json()
        async with client.get(f"{stack.url()}/account") as page:
            page_html = await page.text()
        async with client.get(stack.url("identity") + "/readyz") as ready:
            await ready.read()

        process, _url = start_ferretdb(tmp_path / "ferretdb", port)
        wait_for_ready(stack.url("identity") + "/readyz", timeout=60)
        recovered = await api_login(client, stack, email)
        stop(process)

    assert down.status == 503
    assert down_body["error"]["code"] == "service_unavailable"
    assert page.status == 503
    assert "Temporarily unavailable" in page_html
    assert ready.status == 503
    assert recovered.status == 200
    assert all(p.poll() is None for p in stack.processes.values())


async def test_login_page_works_while_database_is_down(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    process, url = start_ferretdb(tmp_path / "ferretdb")
    stack = make_stack(MONGODB_URL=url)
    stop(process)

    async with aiohttp.ClientSession() as client:
        async with client.get(f"{stack.url()}/login") as response:
            await response.read()
        status = await me_status(client, stack)

    assert response.status == 200
    assert status == 401
