"""aiohttp building blocks every service uses: middlewares and operations routes."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import (
    ApiError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
)
from .logs import REQUEST_ID_HEADER, accept_request_id, request_id_var

logger = logging.getLogger("mflix.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReadinessCheck = Callable[[], Awaitable[None]]

REQUESTS = Counter(
    "mflix_http_requests_total",
    "HTTP requests handled, by route and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "mflix_http_request_duration_seconds",
    "Time to handle an HTTP request, by route.",
    ["route"],
)

# Failures of MongoDB or Redis, which a later retry may not meet: 503.
DEPENDENCY_ERRORS = (ConnectionFailure, RedisConnectionError, RedisTimeoutError)

READINESS_CHECKS = web.AppKey("readiness_checks", list[ReadinessCheck])
OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_context_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Bind a request id, log one line per request and count it."""
    request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except web.HTTPException as error:
        status = error.status
        error.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = _route_name(request)
        REQUESTS.labels(route, request.method, str(status)).inc()
        LATENCY.labels(route).observe(elapsed)
        if request.path not in OPERATIONS_PATHS:
            logger.info(
                "request handled",
                extra={
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
        request_id_var.reset(token)


def error_response(error: ApiError) -> web.Response:
    response = web.json_response(error.to_json(), status=error.status)
    response.headers.update(error.headers)
    return response


ErrorRenderer = Callable[[web.Request, ApiError], web.StreamResponse]


def _render_json(request: web.Request, error: ApiError) -> web.StreamResponse:
    return error_response(error)


def error_middleware(render: ErrorRenderer = _render_json):  # type: ignore[no-untyped-def]
    """Turn errors into responses made by ``render``, JSON by default.

    Handles ApiError, aiohttp's 404, 405 and 413, unreachable dependencies
    (503) and unexpected exceptions (500, logged with their traceback).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as error:
            translated = _translate(error)
            if translated is None:
                raise
            return render(request, translated)
        except ApiError as error:
            if error.status >= 500:
                logger.warning("request failed: %s", error.detail or error.code)
            return render(request, error)
        except DEPENDENCY_ERRORS as error:
            logger.warning("dependency unavailable: %r", error)
            return render(request, ServiceUnavailable())
        except Exception:
            logger.exception("unhandled error")
            return render(request, ApiError())

    return middleware


def _translate(error: web.HTTPException) -> ApiError | None:
    """Return the ApiError for an aiohttp error rendered here, else None."""
    if error.status == 413:
        return PayloadTooLarge()
    if error.status == 404:
        return NotFound()
    if error.status == 403:
        return Forbidden()
    if error.status == 405:
        return MethodNotAllowed(headers={"Allow": error.headers.get("Allow", "")})
    return None


json_error_middleware = error_middleware()


def service_app(token: str, *, client_max_size: int) -> web.Application:
    """Create an internal service's app: request context, JSON errors, credential."""
    app = web.Application(
        middlewares=[
            request_context_middleware,
            json_error_middleware,
            service_auth_middleware(token),
        ],
        client_max_size=client_max_size,
    )
    add_operations_routes(app)
    return app


def service_auth_middleware(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Reject internal API calls that lack the shared service credential."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPERATIONS_PATHS:
            return await handler(request)
        supplied = request.headers.get("Authorization", "").encode()
        # Constant-time comparison so response timing reveals no prefix.
        if not hmac.compare_digest(supplied, expected):
            logger.warning("internal call without a valid service credential")
            raise Unauthorized("A valid service credential is required.")
        return await handler(request)

    return middleware


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Return 200 when every dependency responds, else 503 naming the failed one."""
    for check in request.app[READINESS_CHECKS]:
        try:
            await check()
        except Exception as error:
            name = getattr(check, "__name__", "dependency")
            logger.warning("readiness check %s failed: %r", name, error)
            raise ServiceUnavailable(detail=f"{name} failed") from error
    return web.json_response({"status": "ready"})


METRICS_TOKEN = web.AppKey("metrics_token", str)


async def metrics(request: web.Request) -> web.Response:
    """Serve Prometheus text; with METRICS_TOKEN set, only to that bearer token."""
    token = request.app.get(METRICS_TOKEN)
    if token is not None:
        supplied = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(supplied, f"Bearer {token}".encode()):
            raise Unauthorized("Metrics need the service credential.")
    response = web.Response(body=generate_latest())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


def add_operations_routes(app: web.Application) -> None:
    """Add /healthz, /readyz and /metrics; readiness checks go in READINESS_CHECKS."""
    app.setdefault(READINESS_CHECKS, [])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
