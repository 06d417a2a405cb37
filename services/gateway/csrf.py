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
import secrets

from aiohttp import web

logger = logging.getLogger("mflix.gateway.csrf")

CSRF_FIELD = "csrf_token"
CSRF_SECRET = web.AppKey("csrf_secret", bytes)
CSRF_COOKIE = web.AppKey("csrf_cookie", str)
PUBLIC_ORIGIN = web.AppKey("public_origin", str)
SECURE_COOKIES = web.AppKey("secure_cookies", bool)
_BROWSER_VALUE = web.RequestKey("csrf_browser_value", str)


def _sign(secret: bytes, browser_value: str) -> str:
    return hmac.new(secret, browser_value.encode("ascii"), hashlib.sha256).hexdigest()


def csrf_token(request: web.Request) -> str:
    """Return the form token of this browser, creating its cookie value if needed."""
    value = request.get(_BROWSER_VALUE) or request.cookies.get(request.app[CSRF_COOKIE])
    if not value or len(value) != 43:
        value = secrets.token_urlsafe(32)
    request[_BROWSER_VALUE] = value
    return _sign(request.app[CSRF_SECRET], value)


def set_csrf_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """Persist the browser value chosen by csrf_token, if this request chose one."""
    value = request.get(_BROWSER_VALUE)
    if value and value != request.cookies.get(request.app[CSRF_COOKIE]):
        response.set_cookie(
            request.app[CSRF_COOKIE],
            value,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=request.app[SECURE_COOKIES],
        )


def form_token_valid(request: web.Request, submitted: object) -> bool:
    value = request.cookies.get(request.app[CSRF_COOKIE])
    if not value or not isinstance(submitted, str):
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
