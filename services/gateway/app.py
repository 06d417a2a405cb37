"""Assembly of the gateway: clients, session storage, middlewares and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import session_middleware

from services.common.bus import StreamFollower, create_redis, redis_check
from services.common.client import InternalClient
from services.common.errors import (
    ApiError,
)
from services.common.events import Producer, stream_name
from services.common.tasks import background
from services.common.web import (
    METRICS_TOKEN,
    OPERATIONS_PATHS,
    READINESS_CHECKS,
    add_operations_routes,
    error_middleware,
    error_response,
    request_context_middleware,
)

from . import api, pages
from .auth import DEVICE_COOKIE, THROTTLE
from .cache import CACHE, SessionCache
from .clients import IDENTITY, SESSIONS, IdentityClient, SessionClient
from .cookies import SECURE_COOKIES, pending_cookies_middleware
from .csrf import CSRF_COOKIE, CSRF_SECRET, PUBLIC_ORIGIN, csrf_token
from .headers import security_headers_middleware
from .invalidation import session_event_handler
from .network import TRUSTED_PROXIES
from .settings import GatewaySettings
from .storage import SessionServiceStorage
from .throttle import Limits, Throttle

logger = logging.getLogger("mflix.gateway")

PACKAGE_DIR = Path(__file__).parent
# Forms and JSON bodies of this API are small; 16 KiB leaves ample room.
MAX_BODY_BYTES = 16 * 1024
_ERROR_TITLES = {
    401: "Please log in",
    400: "Bad request",
    403: "Request blocked",
    404: "Page not found",
    405: "Method not allowed",
    413: "Request too large",
    415: "Unsupported request",
    429: "Too many attempts",
    503: "Temporarily unavailable",
}


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path in OPERATIONS_PATHS


def _error_page(request: web.Request, error: ApiError) -> web.Response:
    context = {
        "title": _ERROR_TITLES.get(error.status, "Something went wrong"),
        "message": error.message,
        "back_url": "/login" if error.status in {401, 403} else "/",
        "back_label": "Back to login"
        if error.status in {401, 403}
        else "Back to MFLIX",
        "csrf_token": csrf_token(request),
        "user": None,
    }
    response = aiohttp_jinja2.render_template(
        "error.html", request, context, status=error.status
    )
    response.headers.update(error.headers)
    return response


def _render_error(request: web.Request, error: ApiError) -> web.StreamResponse:
    if _is_api(request):
        return error_response(error)
    return _error_page(request, error)


def create_app(settings: GatewaySettings) -> web.Application:
    cache = SessionCache(ttl=settings.cache_ttl, max_entries=settings.cache_size)
    # RFC 6265bis: a __Host- cookie is Secure, host-only and Path=/, so no
    # sibling subdomain can overwrite it.
    prefix = "__Host-" if settings.https else ""
    storage = SessionServiceStorage(
        cache, cookie_name=f"{prefix}mflix_sid", secure=settings.https
    )
    errors = error_middleware(_render_error)
    app = web.Application(
        middlewares=[
            request_context_middleware,
            security_headers_middleware(https=settings.https),
            # The outer error middleware renders failures of the session
            # storage itself. The inner one turns handler errors into
            # responses, so aiohttp-session still saves the session, and
            # clears a dead cookie, on a 401 or 422.
            errors,
            session_middleware(storage),
            errors,
            pending_cookies_middleware,
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[CACHE] = cache
    # The gateway is public: its metrics go only to scrapers holding the
    # service credential.
    app[METRICS_TOKEN] = settings.service_token.get_secret_value()
    app[CSRF_SECRET] = settings.secret_key.get_secret_value().encode()
    app[CSRF_COOKIE] = f"{prefix}mflix_csrf"
    app[DEVICE_COOKIE] = f"{prefix}mflix_device"
    app[PUBLIC_ORIGIN] = settings.public_url
    app[SECURE_COOKIES] = settings.https
    app[TRUSTED_PROXIES] = list(settings.trusted_proxies)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(PACKAGE_DIR / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    add_operations_routes(app)
    app.router.add_static("/static", PACKAGE_DIR / "static", append_version=False)
    pages.add_routes(app)
    api.add_routes(app)
    app.cleanup_ctx.append(_dependencies(settings, cache))
    return app


def _dependencies(settings: GatewaySettings, cache: SessionCache):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        token = settings.service_token.get_secret_value()
        connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=30)
        redis = create_redis(settings.redis_url)
        async with aiohttp.ClientSession(connector=connector) as http:
            identity = IdentityClient(
                InternalClient(
                    http,
                    base_url=settings.identity_url,
                    service_token=token,
                    name="identity",
                )
            )
            sessions = SessionClient(
                InternalClient(
                    http,
                    base_url=settings.session_url,
                    service_token=token,
                    name="session",
                )
            )
            app[IDENTITY] = identity
            app[SESSIONS] = sessions
            app[THROTTLE] = Throttle(
                redis,
                prefix=settings.stream_prefix,
                secret=settings.secret_key.get_secret_value().encode(),
                limits=Limits(
                    window=settings.login_window,
                    account_failures=settings.login_account_failures,
                    address_failures=settings.login_address_failures,
                    max_lock=settings.login_max_lock,
                    signups_per_address=settings.signups_per_address,
                ),
            )
            follower = StreamFollower(
                redis,
                stream=stream_name(settings.stream_prefix, Producer.SESSION),
                handler=session_event_handler(cache),
            )
            app[READINESS_CHECKS].extend(
                [identity.ping, sessions.ping, redis_check(redis)]
            )
            async with background({"session_events": follower.run}):
                yield
        await redis.aclose()

    return context
