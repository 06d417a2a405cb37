"""Removal of expired sessions on servers that have no TTL indexes."""

from __future__ import annotations

import asyncio
import logging

from pymongo.errors import PyMongoError

from services.common.clock import utc_now

from .store import SessionStore

logger = logging.getLogger("mflix.session.sweeper")

BATCH_SIZE = 500


class Sweeper:
    """Delete expired sessions every ``interval`` seconds unless a TTL index does it.

    Safe with several session service processes: each deletion re-checks
    expiry, and deleting an already deleted document is a no-op.
    """

    def __init__(self, store: SessionStore, *, interval: float) -> None:
        self._store = store
        self._interval = interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._store.has_ttl_index:
                continue
            try:
                removed = await self.sweep()
            except PyMongoError as error:
                logger.warning(
                    "sweeping expired sessions failed, will retry: %r", error
                )
                continue
            if removed:
                logger.info("swept %d expired sessions", removed)

    async def sweep(self) -> int:
        total = 0
        while True:
            removed = await self._store.delete_expired(utc_now(), BATCH_SIZE)
            total += removed
            if removed < BATCH_SIZE:
                return total
