"""The sessions and revocations collections: the only code that touches them.

FerretDB 1.x applies an update by reading the document and writing the
whole document back, without isolation, so two concurrent updates of one
document can lose one of them. A revocation is therefore never an update:
it is a document of its own in ``session_revocations``, inserted with the
token hash as ``_id``. An insert either wins or fails on the duplicate key,
on FerretDB as on MongoDB, so exactly one revocation (and one event) wins
and no touch or save of the session document can undo it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.events import Envelope
from services.common.mongo import create_ttl_index
from services.common.outbox import (
    OUTBOX_FIELD,
    OUTBOX_SINCE_FIELD,
    OutboxNotifier,
    ignore_outbox,
    outbox_fields,
)

SESSIONS_COLLECTION = "sessions"
REVOCATIONS_COLLECTION = "session_revocations"

SessionDocument = dict[str, Any]
_WITHOUT_OUTBOX = {OUTBOX_FIELD: 0, OUTBOX_SINCE_FIELD: 0}


class SessionStore:
    def __init__(self, db: AsyncDatabase[SessionDocument]) -> None:
        # Called with the collection and _id of each document inserted with
        # events; the service points it at its outbox relay.
        self.on_outbox: OutboxNotifier = ignore_outbox
        self.sessions: AsyncCollection[SessionDocument] = db[SESSIONS_COLLECTION]
        self.revocations: AsyncCollection[SessionDocument] = db[REVOCATIONS_COLLECTION]
        self.has_ttl_index = False

    async def create_indexes(self) -> None:
        await self.sessions.create_index("session_id", unique=True)
        await self.sessions.create_index("user_id")
        await self.revocations.create_index("session_id")
        ttl = [
            await create_ttl_index(collection, "expires_at")
            for collection in (self.sessions, self.revocations)
        ]
        self.has_ttl_index = all(ttl)
        if not self.has_ttl_index:
            for collection in (self.sessions, self.revocations):
                await collection.create_index("expires_at")

    async def insert(self, document: SessionDocument, event: Envelope) -> None:
        await self.sessions.insert_one({**document, **outbox_fields(event)})
        self.on_outbox(self.sessions, document["_id"])

    async def find(self, query: dict[str, Any]) -> SessionDocument | None:
        return await self.sessions.find_one(query, _WITHOUT_OUTBOX)

    async def find_revocation(self, hashed_token: str) -> SessionDocument | None:
        return await self.revocations.find_one({"_id": hashed_token}, _WITHOUT_OUTBOX)

    async def touch(
        self, hashed_token: str, now: datetime, changes: dict[str, Any]
    ) -> bool:
        """Apply ``changes`` to an unexpired session; False when it has expired.

        Revocation is not checked here: it lives in its own collection, and
        every read checks it, so a touch cannot bring a session back.
        """
        result = await self.sessions.update_one(
            {
                "_id": hashed_token,
                "idle_expires_at": {"$gt": now},
                "absolute_expires_at": {"$gt": now},
            },
            {"$set": changes},
        )
        return result.matched_count == 1

    async def insert_revocation(
        self, revocation: SessionDocument, event: Envelope
    ) -> bool:
        """Record a revocation; False when the session was already revoked."""
        try:
            await self.revocations.insert_one({**revocation, **outbox_fields(event)})
        except DuplicateKeyError:
            return False
        self.on_outbox(self.revocations, revocation["_id"])
        return True

    async def for_user(self, user_id: str, now: datetime) -> list[SessionDocument]:
        """Return the user's unexpired sessions, revoked ones included."""
        cursor = self.sessions.find(
            {
                "user_id": user_id,
                "idle_expires_at": {"$gt": now},
                "absolute_expires_at": {"$gt": now},
            },
            _WITHOUT_OUTBOX,
        ).sort("last_seen_at", -1)
        return [document async for document in cursor]

    async def revoked_among(self, hashed_tokens: list[str]) -> set[str]:
        if not hashed_tokens:
            return set()
        cursor = self.revocations.find({"_id": {"$in": hashed_tokens}}, {"_id": 1})
        return {document["_id"] async for document in cursor}

    async def delete_expired(self, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` expired sessions and revocations per collection."""
        removed = 0
        for collection in (self.sessions, self.revocations):
            cursor = collection.find(
                {"expires_at": {"$lte": now}, OUTBOX_SINCE_FIELD: {"$exists": False}},
                {"_id": 1},
                limit=limit,
            )
            ids = [document["_id"] async for document in cursor]
            if ids:
                # Re-check expiry in the delete: a touch may have extended a
                # session between the find and the delete.
                result = await collection.delete_many(
                    {"_id": {"$in": ids}, "expires_at": {"$lte": now}}
                )
                removed += result.deleted_count
        return removed
