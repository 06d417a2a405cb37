"""Dropping cached sessions when another process revokes them."""

from __future__ import annotations

import logging

from services.common.events import Envelope, EventType

from .cache import SessionCache

logger = logging.getLogger("mflix.gateway.invalidation")


def session_event_handler(cache: SessionCache):  # type: ignore[no-untyped-def]
    async def handle(envelope: Envelope) -> None:
        if envelope.type is not EventType.SESSION_REVOKED:
            return
        if cache.drop_session(envelope.data["session_id"]):
            logger.info("dropped revoked session from cache")

    return handle
