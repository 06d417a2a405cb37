"""Server-rendered pages: login, signup, home, account and logout."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from services.common.errors import (
    ServiceUnavailable,
    TooManyRequests,
    ValidationFailed,
)

from .auth import (
    change_password,
    current_user,
    log_in,
    log_out,
    require_user,
    sign_up,
)
from .cache import CACHE
from .clients import IDENTITY, SESSIONS, is_session_id
from .csrf import cross_site, csrf_token, form_token_valid
from .devices import device_label
from .errors import (
    CrossSiteRequest,
    EmailTaken,
    InvalidCredentials,
    InvalidCsrfToken,
    NotLoggedIn,
)
from .forms import read_form
from .redirects import safe_next

logger = logging.getLogger("mflix.gateway.pages")

LOGIN_FAILED = "Invalid email or password."


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    context = {"csrf_token": csrf_token(request), "fields": {}, **context}
    return aiohttp_jinja2.render_template(template, request, context, status=status)


def see_other(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location=location)


async def read_checked_form(request: web.Request, *names: str) -> dict[str, str]:
    """Read a form after the cross-site and CSRF token checks."""
    if cross_site(request):
        logger.warning("cross-site form post rejected")
        raise CrossSiteRequest()
    fields = await read_form(request, (*names, "csrf_token"))
    if not form_token_valid(request, fields["csrf_token"]):
        logger.warning("form post with an invalid CSRF token rejected")
        raise InvalidCsrfToken()
    return fields


async def login_page(request: web.Request) -> web.Response:
    target = safe_next(request.query.get("next"))
    if await current_user(request):
        raise see_other(target)
    return render(
        request, "login.html", {"next": target, "email": "", "remember": False}
    )


async def login_submit(request: web.Request) -> web.Response:
    form = await read_checked_form(request, "email", "password", "remember", "next")
    target = safe_next(form["next"])
    remember = form["remember"] == "1"
    context = {"next": target, "email": form["email"], "remember": remember}
    if not form["email"] or not form["password"]:
        return render(
            request, "login.html", {**context, "error": LOGIN_FAILED}, status=401
        )
    try:
        await log_in(
            request, email=form["email"], password=form["password"], remember=remember
        )
    except (InvalidCredentials, ValidationFailed):
        return render(
            request, "login.html", {**context, "error": LOGIN_FAILED}, status=401
        )
    except TooManyRequests as error:
        response = render(
            request, "login.html", {**context, "error": error.message}, status=429
        )
        response.headers.update(error.headers)
        return response
    raise see_other(target)


async def signup_page(request: web.Request) -> web.Response:
    if await current_user(request):
        raise see_other("/")
    return render(request, "signup.html", {"name": "", "email": ""})


async def signup_submit(request: web.Request) -> web.Response:
    form = await read_checked_form(request, "name", "email", "password")
    context: dict[str, Any] = {"name": form["name"], "email": form["email"]}
    try:
        await sign_up(
            request, name=form["name"], email=form["email"], password=form["password"]
        )
    except ValidationFailed as error:
        context.update(fields=error.fields, error="Please correct the fields below.")
        return render(request, "signup.html", context, status=422)
    except EmailTaken as error:
        context.update(fields={"email": error.message}, error=error.message)
        return render(request, "signup.html", context, status=409)
    raise see_other("/")


async def logout_submit(request: web.Request) -> web.Response:
    await read_checked_form(request)
    await log_out(request)
    response = see_other("/login")
    # Clear-Site-Data makes the browser drop cached pages of this user.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    raise response


async def home_page(request: web.Request) -> web.Response:
    user = await current_user(request)
    if user is None:
        raise see_other("/login?next=/")
    return render(request, "home.html", {"user": user})


def _label(moment: str) -> str:
    return datetime.fromisoformat(moment).strftime("%d %b %Y, %H:%M UTC")


def _session_rows(
    sessions: list[dict[str, Any]], current_id: str
) -> list[dict[str, Any]]:
    rows = []
    for item in sessions:
        rows.append(
            {
                "id": item["id"],
                "device": device_label(item.get("user_agent", "")),
                "ip": item.get("ip"),
                "created_at": item["created_at"],
                "created_label": _label(item["created_at"]),
                "last_seen_at": item["last_seen_at"],
                "last_seen_label": _label(item["last_seen_at"]),
                "current": item["id"] == current_id,
            }
        )
    rows.sort(key=lambda row: not row["current"])
    return rows


async def _require_page_user(
    request: web.Request,
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    try:
        return await require_user(request)
    except NotLoggedIn as error:
        raise see_other("/login?next=/account") from error


async def account_page(
    request: web.Request,
    *,
    fields: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> web.Response:
    _session, user, record = await _require_page_user(request)
    reply = await request.app[SESSIONS].list_for_user(user["id"])
    sessions = _session_rows(reply.body.get("sessions", []), record["id"])
    context = {
        "user": user,
        "sessions": sessions,
        "fields": fields or {},
        "notice": notice or _notice(request.query.get("done")),
        "activity": await _activity_rows(request, user["id"]),
    }
    return render(request, "account.html", context, status=status)


_ACTIVITY_LABELS = {
    "signed_up": "Account created",
    "login_succeeded": "Logged in",
    "login_failed": "Failed login attempt",
    "password_changed": "Password changed",
    "session_revoked": "Device logged out",
    "locked": "Account locked",
}


async def _activity_rows(
    request: web.Request, user_id: str
) -> list[dict[str, Any]] | None:
    """Return the user's recent security activity, or None when it is unavailable."""
    try:
        reply = await request.app[IDENTITY].recent_activity(user_id)
    except ServiceUnavailable:
        return None
    rows = []
    for entry in reply.body.get("activity", []):
        label = _ACTIVITY_LABELS.get(entry["kind"], entry["kind"])
        if entry.get("ip"):
            label = f"{label} from {entry['ip']}"
        rows.append(
            {
                "label": label,
                "occurred_at": entry["occurred_at"],
                "when": _label(entry["occurred_at"]),
            }
        )
    return rows


