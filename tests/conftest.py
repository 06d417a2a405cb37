"""Fixtures that start the real components: FerretDB, Redis and the services.

MONGODB_URL and REDIS_URL, when set, point the tests at existing servers
instead; every stack then uses a database and stream prefix of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from tests.support.processes import (
    Stack,
    start_ferretdb,
    start_redis,
    stop,
    with_database,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run tests marked ``last`` after all others."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("MONGODB_URL"):
        yield os.environ["MONGODB_URL"]
        return
    process, url = start_ferretdb(tmp_path_factory.mktemp("ferretdb"))
    yield url
    stop(process)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop(process)


@pytest.fixture(scope="session")
def stack(mongodb_url: str, redis_url: str) -> Iterator[Stack]:
    """One shared stack with default settings (bcrypt cost 4 for speed)."""
    shared = Stack(mongodb_url, redis_url)
    shared.start()
    yield shared
    shared.stop()


@pytest.fixture
def make_stack(mongodb_url: str, redis_url: str) -> Iterator[Callable[..., Stack]]:
    """Start a stack of its own with extra settings; stopped after the test."""
    started: list[Stack] = []

    def make(start: bool = True, **settings: str) -> Stack:
        own = Stack(mongodb_url, redis_url, settings=settings)
        started.append(own)
        if start:
            own.start()
        return own

    yield make
    for own in started:
        own.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client with its own cookie jar, like one browser profile."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield session


@pytest.fixture
async def new_client() -> AsyncIterator[Callable[[], aiohttp.ClientSession]]:
    """Make more independent clients, like more browsers; closed after the test."""
    clients: list[aiohttp.ClientSession] = []

    def make() -> aiohttp.ClientSession:
        client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def database(stack: Stack, mongodb_url: str) -> AsyncIterator[AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(
        with_database(mongodb_url, stack.database), tz_aware=True
    )
    yield client.get_default_database()
    await client.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def email() -> str:
    """A fresh address, so tests sharing a stack never collide."""
    return f"viewer-{uuid.uuid4().hex[:12]}@example.com"


PASSWORD = "popcorn at midnight"
DATA_DIR = Path(__file__).parent / "data"
