"""Registration, credential checks and password changes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bson import ObjectId

from services.common.clock import utc_now
from services.common.errors import ValidationFailed
from services.common.events import EventType, new_event

from .emails import InvalidEmail, email_key
from .errors import EmailTaken, InvalidCredentials, UserNotFound
from .passwords import (
    PasswordHasher,
    WeakPassword,
    check_password_policy,
    normalize_password,
)
from .store import DuplicateEmail, UserDocument, UserStore

logger = logging.getLogger("mflix.identity.users")


def public_user(user: UserDocument) -> dict[str, Any]:
    """The user as other services and clients see it: never the hash."""
    created_at = user.get("created_at")
    return {
        "id": str(user["_id"]),
        "name": user.get("name", ""),
        "email": user.get("email", ""),
        "created_at": created_at.isoformat()
        if isinstance(created_at, datetime)
        else None,
    }


class Users:
    def __init__(
        self,
        store: UserStore,
        hasher: PasswordHasher,
        *,
        password_min_length: int,
        on_event: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._min_length = password_min_length
        self._on_event = on_event

    def _validate_new_password(self, password: str, field: str) -> str:
        normalized = normalize_password(password)
        try:
            check_password_policy(normalized, min_length=self._min_length)
        except WeakPassword as error:
            raise ValidationFailed(fields={field: str(error)}) from error
        return normalized

    async def register(self, *, name: str, email: str, password: str) -> UserDocument:
        """Create a user; raise ValidationFailed or EmailTaken."""
        fields: dict[str, str] = {}
        name = name.strip()
        if not name:
            fields["name"] = "This field is required."
        try:
            key = email_key(email.strip())
        except InvalidEmail as error:
            fields["email"] = str(error)
        try:
            normalized = self._validate_new_password(password, "password")
        except ValidationFailed as error:
            fields.update(error.fields)
        if fields:
            raise ValidationFailed(fields=fields)

        password_hash = await self._hasher.hash(normalized)
        user_id = ObjectId()
        now = utc_now()
        user = {
            "_id": user_id,
            "name": name,
            "email": email.strip(),
            "email_key": key,
            "password_hash": password_hash,
            "created_at": now,
            "updated_at": now,
        }
        event = new_event(
            EventType.USER_REGISTERED, {"user_id": str(user_id), "email": key}
        )
        try:
            document = await self._store.insert(user, event)
        except DuplicateEmail as error:
            logger.info("signup rejected: email already registered")
            raise EmailTaken() from error
        self._on_event()
        logger.info("user registered", extra={"user_id": str(user_id)})
        return document

    async def verify_credentials(self, *, email: str, password: str) -> UserDocument:
        """Return the user whose password matches; raise InvalidCredentials otherwise.

        Unknown emails, locked users and wrong passwords all cost one bcrypt
        check and raise the same error, so a caller cannot tell them apart.
        """
        try:
            key = email_key(email.strip())
        except InvalidEmail:
            key = None
        user = await self._store.find_by_email_key(key) if key else None
        password = normalize_password(password)
        stored_hash = user.get("password_hash") if user else None
        matched = await self._hasher.verify(password, stored_hash)

        if user is None:
            logger.info("login failed: unknown email")
            raise InvalidCredentials()
        user_id = str(user["_id"])
        if not matched:
            logger.info("login failed: wrong password", extra={"user_id": user_id})
            raise InvalidCredentials()
        if user.get("locked_at") is not None:
            logger.info("login failed: user locked", extra={"user_id": user_id})
            raise InvalidCredentials()

        await self._upgrade_hash(user, password)
        logger.info("credentials verified", extra={"user_id": user_id})
        return user

    async def _upgrade_hash(self, user: UserDocument, password: str) -> None:
        stored_hash = user["password_hash"]
        if not self._hasher.needs_rehash(stored_hash):
            return
        new_hash = await self._hasher.hash(password)
        if await self._store.replace_hash(user["_id"], stored_hash, new_hash):
            user["password_hash"] = new_hash
            logger.info(
                "password hash upgraded to cost %d",
                self._hasher.cost,
                extra={"user_id": str(user["_id"])},
            )

    async def get(self, user_id: str) -> UserDocument:
        user = await self._store.find_by_id(user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def change_password(
        self,
        user_id: str,
        *,
        current_password: str,
        new_password: str,
        keep_session_id: str | None,
    ) -> UserDocument:
        """Replace the password after checking the current one.

        Stores ``user.password_changed`` with the change; its consumers
        revoke every session of the user except ``keep_session_id``.
        """
        user = await self.get(user_id)
        normalized = self._validate_new_password(new_password, "new_password")
        stored_hash = user.get("password_hash")
        if not await self._hasher.verify(
            normalize_password(current_password), stored_hash
        ):
            logger.info(
                "password change rejected: wrong current password",
                extra={"user_id": user_id},
            )
            raise ValidationFailed(
                fields={"current_password": "The current password is wrong."}
            )

        new_hash = await self._hasher.hash(normalized)
        event = new_event(
            EventType.USER_PASSWORD_CHANGED,
            {"user_id": user_id, "keep_session_id": keep_session_id},
        )
        updated = await self._store.change_password(
            user["_id"], stored_hash, new_hash, event
        )
        if updated is None:
            raise ValidationFailed(
                fields={
                    "current_password": "The password changed meanwhile. Try again."
                }
            )
        self._on_event()
        logger.info("password changed", extra={"user_id": user_id})
        return updated

    async def lock(self, user_id: str, reason: str) -> None:
        """Lock a user out; ``user.locked`` revokes all of their sessions."""
        user = await self.get(user_id)
        event = new_event(EventType.USER_LOCKED, {"user_id": user_id})
        await self._store.lock(user["_id"], reason, event)
        self._on_event()
        logger.info("user locked", extra={"user_id": user_id})
