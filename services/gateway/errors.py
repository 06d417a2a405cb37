"""Errors of the gateway, beyond the common ones."""

from __future__ import annotations

from services.common.errors import (
    EmailTaken,
    Forbidden,
    InvalidCredentials,
    Unauthorized,
)

__all__ = [
    "CrossSiteRequest",
    "EmailTaken",
    "InvalidCredentials",
    "InvalidCsrfToken",
    "NotLoggedIn",
]


class NotLoggedIn(Unauthorized):
    code = "not_logged_in"
    message = "You are not logged in."


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"
    message = "Cross-site requests are not allowed."


class InvalidCsrfToken(Forbidden):
    code = "invalid_csrf_token"
    message = "The form has expired. Reload the page and try again."