_NOTICES = {
    "revoked": "The device was logged out.",
    "not-found": "That device is no longer logged in.",
    "revoked-others": "All other devices were logged out.",
    "password": "Your password was changed. Other devices were logged out.",
}


def _notice(key: str | None) -> str | None:
    return _NOTICES.get(key or "")


async def account_view(request: web.Request) -> web.Response:
    return await account_page(request)


async def revoke_session_submit(request: web.Request) -> web.Response:
    await read_checked_form(request)
    _session, user, record = await _require_page_user(request)
    session_id = request.match_info["session_id"]
    if session_id == record["id"]:
        raise see_other("/account")
    if not is_session_id(session_id):
        raise see_other("/account?done=not-found")
    reply = await request.app[SESSIONS].revoke_for_user(user["id"], session_id)
    if reply.status == 404:
        raise see_other("/account?done=not-found")
    # Effective at once in this process; other gateways learn it from the
    # session.revoked event.
    request.app[CACHE].drop_session(session_id)
    raise see_other("/account?done=revoked")


async def revoke_others_submit(request: web.Request) -> web.Response:
    await read_checked_form(request)
    _session, user, record = await _require_page_user(request)
    reply = await request.app[SESSIONS].revoke_others(user["id"], record["id"])
    for session_id in reply.body.get("revoked", []):
        request.app[CACHE].drop_session(session_id)
    raise see_other("/account?done=revoked-others")


async def password_submit(request: web.Request) -> web.Response:
    form = await read_checked_form(request, "current_password", "new_password")
    _session, user, record = await _require_page_user(request)
    try:
        await change_password(
            request,
            user,
            record,
            current=form["current_password"],
            new=form["new_password"],
        )
    except ValidationFailed as error:
        return await account_page(request, fields=error.fields, status=422)
    except TooManyRequests as error:
        response = await account_page(
            request, fields={"current_password": error.message}, status=429
        )
        response.headers.update(error.headers)
        return response
    raise see_other("/account?done=password")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home_page)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_submit)
    app.router.add_get("/signup", signup_page)
    app.router.add_post("/signup", signup_submit)
    app.router.add_post("/logout", logout_submit)
    app.router.add_get("/account", account_view)
    app.router.add_post("/account/sessions/{session_id}/revoke", revoke_session_submit)
    app.router.add_post("/account/sessions/revoke-others", revoke_others_submit)
    app.router.add_post("/account/password", password_submit)
