"""Errors of the identity service."""

from __future__ import annotations

from services.common.errors import ApiError, EmailTaken, InvalidCredentials, NotFound

__all__ = ["EmailTaken", "IdentityError", "InvalidCredentials", "UserNotFound"]


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "The user was not found."


class IdentityError(ApiError):
    """An unexpected failure inside the identity service."""
