"""Recent security activity of each user, shown on the account page.

Kept per user and bounded to the newest ``MAX_ENTRIES``. Entries made from
events use the event id as ``_id``, so a redelivered event adds nothing.
"""

from __future__ import annotations

import enum
import logging
import uuid
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.clock import utc_now
from services.common.events import Envelope, EventType

logger = logging.getLogger("mflix.identity.activity")

ACTIVITY_COLLECTION = "activity"
MAX_ENTRIES = 50


class ActivityKind(enum.StrEnum):
    SIGNED_UP = "signed_up"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    PASSWORD_CHANGED = "password_changed"
    SESSION_REVOKED = "session_revoked"
    LOCKED = "locked"


class Activity:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._entries: AsyncCollection[dict[str, Any]] = db[ACTIVITY_COLLECTION]

    async def create_indexes(self) -> None:
        await self._entries.create_index([("user_id", 1), ("occurred_at", DESCENDING)])

    async def record(
        self,
        user_id: str,
        kind: ActivityKind,
        *,
        ip: str | None = None,
        detail: str | None = None,
        entry_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> None:
        """Add one entry and drop the user's entries beyond the newest MAX_ENTRIES."""
        entry = {
            "_id": entry_id or uuid.uuid4().hex,
            "user_id": user_id,
            "kind": kind.value,
            "ip": ip,
            "detail": detail,
            "occurred_at": occurred_at or utc_now(),
        }
        try:
            await self._entries.insert_one(entry)
        except DuplicateKeyError:
            return
        await self._trim(user_id)

    async def _trim(self, user_id: str) -> None:
        cursor = (
            self._entries.find({"user_id": user_id}, {"occurred_at": 1})
            .sort("occurred_at", DESCENDING)
            .skip(MAX_ENTRIES)
            .limit(1)
        )
        async for oldest_kept in cursor:
            await self._entries.delete_many(
                {
                    "user_id": user_id,
                    "occurred_at": {"$lte": oldest_kept["occurred_at"]},
                }
            )

    async def recent(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        cursor = (
            self._entries.find({"user_id": user_id})
            .sort("occurred_at", DESCENDING)
            .limit(limit)
        )
        return [
            {
                "kind": entry["kind"],
                "ip": entry.get("ip"),
                "detail": entry.get("detail"),
                "occurred_at": entry["occurred_at"].isoformat(),
            }
            async for entry in cursor
        ]

    async def delete_for_user(self, user_id: str) -> None:
        await self._entries.delete_many({"user_id": user_id})


def session_event_handler(activity: Activity):  # type: ignore[no-untyped-def]
    """Record revoked sessions; idempotent because the event id is the entry id."""

    async def handle(envelope: Envelope) -> None:
        if envelope.type is not EventType.SESSION_REVOKED:
            return
        reason = envelope.data["reason"]
        # A rotation is no logout. A deleted user's activity was removed
        # with the user, and an entry recorded now would outlive the user.
        if reason in {"rotated", "user_deleted"}:
            return
        await activity.record(
            envelope.data["user_id"],
            ActivityKind.SESSION_REVOKED,
            detail=reason,
            entry_id=envelope.id,
            occurred_at=envelope.occurred_at,
        )

    return handle
