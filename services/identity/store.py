"""The users collection: the only code that reads or writes it."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.common.clock import utc_now
from services.common.events import Envelope
from services.common.outbox import merge_updates, outbox_fields, outbox_update

USERS_COLLECTION = "users"
EMAIL_KEY_INDEX = "email_key_unique"

UserDocument = dict[str, Any]


class DuplicateEmail(Exception):
    pass


def parse_user_id(user_id: str) -> ObjectId | None:
    """Return the ObjectId for a user id string, or None when it is not one."""
    try:
        return ObjectId(user_id)
    except (InvalidId, TypeError):
        return None


class UserStore:
    def __init__(self, collection: AsyncCollection[UserDocument]) -> None:
        self._users = collection

    async def create_indexes(self) -> None:
        await self._users.create_index("email_key", unique=True, name=EMAIL_KEY_INDEX)

    async def insert(self, user: UserDocument, *events: Envelope) -> UserDocument:
        """Insert a new user with its events; raise DuplicateEmail on a taken key."""
        document = {**user, **outbox_fields(*events)}
        try:
            await self._users.insert_one(document)
        except DuplicateKeyError as error:
            raise DuplicateEmail(user["email_key"]) from error
        return document

    async def find_by_email_key(self, key: str) -> UserDocument | None:
        return await self._users.find_one({"email_key": key})

    async def find_by_id(self, user_id: str) -> UserDocument | None:
        object_id = parse_user_id(user_id)
        if object_id is None:
            return None
        return await self._users.find_one({"_id": object_id})

    async def replace_hash(
        self, user_id: ObjectId, old_hash: str, new_hash: str
    ) -> bool:
        """Swap a hash only if it is still ``old_hash``, so no newer change is lost."""
        result = await self._users.update_one(
            {"_id": user_id, "password_hash": old_hash},
            {"$set": {"password_hash": new_hash, "updated_at": utc_now()}},
        )
        return result.modified_count == 1

    async def change_password(
        self, user_id: ObjectId, old_hash: str, new_hash: str, event: Envelope
    ) -> UserDocument | None:
        """Set a new hash and store the event with it, atomically in one update."""
        now = utc_now()
        update = merge_updates(
            {
                "$set": {
                    "password_hash": new_hash,
                    "updated_at": now,
                    "password_changed_at": now,
                }
            },
            outbox_update(event),
        )
        return await self._users.find_one_and_update(
            {"_id": user_id, "password_hash": old_hash},
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def lock(self, user_id: ObjectId, reason: str, event: Envelope) -> bool:
        now = utc_now()
        update = merge_updates(
            {"$set": {"locked_at": now, "lock_reason": reason, "updated_at": now}},
            outbox_update(event),
        )
        result = await self._users.update_one({"_id": user_id}, update)
        return result.matched_count == 1

    async def upsert_imported(self, user: UserDocument) -> bool:
        """Insert an imported user unless its id or email exists; True when new."""
        try:
            result = await self._users.update_one(
                {"_id": user["_id"]}, {"$setOnInsert": user}, upsert=True
            )
        except DuplicateKeyError:
            return False
        return result.upserted_id is not None
