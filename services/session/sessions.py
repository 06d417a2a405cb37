"""Session lifecycle: create, resolve, touch, save, rotate, list and revoke."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from pymongo.errors import PyMongoError

from services.common.clock import utc_now
from services.common.events import EventType, new_event

from .errors import InvalidReason, SessionDataTooLarge, SessionInvalid, SessionNotFound
from .store import SessionDocument, SessionStore
from .tokens import is_well_formed, new_session_id, new_token, token_hash

logger = logging.getLogger("mflix.session.sessions")

WRITES = Counter(
    "mflix_session_writes_total",
    "Writes to the sessions store, by operation.",
    ["operation"],
)


class RevokeReason(enum.StrEnum):
    LOGOUT = "logout"
    ROTATED = "rotated"
    REVOKED_BY_USER = "revoked_by_user"
    PASSWORD_CHANGED = "password_changed"
    USER_LOCKED = "user_locked"
    USER_DELETED = "user_deleted"


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Session timing, in seconds."""

    idle: int
    absolute: int
    touch_interval: int


@dataclass(frozen=True, kw_only=True)
class ClientInfo:
    user_agent: str
    ip: str | None


def public_session(document: SessionDocument) -> dict[str, Any]:
    """Return the session as the gateway gets it, never the token or its hash."""
    return {
        "id": document["session_id"],
        "user_id": document["user_id"],
        "user": document.get("user", {}),
        "data": decode_data(document.get("data")),
        "remember": document.get("remember", False),
        "user_agent": document.get("user_agent", ""),
        "ip": document.get("ip"),
        "created_at": document["created_at"].isoformat(),
        "last_seen_at": document["last_seen_at"].isoformat(),
        "idle_expires_at": document["idle_expires_at"].isoformat(),
        "absolute_expires_at": document["absolute_expires_at"].isoformat(),
    }


def decode_data(stored: object) -> dict[str, Any]:
    """Return stored session data as a dict; an unreadable value counts as empty."""
    if not isinstance(stored, str):
        return {}
    try:
        data = json.loads(stored)
    except ValueError:
        logger.warning("stored session data is not valid JSON, treating it as empty")
        return {}
    return data if isinstance(data, dict) else {}


def short_ref(session_id: str) -> str:
    """Return a prefix of the public session id, enough to follow it in logs."""
    return session_id[:8]


