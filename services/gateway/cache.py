"""A per-process cache of resolved sessions, keyed by the SHA-256 of the token.

An entry is served for at most ``ttl`` seconds and never past the
session's own idle or absolute expiry. Logout in this process drops the
entry at once; ``session.revoked`` events drop it in every other process.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web


def cache_key(token: str) -> str:
    """Return the cache key of a token: its SHA-256, so no token is kept twice."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True)
class CachedSession:
    session: dict[str, Any]
    fetched_at: float
    expires_at: float

    @property
    def session_id(self) -> str:
        return str(self.session["id"])


def session_deadline(session: dict[str, Any]) -> float:
    """Return the epoch seconds at which a resolved session ends if left unused."""
    idle = datetime.fromisoformat(session["idle_expires_at"]).timestamp()
    absolute = datetime.fromisoformat(session["absolute_expires_at"]).timestamp()
    return min(idle, absolute)


class SessionCache:
    def __init__(
        self,
        *,
        ttl: float,
        max_entries: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, CachedSession] = OrderedDict()
        self._keys_by_session: dict[str, str] = {}
        # When each key or session id was last dropped. A lookup that started
        # before a drop must not put its (now stale) result back afterwards.
        self._dropped: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        if now - entry.fetched_at >= self._ttl or now >= entry.expires_at:
            self._remove(key)
            return None
        return entry.session

    def now(self) -> float:
        return self._clock()

    def put(self, key: str, session: dict[str, Any], *, fetched_at: float) -> None:
        """Cache a session that a lookup started at ``fetched_at`` returned.

        Ignored when the key or the session was dropped after that moment,
        so a lookup racing a logout cannot revive the session here.
        """
        if self._ttl <= 0 or self._max_entries <= 0:
            return
        self._forget_old_drops()
        for dropped in (key, str(session["id"])):
            if self._dropped.get(dropped, float("-inf")) >= fetched_at:
                return
        self._remove(key)
        entry = CachedSession(session, fetched_at, session_deadline(session))
        self._entries[key] = entry
        self._keys_by_session[entry.session_id] = key
        while len(self._entries) > self._max_entries:
            oldest_key, oldest = self._entries.popitem(last=False)
            if self._keys_by_session.get(oldest.session_id) == oldest_key:
                del self._keys_by_session[oldest.session_id]

    def drop_key(self, key: str) -> None:
        self._mark_dropped(key)
        self._remove(key)

    def drop_session(self, session_id: str) -> bool:
        """Drop the entry of a public session id; True when one was cached."""
        self._mark_dropped(session_id)
        key = self._keys_by_session.pop(session_id, None)
        if key is None:
            return False
        self._entries.pop(key, None)
        return True

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._keys_by_session.pop(entry.session_id, None)

    def _mark_dropped(self, name: str) -> None:
        self._dropped.pop(name, None)
        self._dropped[name] = self._clock()

    def _forget_old_drops(self) -> None:
        # A lookup older than the TTL would be expired at once anyway.
        horizon = self._clock() - max(self._ttl, 1.0) - 5.0
        while self._dropped:
            name, when = next(iter(self._dropped.items()))
            if when >= horizon:
                break
            del self._dropped[name]


CACHE = web.AppKey("session_cache", SessionCache)
