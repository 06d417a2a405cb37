"""A transactional outbox embedded in the documents whose insertion emits events.

FerretDB 1.x has no multi-document transactions, and it applies an update
by reading a document and writing it back without isolation. Inserts, on
the other hand, are atomic on both servers. So a change that must emit an
event is stored as a new document that carries the event in its
``outbox`` array, with ``outbox_since`` set. The relay publishes pending
envelopes to Redis and then pulls them from the document. A crash between
publishing and pulling republishes the event, which consumers tolerate
because delivery is at least once and handlers are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .bus import publish
from .clock import utc_now
from .events import Envelope

logger = logging.getLogger("mflix.outbox")

OUTBOX_FIELD = "outbox"
OUTBOX_SINCE_FIELD = "outbox_since"

Document = dict[str, Any]


def outbox_fields(*events: Envelope) -> Document:
    """Fields for a new document that carries ``events`` in its outbox."""
    return {
        OUTBOX_FIELD: [event.model_dump(mode="json") for event in events],
        OUTBOX_SINCE_FIELD: utc_now(),
    }


class OutboxRelay:
    """Publish the outboxes of some collections to one stream, in every process.

    Several relays may run at once: the worst case is an event published
    twice, never one lost.
    """

    def __init__(
        self,
        collections: list[AsyncCollection[Document]],
        redis: Redis,
        stream: str,
        *,
        interval: float = 1.0,
        batch_size: int = 100,
    ) -> None:
        self._collections = collections
        self._redis = redis
        self._stream = stream
        self._interval = interval
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self.published = 0

    async def create_indexes(self) -> None:
        for collection in self._collections:
            await collection.create_index(OUTBOX_SINCE_FIELD, sparse=True)

    def wake(self) -> None:
        """Ask for a pass now, so events go out without waiting for the interval."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.relay_pending()
            except asyncio.CancelledError:
                raise
            except (PyMongoError, RedisError, OSError) as error:
                logger.warning(
                    "outbox relay to %s failed, will retry: %r", self._stream, error
                )

    async def relay_pending(self) -> int:
        """Publish and remove pending events once; return how many went out."""
        count = 0
        for collection in self._collections:
            count += await self._relay_collection(collection)
        self.published += count
        return count

    async def _relay_collection(self, collection: AsyncCollection[Document]) -> int:
        count = 0
        cursor = collection.find(
            {OUTBOX_SINCE_FIELD: {"$exists": True}},
            {OUTBOX_FIELD: 1},
            limit=self._batch_size,
        )
        async for document in cursor:
            for raw in document.get(OUTBOX_FIELD) or []:
                await self._relay_one(collection, document["_id"], raw)
                count += 1
            await collection.update_one(
                {"_id": document["_id"], OUTBOX_FIELD: []},
                {"$unset": {OUTBOX_SINCE_FIELD: ""}},
            )
        return count

    async def _relay_one(
        self, collection: AsyncCollection[Document], document_id: Any, raw: Document
    ) -> None:
        try:
            envelope = Envelope.model_validate(raw)
        except ValueError as error:
            logger.error("dropping invalid outbox entry of %s: %r", document_id, error)
        else:
            await publish(self._redis, self._stream, envelope)
        # Pull the entry by its whole value: FerretDB 1.24 treats a $pull
        # condition such as {"id": ...} as an exact document, not a query.
        await collection.update_one(
            {"_id": document_id}, {"$pull": {OUTBOX_FIELD: raw}}
        )
