"""Redis Streams transport: publishing, consumer groups, dead letters, trimming.

Delivery is at least once. A consumer acknowledges an entry only after its
handler returned, so handlers must be idempotent. Entries left pending by a
crashed process are claimed with XAUTOCLAIM once they have been idle for
``claim_idle``; an entry that failed ``max_deliveries`` times is copied to
the group's dead-letter stream with its error and then acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import ValidationError
from pymongo.errors import ConnectionFailure
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from .events import ENVELOPE_FIELD, ConsumerGroup, Envelope, dead_letter_stream_name
from .logs import request_id_var

logger = logging.getLogger("mflix.bus")

EventHandler = Callable[[Envelope], Awaitable[None]]

# Handler failures caused by an unreachable dependency, not by the event.
TRANSIENT_ERRORS = (ConnectionFailure, ConnectionError, TimeoutError)

# Caps every stream, so a consumer that is gone for good cannot exhaust
# Redis memory. Acknowledged entries are trimmed much earlier (see
# trim_acknowledged).
# NOTE: a group that falls this far behind loses its oldest entries;
# Redis 8.2's XADD ... ACKED would keep them, Redis 7 has no such option.
MAX_STREAM_LENGTH = 1_000_000


def consumer_name(service: str) -> str:
    """Name this process uniquely within its group: service, host and pid."""
    return f"{service}-{socket.gethostname()}-{os.getpid()}"


async def publish(redis: Redis, stream: str, envelope: Envelope) -> str:
    """Append one envelope to a stream and return the entry id."""
    entry_id = await redis.xadd(
        stream,
        {ENVELOPE_FIELD: envelope.to_json()},
        maxlen=MAX_STREAM_LENGTH,
        approximate=True,
    )
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    """Create the group at the start of the stream; an existing group is kept."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
        logger.info("created consumer group %s on %s", group, stream)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def trim_acknowledged(redis: Redis, stream: str) -> int:
    """Trim entries that every group of the stream has read and acknowledged.

    Returns the number of entries removed. A stream without groups is left
    alone, because its consumers have not started yet.
    """
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return 0
    if not groups:
        return 0
    safe_ids = []
    for group in groups:
        last_delivered = _decode(group["last-delivered-id"])
        pending = await redis.xpending(stream, group["name"])
        oldest_pending = _decode(pending["min"]) if pending["pending"] else None
        safe_ids.append(oldest_pending or _next_id(last_delivered))
    min_id = min(safe_ids, key=_id_key)
    removed = await redis.xtrim(stream, minid=min_id, approximate=False)
    return int(removed)


def _decode(value: bytes | str | None) -> str:
    if value is None:
        return "0-0"
    return value.decode() if isinstance(value, bytes) else value


