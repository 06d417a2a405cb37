"""The two systems under test, the users signed up on them, and shared names."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from bench.load import http_client
from services.identity.settings import IdentitySettings

OURS = "mflix-auth"
PEER = "Express peer"
PASSWORD = "popcorn at midnight"
DEFAULT_BCRYPT_COST: int = IdentitySettings.model_fields["bcrypt_cost"].default
OUR_DATABASE = "mflix_bench"
PEER_DATABASE = "mflix_peer"
ME_PATH = "/api/v1/me"
SIGNUP_CONCURRENCY = 8
# Seconds one signup request may take.
SIGNUP_TIMEOUT = 120.0


@dataclass(frozen=True)
class System:
    """A running system under test: its base URL and server processes by role."""

    name: str
    base_url: str
    pids: dict[str, int]
    mongodb_url: str
    database: str
    # Settings passed to the servers, without addresses and secrets.
    settings: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        """Return the URL of ``path`` (which starts with "/") on this system."""
        return f"{self.base_url}{path}"


@dataclass(frozen=True)
class User:
    email: str
    cookie: str


def find_ours(systems: Sequence[System]) -> System:
    """Return mflix-auth among the systems under test."""
    return next(system for system in systems if system.name == OURS)


def live_cookies(users: Sequence[User], revocations: int) -> list[str]:
    """Return the cookies of the users that the /me phase did not log out.

    That phase logs out the first ``revocations`` users.
    """
    return [user.cookie for user in users[revocations:]]


def cookie_header(response: aiohttp.ClientResponse) -> str:
    """Return the cookies a response set, as one Cookie request header."""
    return "; ".join(
        f"{name}={morsel.coded_value}" for name, morsel in response.cookies.items()
    )


async def sign_up(http: aiohttp.ClientSession, system: System, email: str) -> User:
    """Sign a user up, retrying a 503 up to twice with a new address.

    A 503 may be a timeout after the user was created, so a retry with the
    same address could return 409.
    """
    for attempt in range(3):
        address = email if attempt == 0 else email.replace("@", f"-retry{attempt}@")
        body = {"name": "Bench Viewer", "email": address, "password": PASSWORD}
        async with http.post(system.url("/api/v1/signup"), json=body) as response:
            text = await response.text()
            if response.status == 201:
                return User(address, cookie_header(response))
            if response.status != 503:
                break
        print(f"signup of {address} returned 503, retrying")
    raise RuntimeError(
        f"signup of {email} at {system.base_url} returned {response.status}: "
        f"{text[:200]}"
    )


async def sign_up_users(system: System, count: int) -> list[User]:
    """Sign up ``count`` new users, a few at a time, and return their cookies."""
    run_id = secrets.token_hex(4)
    semaphore = asyncio.Semaphore(SIGNUP_CONCURRENCY)

    async with http_client(SIGNUP_TIMEOUT) as http:

        async def one(index: int) -> User:
            async with semaphore:
                email = f"bench-{run_id}-{index}@example.com"
                return await sign_up(http, system, email)

        return await asyncio.gather(*(one(index) for index in range(count)))
