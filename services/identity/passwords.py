"""Password policy and bcrypt hashing.

Follows NIST SP 800-63B section 5.1.1.2: a minimum length, no composition
rules, and a check against a list of commonly used and breached passwords.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import os
import re
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

import bcrypt
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from services.common.errors import ServiceUnavailable

logger = logging.getLogger("mflix.identity.passwords")

T = TypeVar("T")

# bcrypt reads at most 72 bytes. Longer passwords are rejected, never
# silently truncated, so two passwords sharing a prefix cannot both match.
MAX_PASSWORD_BYTES = 72
_HASH_PATTERN = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
# Costs outside this range are refused as unusable: below 4 bcrypt rejects
# the hash, and above 16 one check would stall a worker for minutes.
MIN_HASH_COST = 4
MAX_HASH_COST = 16
# Seconds of queued hashing work accepted before new hashes get 503.
QUEUE_SECONDS = 4.0
# A hash that waited longer than this is skipped, because the gateway,
# which gives internal calls five seconds, no longer waits for its result.
MAX_WAIT_SECONDS = 4.5


class WeakPassword(ValueError):
    pass


@cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships the 30,000 most frequent passwords of public breach
    # corpora; we use it as the offline list.
    return frozenset(FREQUENCY_LISTS["passwords"])


def normalize_password(password: str) -> str:
    """Apply NFKC so one password typed on different keyboards is one value."""
    return unicodedata.normalize("NFKC", password)


def check_password_policy(password: str, *, min_length: int) -> None:
    """Raise WeakPassword naming the first rule a normalised password breaks."""
    if len(password) < min_length:
        raise WeakPassword(f"Must be at least {min_length} characters.")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise WeakPassword(f"Must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8.")
    if password.casefold() in _common_passwords():
        raise WeakPassword("This password is too common. Choose another one.")


def hash_cost(password_hash: str) -> int | None:
    """Return the cost of a bcrypt hash, or None when it is not one."""
    match = _HASH_PATTERN.match(password_hash)
    return int(match.group(1)) if match else None


def is_bcrypt_hash(value: object) -> bool:
    """Tell whether a value is a bcrypt hash that can be checked in bounded time."""
    if not isinstance(value, str):
        return False
    cost = hash_cost(value)
    return cost is not None and MIN_HASH_COST <= cost <= MAX_HASH_COST


class PasswordHasher:
    """Hash and verify passwords on a thread pool, off the event loop.

    pyca/bcrypt releases the GIL while hashing, so one thread per core
    keeps every core busy during a login flood.
    """

    def __init__(self, *, cost: int, workers: int = 0, max_queued: int = 0) -> None:
        self.cost = cost
        threads = workers or os.cpu_count() or 1
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="bcrypt"
        )
        # Verified when the email is unknown, so that case costs one hash too.
        # Timing it also measures one hash on this machine.
        started = time.perf_counter()
        self._dummy_hash = bcrypt.hashpw(b"mflix-dummy-password", bcrypt.gensalt(cost))
        seconds_per_hash = max(time.perf_counter() - started, 0.001)
        # Beyond this many waiting hashes a new one is refused at once with
        # 503, so a login flood cannot build a queue that outlives callers'
        # timeouts. By default the queue has room for about QUEUE_SECONDS of work,
        # below the gateway's five-second limit on internal calls.
        self._max_queued = max_queued or max(
            threads * 4, math.ceil(threads * QUEUE_SECONDS / seconds_per_hash)
        )
        self._queued = 0

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def hash(self, password: str) -> str:
        """Hash a password that passed the policy, at the configured cost."""
        secret = password.encode("utf-8")
        hashed = await self._run(
            lambda: bcrypt.hashpw(secret, bcrypt.gensalt(self.cost))
        )
        return hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check a password; a missing or unusable hash costs one hash and fails."""
        return await self._run(lambda: self._verify_blocking(password, password_hash))

    async def _run(self, work: Callable[[], T]) -> T:
        if self._queued >= self._max_queued:
            logger.warning("password hashing overloaded: %d queued", self._queued)
            raise ServiceUnavailable(
                "Too many logins at once. Try again in a moment.",
                headers={"Retry-After": "1"},
            )
        loop = asyncio.get_running_loop()
        # The context carries the request id into the log lines of the thread.
        context = contextvars.copy_context()
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        self._queued += 1
        try:
            return await loop.run_in_executor(
                self._executor, context.run, _unless_late, work, deadline
            )
        except _TooLate as error:
            raise ServiceUnavailable(
                "Too many logins at once. Try again in a moment.",
                headers={"Retry-After": "1"},
            ) from error
        finally:
            self._queued -= 1

    def _verify_blocking(self, password: str, password_hash: str | None) -> bool:
        secret = password.encode("utf-8")
        usable = password_hash is not None and is_bcrypt_hash(password_hash)
        if len(secret) > MAX_PASSWORD_BYTES or not usable:
            if password_hash is not None and not usable:
                logger.warning("stored password hash is invalid, login rejected")
            self._burn(secret[:MAX_PASSWORD_BYTES])
            return False
        assert password_hash is not None
        try:
            return bcrypt.checkpw(secret, password_hash.encode("ascii"))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001
            # pyca/bcrypt raises ValueError on malformed hashes, and some
            # versions raise a Rust panic that is not an Exception subclass.
            logger.warning(
                "stored password hash could not be checked: %s", type(error).__name__
            )
            self._burn(secret)
            return False

    def _burn(self, secret: bytes) -> None:
        bcrypt.checkpw(secret, self._dummy_hash)

    def needs_rehash(self, password_hash: str) -> bool:
        cost = hash_cost(password_hash)
        return cost is not None and cost < self.cost


class _TooLate(Exception):
    pass


def _unless_late(work: Callable[[], T], deadline: float) -> T:
    """Run ``work`` in a worker thread, unless it waited past ``deadline``."""
    if time.monotonic() > deadline:
        logger.warning("password hash skipped: its caller has stopped waiting")
        raise _TooLate()
    return work()
