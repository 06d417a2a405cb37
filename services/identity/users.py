"""Registration, credential checks and password changes."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import PyMongoError

from services.common.clock import utc_now
from services.common.emails import InvalidEmail, email_key
from services.common.errors import ValidationFailed
from services.common.events import EventType, new_event

from .activity import Activity, ActivityKind
from .errors import EmailTaken, IdentityError, InvalidCredentials, UserNotFound
from .passwords import (
    PasswordHasher,
    WeakPassword,
    check_password_policy,
    normalize_password,
)
from .store import (
    CredentialDocument,
    DuplicateEmail,
    UserDocument,
    UserStore,
    credential_id,
)

logger = logging.getLogger("mflix.identity.users")


def public_user(user: UserDocument) -> dict[str, Any]:
    """Return the user as other services and clients see it, never the hash."""
    created_at = user.get("created_at")
    return {
        "id": str(user["_id"]),
        "name": user.get("name", ""),
        "email": user.get("email", ""),
        "created_at": created_at.isoformat()
        if isinstance(created_at, datetime)
        else None,
    }


def new_credential(
    user_id: str,
    version: int,
    *,
    password_hash: str | None,
    kind: str,
    locked_reason: str | None = None,
) -> CredentialDocument:
    """Build credential version ``version``; ``kind`` names the change it records."""
    now = utc_now()
    return {
        "_id": credential_id(user_id, version),
        "user_id": user_id,
        "version": version,
        "kind": kind,
        "password_hash": password_hash,
        "locked_at": now if locked_reason else None,
        "lock_reason": locked_reason,
        "created_at": now,
    }


class Users:
    def __init__(
        self,
        store: UserStore,
        hasher: PasswordHasher,
        activity: Activity,
        *,
        password_min_length: int,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._activity = activity
        self._min_length = password_min_length

    def _validate_new_password(self, password: str, field: str) -> str:
        normalized = normalize_password(password)
        try:
            check_password_policy(normalized, min_length=self._min_length)
        except WeakPassword as error:
            raise ValidationFailed(fields={field: str(error)}) from error
        return normalized

    async def _record(
        self, user_id: str, kind: ActivityKind, *, ip: str | None = None
    ) -> None:
        # The activity list is informative: failing to extend it must not
        # fail the login or change that it describes.
        try:
            await self._activity.record(user_id, kind, ip=ip)
        except PyMongoError as error:
            logger.warning(
                "recording %s failed: %r", kind, error, extra={"user_id": user_id}
            )

    async def register(
        self, *, name: str, email: str, password: str, ip: str | None = None
    ) -> UserDocument:
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
        user = {
            "_id": user_id,
            "name": name,
            "email": email.strip(),
            "email_key": key,
            "created_at": utc_now(),
        }
        credential = new_credential(
            str(user_id), 1, password_hash=password_hash, kind="registered"
        )
        event = new_event(
            EventType.USER_REGISTERED, {"user_id": str(user_id), "email": key}
        )
        try:
            await self._store.insert_user(user, credential, event)
        except DuplicateEmail as error:
            logger.info("signup rejected: email already registered")
            raise EmailTaken() from error
        logger.info("user registered", extra={"user_id": str(user_id)})
        await self._record(str(user_id), ActivityKind.SIGNED_UP, ip=ip)
        return user

    async def verify_credentials(
        self, *, email: str, password: str, ip: str | None = None
    ) -> UserDocument:
        """Return the user whose password matches; raise InvalidCredentials otherwise.

        Unknown emails, locked users and wrong passwords all cost one bcrypt
        check and raise the same error, so a caller cannot tell them apart.
        """
        try:
            key = email_key(email.strip())
        except InvalidEmail:
            key = None
        user = await self._store.find_by_email_key(key) if key else None
        credential = (
            await self._store.current_credential(str(user["_id"])) if user else None
        )
        password = normalize_password(password)
        stored_hash = credential.get("password_hash") if credential else None
        matched = await self._hasher.verify(password, stored_hash)

        if user is None:
            logger.info("login failed: unknown email")
            raise InvalidCredentials()
        user_id = str(user["_id"])
        if credential is None or credential.get("locked_at") is not None:
            logger.info(
                "login failed: user locked or without credential",
                extra={"user_id": user_id},
            )
            raise InvalidCredentials()
        if not matched:
            logger.info("login failed: wrong password", extra={"user_id": user_id})
            await self._record(user_id, ActivityKind.LOGIN_FAILED, ip=ip)
            raise InvalidCredentials()

        await self._upgrade_hash(credential, password)
        logger.info("credentials verified", extra={"user_id": user_id})
        await self._record(user_id, ActivityKind.LOGIN_SUCCEEDED, ip=ip)
        return user

    async def _upgrade_hash(
        self, credential: CredentialDocument, password: str
    ) -> None:
        if not self._hasher.needs_rehash(credential["password_hash"]):
            return
        new_hash = await self._hasher.hash(password)
        upgraded = new_credential(
            credential["user_id"],
            credential["version"] + 1,
            password_hash=new_hash,
            kind="rehashed",
        )
        # Losing the race to a password change is fine: that change wins.
        if await self._store.insert_credential(upgraded):
            logger.info(
                "password hash upgraded to cost %d",
                self._hasher.cost,
                extra={"user_id": credential["user_id"]},
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
        if normalized == normalize_password(current_password):
            raise ValidationFailed(
                fields={"new_password": "Must differ from the current password."}
            )
        credential = await self._store.current_credential(user_id)
        stored_hash = credential.get("password_hash") if credential else None
        current_ok = await self._hasher.verify(
            normalize_password(current_password), stored_hash
        )
        if credential is None or credential.get("locked_at") or not current_ok:
            logger.info(
                "password change rejected: wrong current password",
                extra={"user_id": user_id},
            )
            raise ValidationFailed(
                fields={"current_password": "The current password is wrong."}
            )

        new_hash = await self._hasher.hash(normalized)
        changed = new_credential(
            user_id, credential["version"] + 1, password_hash=new_hash, kind="changed"
        )
        event = new_event(
            EventType.USER_PASSWORD_CHANGED,
            {"user_id": user_id, "keep_session_id": keep_session_id},
        )
        if not await self._store.insert_credential(changed, event):
            raise ValidationFailed(
                fields={
                    "current_password": "The password changed meanwhile. Try again."
                }
            )
        logger.info("password changed", extra={"user_id": user_id})
        await self._record(user_id, ActivityKind.PASSWORD_CHANGED)
        return user

    async def lock(self, user_id: str, reason: str) -> None:
        """Lock a user out; ``user.locked`` revokes all of their sessions."""
        await self.get(user_id)
        await self._insert_final_credential(
            user_id, "locked", reason, EventType.USER_LOCKED
        )
        logger.info("user locked", extra={"user_id": user_id})
        await self._record(user_id, ActivityKind.LOCKED)

    async def delete(self, user_id: str) -> None:
        """Delete a user; ``user.deleted`` revokes all of their sessions.

        The locking credential, with its event, is stored before the user
        document goes, so a crash in between still revokes every session.
        """
        user = await self.get(user_id)
        await self._insert_final_credential(
            user_id, "deleted", "user deleted", EventType.USER_DELETED
        )
        await self._store.delete_user(user["_id"])
        await self._activity.delete_for_user(user_id)
        logger.info("user deleted", extra={"user_id": user_id})

    async def _insert_final_credential(
        self, user_id: str, kind: str, reason: str, event_type: EventType
    ) -> None:
        # Retried on a version conflict: a concurrent change took the next
        # version, and locking must win over it.
        for _attempt in range(10):
            credential = await self._store.current_credential(user_id)
            version = credential["version"] + 1 if credential else 1
            locked = new_credential(
                user_id, version, password_hash=None, kind=kind, locked_reason=reason
            )
            event = new_event(event_type, {"user_id": user_id})
            if await self._store.insert_credential(locked, event):
                return
        raise IdentityError(detail=f"could not lock user {user_id} after 10 attempts")