def _id_key(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def _next_id(entry_id: str) -> str:
    milliseconds, sequence = _id_key(entry_id)
    return f"{milliseconds}-{sequence + 1}"


class StreamTrimmer:
    """Trim a producer's stream of entries every group has acknowledged."""

    def __init__(self, redis: Redis, stream: str, *, interval: float = 30.0) -> None:
        self._redis = redis
        self._stream = stream
        self._interval = interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                removed = await trim_acknowledged(self._redis, self._stream)
            except (RedisError, OSError) as error:
                logger.warning(
                    "trimming %s failed, will retry: %r", self._stream, error
                )
                continue
            if removed:
                logger.info(
                    "trimmed %d acknowledged entries from %s", removed, self._stream
                )


@dataclass(frozen=True, kw_only=True)
class ConsumerOptions:
    """Timing of a group consumer. Times are in seconds."""

    block: float = 1.0
    claim_idle: float = 30.0
    max_deliveries: int = 5
    batch_size: int = 50
    max_backoff: float = 5.0
    # Between checks for consumers of processes that are gone, and the idle
    # time after which a consumer without pending entries counts as gone.
    cleanup_interval: float = 600.0
    gone_consumer_idle: float = 3600.0


class GroupConsumer:
    """Consume one stream as one member of a consumer group until stopped."""

    def __init__(
        self,
        redis: Redis,
        *,
        stream: str,
        group: ConsumerGroup,
        consumer: str,
        handler: EventHandler,
        dead_letter_prefix: str,
        options: ConsumerOptions | None = None,
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._handler = handler
        self._dead_letters = dead_letter_stream_name(dead_letter_prefix, group)
        self._options = options or ConsumerOptions()
        self._group_ready = False
        self._next_cleanup = 0.0

    async def run(self) -> None:
        """Read, handle and acknowledge entries; survive Redis outages."""
        failures = 0
        while True:
            try:
                await self._ensure_group()
                await self._remove_gone_consumers()
                handled = await self._claim_stale()
                handled += await self._read_new()
                failures = 0
                if not handled:
                    await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except ResponseError as error:
                if "NOGROUP" in str(error):
                    # Redis lost the group (restart without persistence or
                    # FLUSHALL): recreate it on the next pass.
                    logger.warning(
                        "group %s missing on %s, recreating", self._group, self._stream
                    )
                    self._group_ready = False
                    continue
                failures += 1
                await self._back_off(failures, error)
            except (RedisError, OSError) as error:
                failures += 1
                self._group_ready = False
                await self._back_off(failures, error)

    async def _back_off(self, failures: int, error: Exception) -> None:
        delay = min(self._options.max_backoff, 0.1 * 2**failures)
        logger.warning(
            "consumer %s on %s failed, retrying in %.1fs: %r",
            self._group,
            self._stream,
            delay,
            error,
        )
        await asyncio.sleep(delay)

    async def _ensure_group(self) -> None:
        if not self._group_ready:
            await ensure_group(self._redis, self._stream, self._group)
            self._group_ready = True

    async def _remove_gone_consumers(self) -> None:
        """Delete consumers of restarted processes once they hold no entries.

        Each process start adds a consumer name; without this the group
        would list every process that ever ran. Only consumers with nothing
        pending are deleted, so no entry is lost.
        """
        now = time.monotonic()
        if now < self._next_cleanup:
            return
        self._next_cleanup = now + self._options.cleanup_interval
        for consumer in await self._redis.xinfo_consumers(self._stream, self._group):
            name = _decode(consumer["name"])
            idle_seconds = int(consumer["idle"]) / 1000
            if name == self._consumer or consumer["pending"]:
                continue
            if idle_seconds >= self._options.gone_consumer_idle:
                await self._redis.xgroup_delconsumer(self._stream, self._group, name)
                logger.info("removed idle consumer %s from group %s", name, self._group)

    async def _claim_stale(self) -> int:
        idle_ms = int(self._options.claim_idle * 1000)
        result = await self._redis.xautoclaim(
            self._stream,
            self._group,
            self._consumer,
            min_idle_time=idle_ms,
            start_id="0-0",
            count=self._options.batch_size,
        )
        entries = result[1]
        for entry_id, fields in entries:
            if fields is None:
                continue
            await self._process(_decode(entry_id), fields)
        return len(entries)

    async def _read_new(self) -> int:
        response = await self._redis.xreadgroup(
            self._group,
            self._consumer,
            {self._stream: ">"},
            count=self._options.batch_size,
            block=int(self._options.block * 1000),
        )
        handled = 0
        for _stream, entries in response or []:
            for entry_id, fields in entries:
                await self._process(_decode(entry_id), fields)
                handled += 1
        return handled

    async def _process(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        raw = fields.get(ENVELOPE_FIELD.encode())
        try:
            if raw is None:
                raise ValueError(f"entry has no {ENVELOPE_FIELD} field")
            envelope = Envelope.from_json(raw)
        except (ValueError, ValidationError) as error:
            # A malformed entry will never succeed: dead-letter it at once.
            await self._dead_letter(entry_id, fields, f"malformed envelope: {error}")
            return

        token = request_id_var.set(f"event-{envelope.id[:12]}")
        try:
            await self._handler(envelope)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._record_failure(entry_id, fields, envelope, error)
            return
        finally:
            request_id_var.reset(token)
        await self._redis.xack(self._stream, self._group, entry_id)

    async def _record_failure(
        self,
        entry_id: str,
        fields: dict[bytes, bytes],
        envelope: Envelope,
        error: Exception,
    ) -> None:
        deliveries = await self._delivery_count(entry_id)
        # An outage of MongoDB is no fault of the event, so the event stays
        # pending however often it fails and is handled once the outage ends.
        transient = isinstance(error, TRANSIENT_ERRORS)
        if deliveries >= self._options.max_deliveries and not transient:
            await self._dead_letter(entry_id, fields, repr(error))
            return
        # Left pending: XAUTOCLAIM hands it out again after claim_idle.
        logger.warning(
            "event %s (%s) failed on delivery %d of %d: %r",
            envelope.id,
            envelope.type,
            deliveries,
            self._options.max_deliveries,
            error,
        )

    async def _delivery_count(self, entry_id: str) -> int:
        pending = await self._redis.xpending_range(
            self._stream, self._group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _dead_letter(
        self, entry_id: str, fields: dict[bytes, bytes], error: str
    ) -> None:
        # Validation errors span several lines. Joining them keeps each
        # letter on one line of `mflix-auth dead-letters list`.
        error = " ".join(error.split())
        record = {
            b"stream": self._stream.encode(),
            b"entry_id": entry_id.encode(),
            b"error": error[:2000].encode(),
            **{b"original:" + key: value for key, value in fields.items()},
        }
        await self._redis.xadd(
            self._dead_letters, record, maxlen=MAX_STREAM_LENGTH, approximate=True
        )
        await self._redis.xack(self._stream, self._group, entry_id)
        logger.error(
            "entry %s of %s moved to %s: %s",
            entry_id,
            self._stream,
            self._dead_letters,
            error[:200],
        )


class StreamFollower:
    """Read every new entry of a stream in this process (broadcast, no group).

    Used where each process must see every event, such as cache
    invalidation in each gateway process.
    """

    def __init__(
        self, redis: Redis, *, stream: str, handler: EventHandler, block: float = 1.0
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._handler = handler
        self._block_ms = int(block * 1000)
        self._last_id: str | None = None

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                if self._last_id is None:
                    self._last_id = await self._newest_id()
                response = await self._redis.xread(
                    {self._stream: self._last_id}, block=self._block_ms, count=200
                )
                failures = 0
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                failures += 1
                delay = min(5.0, 0.1 * 2**failures)
                logger.warning(
                    "following %s failed, retrying in %.1fs: %r",
                    self._stream,
                    delay,
                    error,
                )
                await asyncio.sleep(delay)
                continue
            for _stream, entries in response or []:
                for entry_id, fields in entries:
                    self._last_id = _decode(entry_id)
                    await self._dispatch(fields)

    async def _newest_id(self) -> str:
        """Return the id of the stream's newest entry, or "0-0" without a stream.

        Reading from "$" instead would skip every entry appended between
        one XREAD that returned nothing and the next XREAD.
        """
        try:
            info = await self._redis.xinfo_stream(self._stream)
        except ResponseError as error:
            if "no such key" not in str(error).lower():
                raise
            return "0-0"
        return _decode(info["last-generated-id"])

    async def _dispatch(self, fields: dict[bytes, bytes]) -> None:
        try:
            envelope = Envelope.from_json(fields[ENVELOPE_FIELD.encode()])
            await self._handler(envelope)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("event on %s ignored: %r", self._stream, error)


def create_redis(url: str) -> Redis:
    """Create a client whose calls fail within seconds when Redis is down."""
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)


def redis_check(redis: Redis) -> Callable[[], Awaitable[None]]:
    """Return a readiness check that pings Redis."""

    async def redis_ping() -> None:
        await redis.ping()

    return redis_ping
