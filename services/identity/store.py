"""The users and credentials collections: the only code that touches them.

A user's password state is a series of credential documents, one per
change, with ``_id`` "<user id>:<version>". Changing a password, upgrading
a hash or locking the user inserts the next version; the highest version
is the current one. Inserting a taken ``_id`` fails on both FerretDB and
MongoDB, so of two concurrent changes exactly one wins, and each change
carries its event in its own document (see services.common.outbox).
Updates would not give that guarantee on FerretDB 1.x, which does not
isolate an update from a concurrent one.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.events import Envelope
from services.common.outbox import (
    OUTBOX_FIELD,
    OUTBOX_SINCE_FIELD,
    OutboxNotifier,
    ignore_outbox,
    outbox_fields,
)

USERS_COLLECTION = "users"
CREDENTIALS_COLLECTION = "credentials"
EMAIL_KEY_INDEX = "email_key_unique"

UserDocument = dict[str, Any]
CredentialDocument = dict[str, Any]
_WITHOUT_OUTBOX = {OUTBOX_FIELD: 0, OUTBOX_SINCE_FIELD: 0}


class DuplicateEmail(Exception):
    pass


def parse_user_id(user_id: str) -> ObjectId | None:
    """Return the ObjectId for a user id string, or None when it is not one."""
    try:
        return ObjectId(user_id)
    except (InvalidId, TypeError):
        return None


def credential_id(user_id: str, version: int) -> str:
    return f"{user_id}:{version:010d}"


class UserStore:
    def __init__(self, db: AsyncDatabase[UserDocument]) -> None:
        # Called with the collection and _id of each document inserted with
        # events; the service points it at its outbox relay.
        self.on_outbox: OutboxNotifier = ignore_outbox
        self.users: AsyncCollection[UserDocument] = db[USERS_COLLECTION]
        self.credentials: AsyncCollection[CredentialDocument] = db[
            CREDENTIALS_COLLECTION
        ]

    async def create_indexes(self) -> None:
        await self.users.create_index("email_key", unique=True, name=EMAIL_KEY_INDEX)
        await self.credentials.create_index([("user_id", 1), ("version", DESCENDING)])

    async def insert_user(
        self, user: UserDocument, credential: CredentialDocument, *events: Envelope
    ) -> None:
        """Insert a user and its first credential; raise DuplicateEmail on a taken key.

        The credential goes first: a crash before the user insert leaves an
        unreachable credential, never a user who cannot log in.
        """
        await self.insert_credential(credential)
        try:
            await self.users.insert_one({**user, **outbox_fields(*events)})
        except DuplicateKeyError as error:
            raise DuplicateEmail(user["email_key"]) from error
        self.on_outbox(self.users, user["_id"])

    async def find_by_email_key(self, key: str) -> UserDocument | None:
        return await self.users.find_one({"email_key": key}, _WITHOUT_OUTBOX)

    async def find_by_id(self, user_id: str) -> UserDocument | None:
        object_id = parse_user_id(user_id)
        if object_id is None:
            return None
        return await self.users.find_one({"_id": object_id}, _WITHOUT_OUTBOX)

    async def current_credential(self, user_id: str) -> CredentialDocument | None:
        cursor = (
            self.credentials.find({"user_id": user_id}, _WITHOUT_OUTBOX)
            .sort("version", DESCENDING)
            .limit(1)
        )
        async for credential in cursor:
            return credential
        return None

    async def insert_credential(
        self, credential: CredentialDocument, *events: Envelope
    ) -> bool:
        """Insert a credential version; False when that version already exists."""
        document = {**credential, **(outbox_fields(*events) if events else {})}
        try:
            await self.credentials.insert_one(document)
        except DuplicateKeyError:
            return False
        if events:
            self.on_outbox(self.credentials, credential["_id"])
        return True

    async def insert_imported(
        self, user: UserDocument, credential: CredentialDocument
    ) -> bool:
        """Insert an imported user unless its email key or id exists; True when new."""
        await self.insert_credential(credential)
        try:
            await self.users.insert_one(user)
        except DuplicateKeyError:
            return False
        return True

    async def delete_user(self, user_id: ObjectId) -> None:
        await self.users.delete_one({"_id": user_id})
