"""Assembly of the session service: clients, background tasks and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from services.common.bus import (
    ConsumerOptions,
    GroupConsumer,
    StreamTrimmer,
    consumer_name,
    create_redis,
    redis_check,
)
from services.common.events import ConsumerGroup, Producer, stream_name
from services.common.mongo import create_client, database, mongo_check
from services.common.outbox import OutboxRelay
from services.common.startup import StartupGate
from services.common.tasks import background
from services.common.web import (
    READINESS_CHECKS,
    service_app,
)

from .consumers import identity_event_handler
from .handlers import SESSIONS, add_routes
from .sessions import Sessions, Timeouts
from .settings import SessionSettings
from .store import SessionStore
from .sweeper import Sweeper


def create_app(settings: SessionSettings) -> web.Application:
    app = service_app(
        settings.service_token.get_secret_value(),
        client_max_size=max(64 * 1024, settings.max_data_bytes * 8),
    )
    add_routes(app)
    app.cleanup_ctx.append(_dependencies(settings))
    return app


def _timeouts(settings: SessionSettings) -> Timeouts:
    return Timeouts(
        idle=settings.idle_timeout,
        absolute=settings.absolute_timeout,
        touch_interval=settings.touch_interval,
    )


def _dependencies(settings: SessionSettings):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        mongo = create_client(settings.mongodb_url)
        redis = create_redis(settings.redis_url)
        store = SessionStore(database(mongo))
        stream = stream_name(settings.stream_prefix, Producer.SESSION)
        relay = OutboxRelay([store.sessions, store.revocations], redis, stream)
        store.on_outbox = relay.notify
        sessions = Sessions(
            store,
            timeouts=_timeouts(settings),
            max_data_bytes=settings.max_data_bytes,
        )
        app[SESSIONS] = sessions
        consumer = GroupConsumer(
            redis,
            stream=stream_name(settings.stream_prefix, Producer.IDENTITY),
            group=ConsumerGroup.SESSION,
            consumer=consumer_name("session"),
            handler=identity_event_handler(sessions),
            dead_letter_prefix=settings.stream_prefix,
            options=ConsumerOptions(claim_idle=settings.claim_idle),
        )
        sweeper = Sweeper(store, interval=settings.sweep_interval)

        async def prepare() -> None:
            await store.create_indexes()
            await relay.create_indexes()

        startup = StartupGate("creating session indexes", prepare)
        app[READINESS_CHECKS].extend(
            [mongo_check(mongo), redis_check(redis), startup.check]
        )
        tasks = {
            "outbox_relay": relay.run,
            "identity_events": consumer.run,
            "sweeper": sweeper.run,
            "stream_trimmer": StreamTrimmer(redis, stream).run,
        }
        async with background(tasks, once={"startup": startup.run}):
            yield
        await redis.aclose()
        await mongo.close()

    return context
