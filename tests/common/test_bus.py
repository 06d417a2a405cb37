"""Group consumers against a real Redis: housekeeping of consumer names."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from redis.asyncio import Redis

from services.common.bus import ConsumerOptions, GroupConsumer, ensure_group
from services.common.events import ConsumerGroup, Envelope


async def test_consumer_of_gone_process_is_removed(redis: Redis) -> None:
    stream = f"test-{uuid.uuid4().hex}:events:identity"
    group = ConsumerGroup.SESSION
    await ensure_group(redis, stream, group)
    await redis.xgroup_createconsumer(stream, group, "gone-process")
    # Redis 7.0 registers a consumer only once it has read an entry.
    await redis.xadd(stream, {"envelope": "not json"})

    async def ignore(envelope: Envelope) -> None:
        return None

    consumer = GroupConsumer(
        redis,
        stream=stream,
        group=group,
        consumer="live-process",
        handler=ignore,
        dead_letter_prefix="test",
        options=ConsumerOptions(
            block=0.1, cleanup_interval=0.1, gone_consumer_idle=0.2
        ),
    )
    await asyncio.sleep(0.3)
    task = asyncio.create_task(consumer.run())
    names: set[str] = {"gone-process"}
    for _ in range(50):
        await asyncio.sleep(0.1)
        consumers = await redis.xinfo_consumers(stream, group)
        names = {c["name"].decode() for c in consumers}
        if "gone-process" not in names and "live-process" in names:
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await redis.delete(stream, "test:dead-letters:session")

    assert "gone-process" not in names
    assert "live-process" in names


async def test_consumer_with_pending_entries_is_kept(redis: Redis) -> None:
    stream = f"test-{uuid.uuid4().hex}:events:identity"
    group = ConsumerGroup.SESSION
    await ensure_group(redis, stream, group)
    await redis.xadd(stream, {"envelope": "not json"})
    await redis.xreadgroup(group, "crashed-process", {stream: ">"}, count=1)

    async def ignore(envelope: Envelope) -> None:
        return None

    consumer = GroupConsumer(
        redis,
        stream=stream,
        group=group,
        consumer="live-process",
        handler=ignore,
        dead_letter_prefix="test",
        options=ConsumerOptions(
            block=0.1, claim_idle=3600, cleanup_interval=0.1, gone_consumer_idle=0.1
        ),
    )
    await asyncio.sleep(0.2)
    task = asyncio.create_task(consumer.run())
    await asyncio.sleep(1.0)
    consumers = await redis.xinfo_consumers(stream, group)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await redis.delete(stream)

    assert "crashed-process" in {c["name"].decode() for c in consumers}
