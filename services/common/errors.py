"""The error model shared by every HTTP API of the project.

Each error has a stable ``code`` that clients may match on, a ``message``
that a user can read and, for validation errors, per-field reasons. The
operator-facing detail goes to the log, never to the client.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error that the error middleware turns into a JSON response."""

    status: int = 500
    code: str = "internal_error"
    message: str = "The request failed because of an internal error."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: dict[str, str] | None = None,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.fields = fields or {}
        self.detail = detail
        self.headers = headers or {}
        super().__init__(detail or self.message)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"
    message = "The request body is not valid JSON."


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    message = "Authentication is required."


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    message = "The request is not allowed."


class NotFound(ApiError):
    status = 404
    code = "not_found"
    message = "The resource was not found."


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"
    message = "This method is not allowed here."


class Conflict(ApiError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"
    message = "The request body is too large."


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"
    message = "The request body must be application/json."


class ValidationFailed(ApiError):
    status = 422
    code = "validation_failed"
    message = "Some fields are invalid."


class TooManyRequests(ApiError):
    status = 429
    code = "too_many_requests"
    message = "Too many attempts. Try again later."


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable. Try again shortly."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # RFC 9110 section 10.2.3: tell clients when to try again.
        self.headers.setdefault("Retry-After", "5")


# Errors of the public contract that the identity service raises and the
# gateway passes on unchanged, so clients see one code and message.


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Invalid email or password."


class EmailTaken(Conflict):
    code = "email_taken"
    message = "An account with this email already exists."
