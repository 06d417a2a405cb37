"""Malformed bodies, crafted cookies and odd paths get 4xx responses, never 5xx."""

from __future__ import annotations

import asyncio
import gzip

import aiohttp
import pytest

from tests.support.flows import PASSWORD, api_signup, form_csrf_token
from tests.support.processes import SERVICE_TOKEN, Stack


async def raw_request(stack: Stack, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are, bypassing client-side header checks."""
    port = stack.ports["gateway"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    status = int(response.split(b" ", 2)[1])
    return status, response


def post_bytes(path: str, content_type: bytes, body: bytes, *extra: bytes) -> bytes:
    headers = [
        b"POST " + path.encode() + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Content-Type: " + content_type,
        b"Content-Length: " + str(len(body)).encode(),
        b"Connection: close",
        *extra,
    ]
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


@pytest.mark.parametrize(
    ("content_type", "body", "extra"),
    [
        (b"application/x-www-form-urlencoded", b"email=\xff&password=x", ()),
        (b"application/x-www-form-urlencoded; charset=bogus", b"email=a", ()),
        (b"application/x-www-form-urlencoded; charset=utf-16", b"email=a", ()),
        (b"multipart/form-data", b"--x\r\n\r\n", ()),
        (b"multipart/form-data; boundary=", b"--\r\n", ()),
        (
            b"multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data",
            (),
        ),
        (
            b"application/x-www-form-urlencoded",
            b"not gzip at all",
            (b"Content-Encoding: gzip",),
        ),
    ],
)
async def test_malformed_form_body_answers_4xx(
    stack: Stack, content_type: bytes, body: bytes, extra: tuple[bytes, ...]
) -> None:
    status, _response = await raw_request(
        stack, post_bytes("/login", content_type, body, *extra)
    )

    assert 400 <= status < 500


async def test_bad_gzip_json_body_answers_400(stack: Stack) -> None:
    status, response = await raw_request(
        stack,
        post_bytes(
            "/api/v1/login",
            b"application/json",
            b"{not gzip",
            b"Content-Encoding: gzip",
        ),
    )

    assert status == 400
    assert b'"bad_request"' in response
    assert "malformed request body: RequestPayloadError" in stack.logs()
    assert "Unhandled exception" not in stack.logs()


async def test_valid_gzip_json_body_is_read(stack: Stack) -> None:
    body = gzip.compress(b'{"email": "nobody@example.com", "password": "whatever1"}')

    status, _response = await raw_request(
        stack,
        post_bytes(
            "/api/v1/login", b"application/json", body, b"Content-Encoding: gzip"
        ),
    )

    assert status == 401


@pytest.mark.parametrize(
    "cookie", ["mflix_csrf=" + "é" * 43, "mflix_csrf=\udcff" * 1, "mflix_device=abc.é"]
)
async def test_crafted_cookie_is_ignored(stack: Stack, cookie: str) -> None:
    raw_cookie = cookie.encode("utf-8", "surrogateescape")

    status, _response = await raw_request(
        stack,
        b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: "
        + raw_cookie
        + b"\r\nConnection: close\r\n\r\n",
    )

    assert status == 200


async def test_malformed_device_cookie_login_works(stack: Stack, email: str) -> None:
    async with aiohttp.ClientSession() as client:
        await api_signup(client, stack, email)
    body = f'{{"email": "{email}", "password": "{PASSWORD}"}}'.encode()

    status, _response = await raw_request(
        stack,
        post_bytes(
            "/api/v1/login", b"application/json", body, b"Cookie: mflix_device=\xff.abc"
        ),
    )

    assert status == 200


async def test_undecodable_user_agent_still_signs_up(stack: Stack, email: str) -> None:
    body = f'{{"name": "Ada", "email": "{email}", "password": "{PASSWORD}"}}'.encode()

    status, response = await raw_request(
        stack,
        post_bytes(
            "/api/v1/signup", b"application/json", body, b"User-Agent: \xff\xfe"
        ),
    )

    assert status == 201
    assert b"mflix_sid=" in response


@pytest.mark.parametrize("session_id", [".", "%2e", "%2e%2e", "a%2Fb"])
async def test_dot_segment_session_id_is_refused(
    stack: Stack, email: str, session_id: str
) -> None:
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as browser:
        await api_signup(browser, stack, email)
        token = await form_csrf_token(browser, f"{stack.url()}/account")
        async with browser.post(
            f"{stack.url()}/account/sessions/{session_id}/revoke",
            data={"csrf_token": token},
            allow_redirects=False,
        ) as response:
            await response.read()

    assert response.status in {303, 404}
    assert response.headers.get("Location", "/account?done=not-found").startswith(
        "/account"
    )
    assert SERVICE_TOKEN not in stack.logs()


async def test_unknown_page_renders_html_404(stack: Stack) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{stack.url()}/no/such/page") as response:
            html = await response.text()

    assert response.status == 404
    assert response.content_type == "text/html"
    assert "Page not found" in html


async def test_wrong_method_on_api_answers_json_405(stack: Stack) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{stack.url()}/api/v1/login") as response:
            body = await response.json()

    assert response.status == 405
    assert body["error"]["code"] == "method_not_allowed"


async def test_gateway_metrics_need_service_credential(stack: Stack) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{stack.url()}/metrics") as anonymous:
            await anonymous.read()
        async with client.get(
            f"{stack.url()}/metrics",
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        ) as scraper:
            text = await scraper.text()

    assert anonymous.status == 401
    assert scraper.status == 200
    assert "mflix_http_requests_total" in text


async def test_password_change_to_same_password_answers_422(
    stack: Stack, email: str
) -> None:
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as client:
        await api_signup(client, stack, email)
        async with client.post(
            f"{stack.url()}/api/v1/password",
            json={"current_password": PASSWORD, "new_password": PASSWORD},
        ) as response:
            body = await response.json()

    assert response.status == 422
    assert body["error"]["fields"] == {
        "new_password": "Must differ from the current password."
    }


async def test_huge_integer_in_json_answers_400(stack: Stack) -> None:
    body = b'{"email": "a@example.com", "password": ' + b"9" * 5000 + b"}"

    status, response = await raw_request(
        stack, post_bytes("/api/v1/login", b"application/json", body)
    )

    assert status == 400
    assert b'"bad_request"' in response


async def test_static_folder_listing_is_an_html_page(stack: Stack) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{stack.url()}/static/") as response:
            html = await response.text()

    assert response.status == 403
    assert response.content_type == "text/html"
    assert "Request blocked" in html
