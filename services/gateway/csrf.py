"""Cross-site request forgery defences for forms and the JSON API.

Forms use a signed double-submit token (OWASP CSRF cheat sheet): a random
value in an HttpOnly cookie, and in the form its HMAC under the server
key. It exists before login, so login and signup forms are protected too.
Every state-changing request is also checked with Fetch Metadata and
Origin, which browsers set and pages cannot forge.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets

from aiohttp import web

from .cookies import set_cookie_later

logger = logging.getLogger("mflix.gateway.csrf")

CSRF_FIELD = "csrf_token"
CSRF_SECRET = web.AppKey("csrf_secret", bytes)
CSRF_COOKIE = web.AppKey("csrf_cookie", str)
PUBLIC_ORIGIN = web.AppKey("public_origin", str)
_BROWSER_VALUE = web.RequestKey("csrf_browser_value", str)
# token_urlsafe(32): any other cookie value is ignored and replaced.
_BROWSER_VALUE_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


def _sign(secret: bytes, browser_value: str) -> str:
    return hmac.new(secret, browser_value.encode("ascii"), hashlib.sha256).hexdigest()


def csrf_token(request: web.Request) -> str:
    """Return the form token of this browser, creating its cookie value if needed."""
    value = request.get(_BROWSER_VALUE) or request.cookies.get(request.app[CSRF_COOKIE])
    if not value or not _BROWSER_VALUE_PATTERN.fullmatch(value):
        value = _new_browser_value(request)
    return _sign(request.app[CSRF_SECRET], value)


def rotate_csrf(request: web.Request) -> None:
    """Give the browser a new CSRF value, as at login: older form tokens die."""
    _new_browser_value(request)


def _new_browser_value(request: web.Request) -> str:
    value = secrets.token_urlsafe(32)
    request[_BROWSER_VALUE] = value
    set_cookie_later(request, request.app[CSRF_COOKIE], value)
    return value


def form_token_valid(request: web.Request, submitted: object) -> bool:
    value = request.cookies.get(request.app[CSRF_COOKIE])
    if not value or not _BROWSER_VALUE_PATTERN.fullmatch(value):
        return False
    if not isinstance(submitted, str):
        return False
    expected = _sign(request.app[CSRF_SECRET], value)
    return hmac.compare_digest(expected.encode(), submitted.encode("utf-8", "replace"))


def cross_site(request: web.Request) -> bool:
    """Tell whether a browser marked this request as coming from another site.

    Requests without Sec-Fetch-Site and Origin (scripts, curl) are not
    cross-site: they carry no ambient browser cookies of a victim.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in {"same-origin", "none"}:
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    own_origins = {request.app[PUBLIC_ORIGIN], f"{request.scheme}://{request.host}"}
    return origin not in own_origins
