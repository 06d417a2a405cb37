"""Errors the gateway answers with, beyond the common ones."""

from __future__ import annotations

from services.common.errors import Conflict, Forbidden, Unauthorized


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Invalid email or password."


class NotLoggedIn(Unauthorized):
    code = "not_logged_in"
    message = "You are not logged in."


class EmailTaken(Conflict):
    code = "email_taken"
    message = "An account with this email already exists."


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"
    message = "Cross-site requests are not allowed."


class InvalidCsrfToken(Forbidden):
    code = "invalid_csrf_token"
    message = "The form has expired. Reload the page and try again."
