"""Operator access to dead letters: list them, and replay them once fixed.

A dead-letter entry keeps the original stream name, the original entry id,
the last error and every original field prefixed with ``original:``.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from .events import ConsumerGroup, dead_letter_stream_name

ORIGINAL_PREFIX = b"original:"


@dataclass(frozen=True)
class DeadLetter:
    id: str
    stream: str
    original_id: str
    error: str
    fields: dict[bytes, bytes]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def list_dead_letters(
    redis: Redis, prefix: str, group: ConsumerGroup, count: int = 100
) -> list[DeadLetter]:
    entries = await redis.xrange(dead_letter_stream_name(prefix, group), count=count)
    return [
        DeadLetter(
            id=_text(entry_id),
            stream=_text(fields.get(b"stream", b"")),
            original_id=_text(fields.get(b"entry_id", b"")),
            error=_text(fields.get(b"error", b"")),
            fields={
                key.removeprefix(ORIGINAL_PREFIX): value
                for key, value in fields.items()
                if key.startswith(ORIGINAL_PREFIX)
            },
        )
        for entry_id, fields in entries
    ]


async def replay_dead_letters(
    redis: Redis, prefix: str, group: ConsumerGroup, ids: set[str] | None = None
) -> int:
    """Append dead letters to their original streams again and remove them.

    Every consumer group of that stream receives the replayed entry, so its
    handlers must be idempotent, as all handlers are. ``ids`` of None
    replays every dead letter of the group.
    """
    dead_letters = dead_letter_stream_name(prefix, group)
    replayed = 0
    for letter in await list_dead_letters(redis, prefix, group, count=10_000):
        if ids is not None and letter.id not in ids:
            continue
        await redis.xadd(letter.stream, letter.fields)
        await redis.xdel(dead_letters, letter.id)
        replayed += 1
    return replayed
