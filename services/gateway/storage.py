"""aiohttp-session storage backed by the session service.

The cookie carries only the opaque token. The mapping that handlers see
is the session data plus the key ``user``, which marks a logged-in
session: setting it on a new session logs in, invalidating the session
logs out. Anonymous sessions are never stored, like express-session with
``saveUninitialized: false``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_session import AbstractStorage, Session, get_session
from prometheus_client import Counter

from services.common.errors import ApiError, ServiceUnavailable

from .cache import SessionCache, cache_key
from .clients import SESSIONS
from .network import client_ip, header_text

logger = logging.getLogger("mflix.gateway.storage")

CACHE_LOOKUPS = Counter(
    "mflix_gateway_session_cache_lookups_total",
    "Session lookups in the gateway cache, by result (hit or miss).",
    ["result"],
)
REJECTED_COOKIES = Counter(
    "mflix_gateway_rejected_session_cookies_total",
    "Session cookies the session service did not accept, by reason.",
    ["reason"],
)

USER_KEY = "user"
# The resolved session record (id, times, device) of the current request.
SESSION_RECORD = web.RequestKey("session_record", dict)
# Set by rotate_session: the response gives the session a new token.
ROTATE = web.RequestKey("rotate_session", bool)
MAX_TOKEN_LENGTH = 64


def seconds_until(moment: str) -> int:
    """Return whole seconds from now until an ISO 8601 time, at least 0."""
    return max(0, int(datetime.fromisoformat(moment).timestamp() - time.time()))


class SessionServiceStorage(AbstractStorage):
    def __init__(
        self,
        cache: SessionCache,
        *,
        cookie_name: str,
        secure: bool,
    ) -> None:
        super().__init__(
            cookie_name=cookie_name,
            path="/",
            secure=secure,
            httponly=True,
            samesite="Lax",
            max_age=None,
        )
        self._cache = cache

    def token(self, request: web.Request) -> str | None:
        token = self.load_cookie(request)
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        return token

    async def load_session(self, request: web.Request) -> Session:
        token = self.token(request)
        if token is None:
            return self._anonymous(stale_cookie=self.load_cookie(request) is not None)
        record = await self._resolve(request, token)
        if record is None:
            return self._anonymous(stale_cookie=True)
        request[SESSION_RECORD] = record
        data = {**record.get("data", {}), USER_KEY: record["user"]}
        return Session(
            token, data={"created": int(time.time()), "session": data}, new=False
        )

    def _anonymous(self, *, stale_cookie: bool) -> Session:
        session = Session(None, data=None, new=True)
        if stale_cookie:
            # Saving an empty new session clears the dead cookie.
            session.changed()
        return session

    async def _resolve(self, request: web.Request, token: str) -> dict[str, Any] | None:
        key = cache_key(token)
        cached = self._cache.get(key)
        if cached is not None:
            CACHE_LOOKUPS.labels("hit").inc()
            return cached
        CACHE_LOOKUPS.labels("miss").inc()
        started = self._cache.now()
        reply = await request.app[SESSIONS].resolve(token)
        if reply.ok:
            record = reply.body["session"]
            self._cache.put(key, record, fetched_at=started)
            return record
        error = reply.body.get("error", {})
        reason = str(error.get("reason", reply.error_code or reply.status))
        REJECTED_COOKIES.labels(reason).inc()
        logger.warning("session cookie rejected: %s", reason)
        return None

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        token = self.token(request)
        if session.new:
            await self._save_new(request, response, session, token)
        elif session.empty or USER_KEY not in session:
            await self._end(request, response, token)
        elif request.get(ROTATE):
            await self._rotate(request, response, token)
        else:
            await self._save_data(request, response, session, token)

    async def _save_new(
        self,
        request: web.Request,
        response: web.StreamResponse,
        session: Session,
        previous_token: str | None,
    ) -> None:
        data = dict(session)
        user = data.pop(USER_KEY, None)
        if user is None:
            if previous_token is not None or self.load_cookie(request) is not None:
                self.save_cookie(response, "")
            return
        remember = bool(data.pop("remember", False))
        reply = await request.app[SESSIONS].create(
            user=user,
            remember=remember,
            user_agent=header_text(request.headers.get("User-Agent", "")),
            ip=client_ip(request),
            data=data,
            previous_token=previous_token,
        )
        if not reply.ok:
            raise ServiceUnavailable(
                detail=f"session create responded with status {reply.status}"
            )
        if previous_token is not None:
            self._cache.drop_key(cache_key(previous_token))
        self._set_session_cookie(request, response, reply.body)

    async def _rotate(
        self, request: web.Request, response: web.StreamResponse, token: str | None
    ) -> None:
        if token is None:
            return
        self._cache.drop_key(cache_key(token))
        reply = await request.app[SESSIONS].rotate(token)
        self._cache.drop_key(cache_key(token))
        if not reply.ok:
            logger.warning("session rotation rejected: %s", reply.error_code)
            self.save_cookie(response, "")
            return
        self._set_session_cookie(request, response, reply.body)

    def _set_session_cookie(
        self, request: web.Request, response: web.StreamResponse, body: dict[str, Any]
    ) -> None:
        record = body["session"]
        request[SESSION_RECORD] = record
        self._cache.put(cache_key(body["token"]), record, fetched_at=self._cache.now())
        # Without "remember me" the cookie ends with the browser session;
        # with it, the cookie lives exactly as long as the session may.
        remember = record.get("remember", False)
        max_age = seconds_until(record["absolute_expires_at"]) if remember else None
        self.save_cookie(response, body["token"], max_age=max_age)

    async def _end(
        self, request: web.Request, response: web.StreamResponse, token: str | None
    ) -> None:
        if token is not None:
            self._cache.drop_key(cache_key(token))
            reply = await request.app[SESSIONS].revoke(token)
            # Again after the revocation: a lookup that ran meanwhile may
            # have seen the session still live.
            self._cache.drop_key(cache_key(token))
            if not reply.ok:
                raise ApiError(
                    detail=f"session revoke responded with status {reply.status}"
                )
        self.save_cookie(response, "")

    async def _save_data(
        self,
        request: web.Request,
        response: web.StreamResponse,
        session: Session,
        token: str | None,
    ) -> None:
        if token is None:
            return
        data = {key: value for key, value in session.items() if key != USER_KEY}
        reply = await request.app[SESSIONS].save(token, data)
        self._cache.drop_key(cache_key(token))
        if reply.status == 404:
            self.save_cookie(response, "")
        elif not reply.ok:
            raise ApiError(detail=f"session save responded with status {reply.status}")


async def rotate_session(request: web.Request) -> None:
    """Give the current session a new token; the old cookie stops working."""
    session = await get_session(request)
    session.changed()
    request[ROTATE] = True
