"""Throttling of failed logins and of signups, shared by all gateway processes.

Login attempts are counted per account and per client address in Redis,
within a window, before the password is checked; a successful login
resets the account's count. Past a threshold each further attempt locks
the key for a growing delay (doubling, capped), during which logins for it
get 429 without a password check. A browser that holds a device
cookie from an earlier successful login to that account is counted and
locked on its own instead (OWASP: "Slow Down Online Guessing Attacks with
Device Cookies"), so an attacker cannot lock the real user out of a known
device; the address limit still applies to everybody.

If Redis is unreachable, throttling is skipped and logged: bcrypt's cost
still bounds guessing, and logins keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import unicodedata
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.emails import InvalidEmail, email_key
from services.common.errors import TooManyRequests

logger = logging.getLogger("mflix.gateway.throttle")

_DEVICE_COOKIE = re.compile(r"[A-Za-z0-9_-]{22}\.[0-9a-f]{32}")


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Throttling thresholds; times in seconds."""

    window: int = 900
    account_failures: int = 5
    address_failures: int = 20
    first_lock: float = 1.0
    max_lock: float = 300.0
    signups_per_address: int = 10
    signup_window: int = 3600


class Throttle:
    def __init__(
        self, redis: Redis, *, prefix: str, secret: bytes, limits: Limits
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:throttle"
        self._secret = secret
        self._limits = limits

    def account_key(self, email: str) -> str:
        """Return a keyed hash of the address: no address is stored in Redis.

        The address is normalised as the identity service does it, so every
        spelling of one account (case, Unicode forms, IDNA dots) shares the
        count. An invalid address, which no account has, is only folded.
        """
        try:
            normalized = email_key(email.strip())
        except InvalidEmail:
            normalized = unicodedata.normalize("NFKC", email.strip()).casefold()
        digest = hmac.new(
            self._secret, normalized.encode("utf-8", "replace"), hashlib.sha256
        )
        return digest.hexdigest()[:32]

    def device_cookie(self, account: str) -> str:
        """Return a new device cookie value that vouches for ``account``."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._sign(account, nonce)}"

    def device_key(self, cookie: str | None, account: str) -> str | None:
        """Return the throttle key of a browser's valid device cookie, else None.

        A known device is counted and locked on its own, apart from the
        account's shared count, so guesses from elsewhere never lock it out
        and a stolen device cookie still gets only a few guesses.
        """
        if not cookie or not _DEVICE_COOKIE.fullmatch(cookie):
            return None
        nonce, signature = cookie.split(".")
        expected = self._sign(account, nonce)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        return f"{account}:device:{nonce}"

    def _sign(self, account: str, nonce: str) -> str:
        message = f"device:{account}:{nonce}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    async def begin_attempt(self, account: str, address: str) -> None:
        """Count one attempt before the password is checked; raise 429 when locked.

        Counting before checking stops concurrent guesses from passing the
        limit together: past the threshold, only the one attempt that takes
        the lock goes ahead until the lock expires.
        """
        scopes = [
            ("address", address, self._limits.address_failures),
            ("account", account, self._limits.account_failures),
        ]
        try:
            waits = [await self._attempt(*scope) for scope in scopes]
        except RedisError as error:
            logger.warning("login throttle unavailable, not throttling: %r", error)
            return
        wait = max(waits)
        if wait > 0:
            logger.warning("login throttled for %.1f s", wait)
            raise _too_many(wait)

    async def record_success(self, account: str, address: str) -> None:
        """Reset the account's count and give back the address's attempt."""
        try:
            await self._redis.delete(
                self._count_key("account", account), self._lock_key("account", account)
            )
            await self._redis.decr(self._count_key("address", address))
        except RedisError as error:
            logger.warning(
                "login throttle unavailable, success not recorded: %r", error
            )

    async def give_back(self, account: str, address: str) -> None:
        """Return an attempt whose password was never checked, as on a 503."""
        keys = [
            self._count_key("address", address),
            self._count_key("account", account),
        ]
        try:
            for key in keys:
                await self._redis.decr(key)
        except RedisError as error:
            logger.warning(
                "login throttle unavailable, attempt not returned: %r", error
            )

    async def check_signup(self, address: str) -> None:
        """Count a signup from ``address``; raise TooManyRequests past the limit."""
        key = f"{self._prefix}:signup:{address}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(key, 0, ex=self._limits.signup_window, nx=True)
                pipe.incr(key)
                pipe.ttl(key)
                _created, count, ttl = await pipe.execute()
        except RedisError as error:
            logger.warning("signup throttle unavailable, not throttling: %r", error)
            return
        if count > self._limits.signups_per_address:
            logger.warning("signup throttled for this address")
            raise _too_many(max(ttl, 1))

    def _count_key(self, kind: str, value: str) -> str:
        return f"{self._prefix}:login-failures:{kind}:{value}"

    def _lock_key(self, kind: str, value: str) -> str:
        return f"{self._prefix}:login-lock:{kind}:{value}"

    async def _attempt(self, kind: str, value: str, threshold: int) -> float:
        """Count an attempt; return the seconds to wait, or 0 to go ahead."""
        lock_key = self._lock_key(kind, value)
        locked_ms = await self._redis.pttl(lock_key)
        if locked_ms > 0:
            return locked_ms / 1000
        count_key = self._count_key(kind, value)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(count_key, 0, ex=self._limits.window, nx=True)
            pipe.incr(count_key)
            _created, count = await pipe.execute()
        if count < threshold:
            return 0.0
        # The attempt that reaches the threshold, and each one after it,
        # must take the lock to go ahead; the lock then holds back the rest.
        growth = 2 ** min(count - threshold, 30)
        delay = min(self._limits.first_lock * growth, self._limits.max_lock)
        if await self._redis.set(lock_key, 1, px=int(delay * 1000), nx=True):
            return 0.0
        return max(await self._redis.pttl(lock_key), 1) / 1000


def _too_many(seconds: float) -> TooManyRequests:
    retry_after = max(1, math.ceil(seconds))
    return TooManyRequests(
        f"Too many attempts. Try again in {_duration(retry_after)}.",
        headers={"Retry-After": str(retry_after)},
    )


def _duration(seconds: int) -> str:
    if seconds < 90:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"
