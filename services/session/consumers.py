"""Reactions of the session service to identity events."""

from __future__ import annotations

import logging

from services.common.events import Envelope, EventType

from .sessions import RevokeReason, Sessions

logger = logging.getLogger("mflix.session.consumers")

_REVOKE_REASONS = {
    EventType.USER_PASSWORD_CHANGED: RevokeReason.PASSWORD_CHANGED,
    EventType.USER_LOCKED: RevokeReason.USER_LOCKED,
    EventType.USER_DELETED: RevokeReason.USER_DELETED,
}


def identity_event_handler(sessions: Sessions):  # type: ignore[no-untyped-def]
    """Revoke a user's sessions when the password changes or the user goes away.

    Idempotent by construction: revoking revoked sessions changes nothing.
    """

    async def handle(envelope: Envelope) -> None:
        reason = _REVOKE_REASONS.get(envelope.type)
        if reason is None:
            return
        user_id = envelope.data["user_id"]
        keep = envelope.data.get("keep_session_id")
        # Only a password change spares sessions created after it, so that
        # the session it rotated into existence survives. A lock or a
        # deletion also ends a session created after the event, such as one
        # whose login passed the password check just before the lock.
        # NOTE: a login that checked the old password just before a change
        # but created its session just after it survives the change. Closing
        # that needs sessions to record the credential version they used.
        created_before = (
            envelope.occurred_at
            if envelope.type is EventType.USER_PASSWORD_CHANGED
            else None
        )
        revoked = await sessions.revoke_all_for_user(
            user_id, reason, keep_session_id=keep, created_before=created_before
        )
        logger.info(
            "revoked %d sessions after %s",
            len(revoked),
            envelope.type,
            extra={"user_id": user_id},
        )

    return handle
