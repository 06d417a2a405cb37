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
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .bus import publish
from .clock import utc_now
from .events import Envelope

logger = logging.getLogger("mflix.outbox")

# Seconds after which a periodic scan treats a pending event as left over.
LEFTOVER_AGE = 10.0
# Documents a relay remembers for retries while Redis is down.
MAX_QUEUED_DOCUMENTS = 10_000

OUTBOX_FIELD = "outbox"
OUTBOX_SINCE_FIELD = "outbox_since"

Document = dict[str, Any]
OutboxNotifier = Callable[[AsyncCollection[Document], Any], None]


def ignore_outbox(collection: AsyncCollection[Document], document_id: Any) -> None:
    """Do nothing: the default notifier, for stores used without a relay."""


def outbox_fields(*events: Envelope) -> Document:
    """Fields for a new document that carries ``events`` in its outbox."""
    return {
        OUTBOX_FIELD: [event.model_dump(mode="json") for event in events],
        OUTBOX_SINCE_FIELD: utc_now(),
    }


class OutboxRelay:
    """Publish the outboxes of some collections to one stream, in every process.

    Each process relays the documents it inserted itself, by ``_id``, as
    soon as it is notified, and retries them every ``interval`` while Redis
    is down. A full scan for pending events, which also finds those left by
    a crashed process, runs at start and every ``scan_interval`` seconds:
    FerretDB 1.x serves such a scan without its index, so it is kept rare.
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
        scan_interval: float = 60.0,
        batch_size: int = 100,
    ) -> None:
        self._collections = {collection.name: collection for collection in collections}
        self._redis = redis
        self._stream = stream
        self._interval = interval
        self._scan_interval = scan_interval
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        # Bounded: past the limit the oldest ids are forgotten, and the next
        # full scan still finds their events in MongoDB.
        self._queued: deque[tuple[str, Any]] = deque(maxlen=MAX_QUEUED_DOCUMENTS)
        self.published = 0

    async def create_indexes(self) -> None:
        for collection in self._collections.values():
            await collection.create_index(OUTBOX_SINCE_FIELD, sparse=True)

    def notify(self, collection: AsyncCollection[Document], document_id: Any) -> None:
        """Queue a document just inserted with events, and relay it now."""
        self._queued.append((collection.name, document_id))
        self._wake.set()

    async def run(self) -> None:
        next_scan = 0.0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._relay_queued()
                if time.monotonic() >= next_scan:
                    # After the first scan, leave recent events to the
                    # process that inserted them, so both rarely publish one.
                    min_age = LEFTOVER_AGE if next_scan else 0.0
                    await self.relay_pending(min_age=min_age)
                    next_scan = time.monotonic() + self._scan_interval
            except asyncio.CancelledError:
                raise
            except (PyMongoError, RedisError, OSError) as error:
                logger.warning(
                    "outbox relay to %s failed, will retry: %r", self._stream, error
                )

    async def flush(self) -> None:
        """Relay the notified documents now; raise if MongoDB or Redis fails."""
        await self._relay_queued()

    async def _relay_queued(self) -> None:
        while self._queued:
            name, document_id = self._queued[0]
            collection = self._collections[name]
            document = await collection.find_one(
                {"_id": document_id}, {OUTBOX_FIELD: 1}
            )
            if document is not None:
                self.published += await self._relay_document(collection, document)
            self._queued.popleft()

    async def relay_pending(self, *, min_age: float = 0.0) -> int:
        """Publish and remove pending events at least ``min_age`` seconds old.

        Returns how many events went out.
        """
        count = 0
        older_than = utc_now() - timedelta(seconds=min_age)
        for collection in self._collections.values():
            cursor = collection.find(
                {OUTBOX_SINCE_FIELD: {"$lte": older_than}},
                {OUTBOX_FIELD: 1},
                limit=self._batch_size,
            )
            async for document in cursor:
                count += await self._relay_document(collection, document)
        self.published += count
        return count

    async def _relay_document(
        self, collection: AsyncCollection[Document], document: Document
    ) -> int:
        count = 0
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
