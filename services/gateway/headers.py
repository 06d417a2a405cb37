"""Security headers on every gateway response."""

from __future__ import annotations

from aiohttp import web

from services.common.web import Handler

# No inline script or style anywhere, so the policy needs no nonces.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# One year, as recommended for HSTS preload lists (hstspreload.org).
HSTS = "max-age=31536000; includeSubDomains"


def security_headers_middleware(*, https: bool):  # type: ignore[no-untyped-def]
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as error:
            _apply(error.headers, request, https)
            raise
        _apply(response.headers, request, https)
        return response

    return middleware


def _apply(headers, request: web.Request, https: bool) -> None:  # type: ignore[no-untyped-def]
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if not request.path.startswith("/static/"):
        # Pages and API responses may show personal data, so none is cached.
        headers.setdefault("Cache-Control", "no-store")
