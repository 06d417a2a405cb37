"""Errors of the session service."""

from __future__ import annotations

import enum

from services.common.errors import NotFound, ValidationFailed


class InvalidReason(enum.StrEnum):
    """Reason a token does not resolve to a live session."""

    UNKNOWN = "unknown"
    IDLE_EXPIRED = "idle_expired"
    ABSOLUTE_EXPIRED = "absolute_expired"
    REVOKED = "revoked"
    ROTATED = "rotated"


class SessionInvalid(NotFound):
    code = "session_invalid"
    message = "The session does not exist or has ended."

    def __init__(self, reason: InvalidReason) -> None:
        super().__init__(detail=reason.value)
        self.reason = reason

    def to_json(self) -> dict[str, object]:
        body = super().to_json()
        body["error"]["reason"] = self.reason.value
        return body


class SessionNotFound(NotFound):
    code = "session_not_found"
    message = "The session was not found."


class SessionDataTooLarge(ValidationFailed):
    code = "session_data_too_large"
    message = "The session data is too large."
