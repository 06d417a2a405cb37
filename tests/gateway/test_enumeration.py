"""Unknown email and wrong password look alike, in body and in time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import aiohttp

from tests.support.flows import api_signup
from tests.support.processes import Stack

ROUNDS = 15


async def timed_login(client: aiohttp.ClientSession, stack: Stack, email: str) -> float:
    started = time.perf_counter()
    async with client.post(
        f"{stack.url()}/api/v1/login",
        json={"email": email, "password": "wrong password!"},
    ) as response:
        await response.read()
    assert response.status == 401
    return time.perf_counter() - started


async def test_unknown_email_costs_as_much_as_wrong_password(
    make_stack: Callable[..., Stack], email: str
) -> None:
    # Cost 10 makes one bcrypt check take tens of milliseconds, so skipping
    # it for unknown addresses would stand out clearly from the noise.
    stack = make_stack(
        MFLIX_IDENTITY_BCRYPT_COST="10", MFLIX_GATEWAY_LOGIN_ACCOUNT_FAILURES="1000"
    )
    async with aiohttp.ClientSession() as client:
        await api_signup(client, stack, email)
        wrong, unknown = [], []
        for _ in range(ROUNDS):
            wrong.append(await timed_login(client, stack, email))
            unknown.append(await timed_login(client, stack, "nobody-" + email))

    wrong_median = statistics.median(wrong)
    unknown_median = statistics.median(unknown)

    assert abs(wrong_median - unknown_median) < 0.25 * wrong_median