class Sessions:
    def __init__(
        self,
        store: SessionStore,
        *,
        timeouts: Timeouts,
        max_data_bytes: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._timeouts = timeouts
        self._max_data_bytes = max_data_bytes
        self._now = clock

    def _encode_data(self, data: dict[str, Any]) -> str:
        """Encode session data as JSON text, checking its size.

        Stored as text, not as a subdocument, so client-chosen keys such as
        ``$where`` or ``a.b`` never reach MongoDB as field names.
        """
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
        if len(encoded) > self._max_data_bytes:
            raise SessionDataTooLarge(
                f"Session data is {len(encoded)} bytes, "
                f"the limit is {self._max_data_bytes}.",
                fields={
                    "data": f"Must be at most {self._max_data_bytes} bytes as JSON."
                },
            )
        return encoded

    async def create(
        self,
        *,
        user: dict[str, str],
        remember: bool,
        client: ClientInfo,
        data: dict[str, Any],
        previous_token: str | None = None,
    ) -> tuple[str, SessionDocument]:
        """Start a session with a new token; return the token and the session.

        A ``previous_token`` is revoked as rotated; if it belonged to the same
        user, its data is carried over under the new values.
        """
        if previous_token and is_well_formed(previous_token):
            previous = await self._revoke_token(previous_token, RevokeReason.ROTATED)
            # Data is carried over only within one user: logging in as
            # someone else in the same browser starts from a clean session.
            if previous is not None and previous["user_id"] == user["id"]:
                data = {**decode_data(previous.get("data")), **data}
        return await self._insert(
            user=user, remember=remember, client=client, data=data
        )

    async def _insert(
        self,
        *,
        user: dict[str, str],
        remember: bool,
        client: ClientInfo,
        data: dict[str, Any],
    ) -> tuple[str, SessionDocument]:
        encoded = self._encode_data(data)
        now = self._now()
        token = new_token()
        absolute = now + timedelta(seconds=self._timeouts.absolute)
        idle = min(now + timedelta(seconds=self._timeouts.idle), absolute)
        document: SessionDocument = {
            "_id": token_hash(token),
            "session_id": new_session_id(),
            "user_id": user["id"],
            "user": user,
            "data": encoded,
            "remember": remember,
            "user_agent": client.user_agent,
            "ip": client.ip,
            "created_at": now,
            "last_seen_at": now,
            "idle_expires_at": idle,
            "absolute_expires_at": absolute,
            "expires_at": idle,
            "revoked_at": None,
        }
        event = new_event(
            EventType.SESSION_CREATED,
            {"user_id": user["id"], "session_id": document["session_id"]},
        )
        await self._store.insert(document, event)
        WRITES.labels("create").inc()
        logger.info(
            "session created",
            extra={"user_id": user["id"], "session": short_ref(document["session_id"])},
        )
        return token, document

    async def resolve(self, token: str) -> SessionDocument:
        """Return the live session of a token, extending its idle expiry lazily.

        The idle expiry is written at most once per touch interval, so a
        session that is only read costs one write per interval.
        """
        document = await self._load_live(token)
        now = self._now()
        since_touch = (now - document["last_seen_at"]).total_seconds()
        if since_touch >= self._timeouts.touch_interval:
            changes = self._extension(document, now)
            WRITES.labels("touch").inc()
            try:
                touched = await self._store.touch(document["_id"], now, changes)
            except PyMongoError as error:
                # The lookup still returns the session, and a later read extends it.
                logger.warning(
                    "extending a session failed: %r",
                    error,
                    extra={"session": short_ref(document["session_id"])},
                )
                touched = False
            if touched:
                document.update(changes)
        return document

    async def save(self, token: str, data: dict[str, Any]) -> SessionDocument:
        """Replace the session data of a live session at once."""
        encoded = self._encode_data(data)
        document = await self._load_live(token)
        now = self._now()
        changes = {"data": encoded, **self._extension(document, now)}
        WRITES.labels("save").inc()
        if not await self._store.touch(document["_id"], now, changes):
            raise SessionInvalid(InvalidReason.IDLE_EXPIRED)
        document.update(changes)
        return document

    def _extension(self, document: SessionDocument, now: datetime) -> dict[str, Any]:
        idle = min(
            now + timedelta(seconds=self._timeouts.idle),
            document["absolute_expires_at"],
        )
        return {"last_seen_at": now, "idle_expires_at": idle, "expires_at": idle}

    async def _load_live(self, token: str) -> SessionDocument:
        if not is_well_formed(token):
            raise SessionInvalid(InvalidReason.UNKNOWN)
        hashed = token_hash(token)
        document, revocation = await asyncio.gather(
            self._store.find({"_id": hashed}), self._store.find_revocation(hashed)
        )
        if revocation is not None:
            rotated = revocation.get("reason") == RevokeReason.ROTATED
            raise SessionInvalid(
                InvalidReason.ROTATED if rotated else InvalidReason.REVOKED
            )
        if document is None:
            raise SessionInvalid(InvalidReason.UNKNOWN)
        now = self._now()
        if now >= document["absolute_expires_at"]:
            raise SessionInvalid(InvalidReason.ABSOLUTE_EXPIRED)
        if now >= document["idle_expires_at"]:
            raise SessionInvalid(InvalidReason.IDLE_EXPIRED)
        return document

    async def rotate(self, token: str) -> tuple[str, SessionDocument]:
        """Replace a live session's token; the old token stops working at once."""
        previous = await self._load_live(token)
        # Only the call whose revocation wins creates the successor, so two
        # racing rotations, or a rotation racing a logout, never leave an
        # extra live session behind.
        if not await self._revoke_document(previous, RevokeReason.ROTATED):
            raise SessionInvalid(InvalidReason.REVOKED)
        return await self._insert(
            user=previous["user"],
            remember=previous.get("remember", False),
            client=ClientInfo(
                user_agent=previous.get("user_agent", ""), ip=previous.get("ip")
            ),
            data=decode_data(previous.get("data")),
        )

    async def revoke(self, token: str, reason: RevokeReason) -> None:
        """End the session of a token; unknown or ended sessions are a no-op."""
        if is_well_formed(token):
            await self._revoke_token(token, reason)

    async def _revoke_token(
        self, token: str, reason: RevokeReason
    ) -> SessionDocument | None:
        """Revoke a token's session; return it if this call revoked it."""
        document = await self._store.find({"_id": token_hash(token)})
        if document is None or not await self._revoke_document(document, reason):
            return None
        return document

    async def _revoke_document(
        self, document: SessionDocument, reason: RevokeReason
    ) -> bool:
        """Insert the revocation of a session; False when it was revoked before."""
        now = self._now()
        revocation = {
            "_id": document["_id"],
            "session_id": document["session_id"],
            "user_id": document["user_id"],
            "reason": reason.value,
            "revoked_at": now,
            # Kept while the session could have lived, so a replayed cookie
            # is reported as revoked rather than unknown.
            "expires_at": document["absolute_expires_at"],
        }
        event = new_event(
            EventType.SESSION_REVOKED,
            {
                "user_id": document["user_id"],
                "session_id": document["session_id"],
                "reason": reason.value,
            },
        )
        WRITES.labels("revoke").inc()
        if not await self._store.insert_revocation(revocation, event):
            return False
        logger.info(
            "session revoked: %s",
            reason.value,
            extra={
                "user_id": document["user_id"],
                "session": short_ref(document["session_id"]),
            },
        )
        return True

    async def list_for_user(self, user_id: str) -> list[SessionDocument]:
        """Return the user's live sessions, most recently used first."""
        documents = await self._store.for_user(user_id, self._now())
        revoked = await self._store.revoked_among([d["_id"] for d in documents])
        return [d for d in documents if d["_id"] not in revoked]

    async def revoke_for_user_by_id(self, user_id: str, session_id: str) -> None:
        """Revoke one session of a user; raise SessionNotFound for any other user's."""
        document = await self._store.find(
            {"user_id": user_id, "session_id": session_id}
        )
        if document is None or not await self._revoke_document(
            document, RevokeReason.REVOKED_BY_USER
        ):
            raise SessionNotFound()

    async def revoke_all_for_user(
        self,
        user_id: str,
        reason: RevokeReason,
        *,
        keep_session_id: str | None = None,
        created_before: datetime | None = None,
    ) -> list[str]:
        """Revoke every live session of a user but ``keep_session_id``; idempotent.

        Returns the public ids of the sessions this call revoked.

        With ``created_before``, sessions created at or after that time are
        kept: a password change must not end the session that the same
        change rotated into existence.
        """
        revoked = []
        for document in await self.list_for_user(user_id):
            if document["session_id"] == keep_session_id:
                continue
            if created_before is not None and document["created_at"] >= created_before:
                continue
            if await self._revoke_document(document, reason):
                revoked.append(document["session_id"])
        return revoked
