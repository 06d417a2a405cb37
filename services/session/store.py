"""The sessions collection: the only code that reads or writes it.

Every write that ends or extends a session is conditional on the session
still being live, so a late touch or save never revives a session that
was revoked or expired meanwhile.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from services.common.events import Envelope
from services.common.mongo import create_ttl_index
from services.common.outbox import merge_updates, outbox_fields, outbox_update

SESSIONS_COLLECTION = "sessions"

SessionDocument = dict[str, Any]


def live_filter(now: datetime) -> dict[str, Any]:
    """Match sessions that are neither revoked nor past either expiry."""
    return {
        "revoked_at": None,
        "idle_expires_at": {"$gt": now},
        "absolute_expires_at": {"$gt": now},
    }


class SessionStore:
    def __init__(self, collection: AsyncCollection[SessionDocument]) -> None:
        self._sessions = collection
        self.has_ttl_index = False

    async def create_indexes(self) -> None:
        await self._sessions.create_index("session_id", unique=True)
        await self._sessions.create_index("user_id")
        self.has_ttl_index = await create_ttl_index(self._sessions, "expires_at")
        if not self.has_ttl_index:
            await self._sessions.create_index("expires_at")

    async def insert(self, document: SessionDocument, event: Envelope) -> None:
        await self._sessions.insert_one({**document, **outbox_fields(event)})

    async def find(self, hashed_token: str) -> SessionDocument | None:
        return await self.find_one({"_id": hashed_token})

    async def find_one(self, query: dict[str, Any]) -> SessionDocument | None:
        return await self._sessions.find_one(query, {"outbox": 0})

    async def touch(
        self, hashed_token: str, now: datetime, changes: dict[str, Any]
    ) -> bool:
        """Apply ``changes`` to a live session; False when it is no longer live."""
        result = await self._sessions.update_one(
            {"_id": hashed_token, **live_filter(now)}, {"$set": changes}
        )
        return result.matched_count == 1

    async def revoke(
        self,
        query: dict[str, Any],
        now: datetime,
        changes: dict[str, Any],
        event: Envelope,
    ) -> SessionDocument | None:
        """End one unrevoked session matching ``query`` and store its event with it."""
        update = merge_updates(
            {"$set": {"revoked_at": now, **changes}}, outbox_update(event)
        )
        return await self._sessions.find_one_and_update(
            {**query, "revoked_at": None},
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def live_for_user(self, user_id: str, now: datetime) -> list[SessionDocument]:
        cursor = self._sessions.find(
            {"user_id": user_id, **live_filter(now)}, {"outbox": 0}
        ).sort("last_seen_at", -1)
        return [document async for document in cursor]

    async def unrevoked_ids_for_user(self, user_id: str) -> list[str]:
        cursor = self._sessions.find(
            {"user_id": user_id, "revoked_at": None}, {"_id": 1}
        )
        return [document["_id"] async for document in cursor]

    async def delete_expired(self, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` sessions whose ``expires_at`` has passed."""
        cursor = self._sessions.find(
            {"expires_at": {"$lte": now}, "outbox_since": {"$exists": False}},
            {"_id": 1},
            limit=limit,
        )
        ids = [document["_id"] async for document in cursor]
        if not ids:
            return 0
        # Re-check expiry in the delete itself: a touch may have extended a
        # session between the find and the delete.
        result = await self._sessions.delete_many(
            {"_id": {"$in": ids}, "expires_at": {"$lte": now}}
        )
        return result.deleted_count
