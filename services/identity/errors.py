"""Errors of the identity service."""

from __future__ import annotations

from services.common.errors import ApiError, Conflict, NotFound, Unauthorized


class EmailTaken(Conflict):
    code = "email_taken"
    message = "An account with this email already exists."


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Invalid email or password."


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "The user was not found."


class IdentityError(ApiError):
    """An unexpected failure inside the identity service."""
