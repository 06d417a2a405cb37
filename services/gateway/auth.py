"""Sign-up, login, logout and password change, shared by pages and the JSON API."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from services.common.errors import ServiceUnavailable, ValidationFailed

from .clients import IDENTITY
from .cookies import set_cookie_later
from .csrf import rotate_csrf
from .errors import EmailTaken, InvalidCredentials, NotLoggedIn
from .network import client_ip
from .storage import SESSION_RECORD, USER_KEY, rotate_session
from .throttle import Throttle

logger = logging.getLogger("mflix.gateway.auth")


def _raise_for_reply_error(status: int, body: dict[str, Any]) -> None:
    error = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
    if status == 401:
        raise InvalidCredentials()
    if status == 409:
        raise EmailTaken()
    if status == 422:
        raise ValidationFailed(fields=error.get("fields") or {})
    raise ServiceUnavailable(detail=f"identity responded with status {status}")


async def _start_session(
    request: web.Request, user: dict[str, Any], remember: bool
) -> None:
    # A new aiohttp-session Session makes the storage issue a new token and
    # retire the old one, so a planted cookie never becomes logged in.
    session = await new_session(request)
    rotate_csrf(request)
    session[USER_KEY] = {"id": user["id"], "name": user["name"], "email": user["email"]}
    session["remember"] = remember


THROTTLE = web.AppKey("throttle", Throttle)
DEVICE_COOKIE = web.AppKey("device_cookie", str)


def _address(request: web.Request) -> str:
    return client_ip(request) or "unknown"


async def sign_up(
    request: web.Request, *, name: str, email: str, password: str
) -> dict[str, Any]:
    await request.app[THROTTLE].check_signup(_address(request))
    reply = await request.app[IDENTITY].register(
        name=name, email=email, password=password, ip=client_ip(request)
    )
    if reply.status != 201:
        _raise_for_reply_error(reply.status, reply.body)
    user = reply.body["user"]
    await _start_session(request, user, remember=False)
    logger.info("signed up", extra={"user_id": user["id"]})
    return user


async def log_in(
    request: web.Request, *, email: str, password: str, remember: bool
) -> dict[str, Any]:
    throttle = request.app[THROTTLE]
    account = throttle.account_key(email)
    device = throttle.device_key(
        request.cookies.get(request.app[DEVICE_COOKIE]), account
    )
    key = device or account
    await throttle.begin_attempt(key, _address(request))

    try:
        reply = await request.app[IDENTITY].verify(
            email=email, password=password, ip=client_ip(request)
        )
    except ServiceUnavailable:
        # No password was checked: an overload must not lock the account.
        await throttle.give_back(key, _address(request))
        raise
    if reply.status != 200:
        _raise_for_reply_error(reply.status, reply.body)
    user = reply.body["user"]
    await throttle.record_success(key, _address(request))
    if device is None:
        # A year: the cookie only gives this browser a lock of its own.
        set_cookie_later(
            request,
            request.app[DEVICE_COOKIE],
            throttle.device_cookie(account),
            max_age=365 * 24 * 3600,
        )
    await _start_session(request, user, remember=remember)
    logger.info("logged in", extra={"user_id": user["id"], "remember": remember})
    return user


async def change_password(
    request: web.Request,
    user: dict[str, Any],
    record: dict[str, Any],
    *,
    current: str,
    new: str,
) -> None:
    """Change the password, then rotate this session; others are revoked by event.

    Guesses of the current password are throttled like logins, so a stolen
    cookie is no way to find the password.
    """
    throttle = request.app[THROTTLE]
    account = f"password-change:{user['id']}"
    await throttle.begin_attempt(account, _address(request))
    try:
        reply = await request.app[IDENTITY].change_password(
            user["id"], current=current, new=new, keep_session_id=record["id"]
        )
    except ServiceUnavailable:
        await throttle.give_back(account, _address(request))
        raise
    if reply.status != 200:
        _raise_for_reply_error(reply.status, reply.body)
    await throttle.record_success(account, _address(request))
    await rotate_session(request)


async def log_out(request: web.Request) -> None:
    session = await get_session(request)
    user = session.get(USER_KEY)
    session.invalidate()
    if user:
        logger.info("logged out", extra={"user_id": user["id"]})


async def current_user(request: web.Request) -> dict[str, Any] | None:
    session = await get_session(request)
    user = session.get(USER_KEY)
    return user if isinstance(user, dict) else None


async def require_user(
    request: web.Request,
) -> tuple[Session, dict[str, Any], dict[str, Any]]:
    """Return the session, user and session record, or raise NotLoggedIn."""
    session = await get_session(request)
    user = session.get(USER_KEY)
    record = request.get(SESSION_RECORD)
    if not isinstance(user, dict) or record is None:
        raise NotLoggedIn()
    return session, user, record
