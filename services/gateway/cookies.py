"""Cookies chosen while handling a request, sent on whatever response it ends with.

Handlers often end with a raised redirect, and some cookies are chosen deep
inside a flow (a rotated CSRF value, a device cookie), so they are queued
on the request and set by one middleware on the final response.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from services.common.web import Handler

SECURE_COOKIES = web.AppKey("secure_cookies", bool)


@dataclass(frozen=True)
class _Cookie:
    name: str
    value: str
    max_age: int | None


_PENDING = web.RequestKey("pending_cookies", dict)


def set_cookie_later(
    request: web.Request, name: str, value: str, *, max_age: int | None = None
) -> None:
    """Queue an HttpOnly, SameSite=Lax cookie for the response; the last value wins."""
    pending: dict[str, _Cookie] = request.setdefault(_PENDING, {})
    pending[name] = _Cookie(name, value, max_age)


@web.middleware
async def pending_cookies_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as raised:
        _apply(request, raised)
        raise
    _apply(request, response)
    return response


def _apply(request: web.Request, response: web.StreamResponse) -> None:
    for cookie in request.get(_PENDING, {}).values():
        response.set_cookie(
            cookie.name,
            cookie.value,
            max_age=cookie.max_age,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=request.app[SECURE_COOKIES],
        )
