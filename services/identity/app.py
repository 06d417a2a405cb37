"""Assembly of the identity service: clients, background tasks and routes."""

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

from .activity import Activity, session_event_handler
from .handlers import ACTIVITY, USERS, add_routes
from .passwords import PasswordHasher
from .settings import IdentitySettings
from .store import UserStore
from .users import Users

RELAY = web.AppKey("relay", OutboxRelay)


def create_app(settings: IdentitySettings) -> web.Application:
    app = service_app(
        settings.service_token.get_secret_value(), client_max_size=64 * 1024
    )
    add_routes(app)
    app.cleanup_ctx.append(_dependencies(settings))
    return app


def _dependencies(settings: IdentitySettings):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        mongo = create_client(settings.mongodb_url)
        redis = create_redis(settings.redis_url)
        db = database(mongo)
        store = UserStore(db)
        activity = Activity(db)
        hasher = PasswordHasher(
            cost=settings.bcrypt_cost,
            workers=settings.hash_workers,
            max_queued=settings.max_queued_hashes,
        )
        own_stream = stream_name(settings.stream_prefix, Producer.IDENTITY)
        relay = OutboxRelay([store.users, store.credentials], redis, own_stream)
        store.on_outbox = relay.notify
        app[RELAY] = relay
        app[ACTIVITY] = activity
        app[USERS] = Users(
            store,
            hasher,
            activity,
            password_min_length=settings.password_min_length,
        )
        session_events = GroupConsumer(
            redis,
            stream=stream_name(settings.stream_prefix, Producer.SESSION),
            group=ConsumerGroup.IDENTITY,
            consumer=consumer_name("identity"),
            handler=session_event_handler(activity),
            dead_letter_prefix=settings.stream_prefix,
            options=ConsumerOptions(claim_idle=settings.claim_idle),
        )

        async def prepare() -> None:
            await store.create_indexes()
            await activity.create_indexes()
            await relay.create_indexes()

        startup = StartupGate("creating user indexes", prepare)
        app[READINESS_CHECKS].extend(
            [mongo_check(mongo), redis_check(redis), startup.check]
        )
        tasks = {
            "outbox_relay": relay.run,
            "session_events": session_events.run,
            "stream_trimmer": StreamTrimmer(redis, own_stream).run,
        }
        async with background(tasks, once={"startup": startup.run}):
            yield
        hasher.close()
        await redis.aclose()
        await mongo.close()

    return context
