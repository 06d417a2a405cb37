"""No password, token, hash or secret reaches any service log.

Runs last, so it scans what every service logged during the whole suite,
after logins, failures, password changes and revocations of its own.
"""

from __future__ import annotations

import hashlib
import re

import aiohttp
import pytest

from tests.support.flows import COOKIE, PASSWORD, api_login, api_signup
from tests.support.processes import ARTIFACTS, SERVICE_TOKEN, Stack

DISTINCT_PASSWORD = "kangaroo court 4471"
BCRYPT_HASH = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{20,}")


@pytest.mark.last
async def test_logs_contain_no_secret(stack: Stack, email: str) -> None:
    tokens: list[str] = []
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as client:
        signup = await api_signup(client, stack, email, password=DISTINCT_PASSWORD)
        tokens.append(signup.cookies[COOKIE].value)
        await api_login(client, stack, email, "wrong " + DISTINCT_PASSWORD)
        login = await api_login(client, stack, email, DISTINCT_PASSWORD)
        tokens.append(login.cookies[COOKIE].value)
        async with client.post(f"{stack.url()}/api/v1/logout") as response:
            await response.read()

    text = "".join(
        path.read_text(errors="replace") for path in (ARTIFACTS / "logs").glob("*.log")
    )
    secrets = [DISTINCT_PASSWORD, PASSWORD, SERVICE_TOKEN, *tokens]
    secrets += [hashlib.sha256(token.encode()).hexdigest() for token in tokens]

    assert "request handled" in text
    for secret in secrets:
        assert secret not in text
    assert BCRYPT_HASH.search(text) is None
    assert "dev-secret-key-change-me" not in text
