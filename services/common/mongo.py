"""MongoDB client creation and detection of server features."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

logger = logging.getLogger("mflix.mongo")

DEFAULT_DATABASE = "mflix"
# NotImplemented, the error FerretDB 1.x returns for index options it lacks.
NOT_IMPLEMENTED = 238

Document = dict[str, object]


def create_client(url: str) -> AsyncMongoClient[Document]:
    """Create a client that fails fast enough for a clear 503 to the caller."""
    return AsyncMongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        appname="mflix-auth",
    )


def database(client: AsyncMongoClient[Document]) -> AsyncDatabase[Document]:
    return client.get_default_database(DEFAULT_DATABASE)


async def create_ttl_index(collection: AsyncCollection[Document], field: str) -> bool:
    """Create a TTL index on ``field``; return False when the server has none.

    FerretDB 1.24 rejects ``expireAfterSeconds`` with NotImplemented, and
    then the caller must remove expired documents itself.
    """
    try:
        await collection.create_index(field, expireAfterSeconds=0, name=f"{field}_ttl")
    except OperationFailure as error:
        if error.code == NOT_IMPLEMENTED or "expireAfterSeconds" in str(error):
            logger.info("server has no TTL indexes, expired documents are swept")
            return False
        raise
    return True


async def retry_until_done(
    step: Callable[[], Awaitable[None]], *, name: str, max_delay: float = 5.0
) -> None:
    """Run a start-up step until it succeeds, so a late database is no crash loop."""
    attempt = 0
    while True:
        try:
            await step()
            return
        except PyMongoError as error:
            attempt += 1
            delay = min(max_delay, 0.2 * 2**attempt)
            logger.warning("%s failed, retrying in %.1fs: %r", name, delay, error)
            await asyncio.sleep(delay)


def mongo_check(client: AsyncMongoClient[Document]) -> Callable[[], Awaitable[None]]:
    """Return a readiness check that pings the MongoDB server."""

    async def mongodb() -> None:
        await client.admin.command("ping")

    return mongodb
