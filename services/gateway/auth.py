"""Sign-up, login, logout and password change, shared by pages and the JSON API."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from services.common.errors import ServiceUnavailable, ValidationFailed

from .clients import IDENTITY
from .errors import EmailTaken, InvalidCredentials, NotLoggedIn
from .network import client_ip
from .storage import SESSION_RECORD, USER_KEY

logger = logging.getLogger("mflix.gateway.auth")


def _raise_for_reply_error(status: int, body: dict[str, Any]) -> None:
    error = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
    if status == 401:
        raise InvalidCredentials()
    if status == 409:
        raise EmailTaken()
    if status == 422:
        raise ValidationFailed(fields=error.get("fields") or {})
    raise ServiceUnavailable(detail=f"identity answered {status}")


async def _start_session(
    request: web.Request, user: dict[str, Any], remember: bool
) -> None:
    # A new aiohttp-session Session makes the storage issue a new token and
    # retire the old one, so a planted cookie never becomes logged in.
    session = await new_session(request)
    session[USER_KEY] = {"id": user["id"], "name": user["name"], "email": user["email"]}
    session["remember"] = remember


async def sign_up(
    request: web.Request, *, name: str, email: str, password: str
) -> dict[str, Any]:
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
    reply = await request.app[IDENTITY].verify(
        email=email, password=password, ip=client_ip(request)
    )
    if reply.status != 200:
        _raise_for_reply_error(reply.status, reply.body)
    user = reply.body["user"]
    await _start_session(request, user, remember=remember)
    logger.info("logged in", extra={"user_id": user["id"], "remember": remember})
    return user


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
