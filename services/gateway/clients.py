"""Typed calls from the gateway to the identity and session services."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from services.common.client import InternalClient, Reply

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def is_session_id(value: str) -> bool:
    """Tell whether a value has the shape of a public session id."""
    return SESSION_ID.fullmatch(value) is not None


def _segment(value: str) -> str:
    """Quote a value for use as one URL path segment.

    "." and ".." would be resolved away by URL normalisation and reach
    another internal route, so they are refused.
    """
    if value in {"", ".", ".."}:
        raise ValueError(f"{value!r} cannot be a path segment")
    return quote(value, safe="")


class IdentityClient:
    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def register(
        self, *, name: str, email: str, password: str, ip: str | None
    ) -> Reply:
        return await self._client.call(
            "POST",
            "/internal/v1/users",
            {"name": name, "email": email, "password": password, "ip": ip},
        )

    async def verify(self, *, email: str, password: str, ip: str | None) -> Reply:
        return await self._client.call(
            "POST",
            "/internal/v1/credentials/verify",
            {"email": email, "password": password, "ip": ip},
        )

    async def recent_activity(self, user_id: str) -> Reply:
        return await self._client.call(
            "GET", f"/internal/v1/users/{_segment(user_id)}/activity"
        )

    async def change_password(
        self, user_id: str, *, current: str, new: str, keep_session_id: str
    ) -> Reply:
        return await self._client.call(
            "POST",
            f"/internal/v1/users/{_segment(user_id)}/password",
            {
                "current_password": current,
                "new_password": new,
                "keep_session_id": keep_session_id,
            },
        )

    async def ping(self) -> None:
        await self._client.ping()


class SessionClient:
    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def create(
        self,
        *,
        user: dict[str, str],
        remember: bool,
        user_agent: str,
        ip: str | None,
        data: dict[str, Any],
        previous_token: str | None,
    ) -> Reply:
        return await self._client.call(
            "POST",
            "/internal/v1/sessions",
            {
                "user": user,
                "remember": remember,
                "user_agent": user_agent,
                "ip": ip,
                "data": data,
                "previous_token": previous_token,
            },
        )

    async def resolve(self, token: str) -> Reply:
        return await self._client.call(
            "POST", "/internal/v1/sessions/resolve", {"token": token}
        )

    async def save(self, token: str, data: dict[str, Any]) -> Reply:
        return await self._client.call(
            "POST", "/internal/v1/sessions/save", {"token": token, "data": data}
        )

    async def rotate(self, token: str) -> Reply:
        return await self._client.call(
            "POST", "/internal/v1/sessions/rotate", {"token": token}
        )

    async def revoke(self, token: str, reason: str = "logout") -> Reply:
        return await self._client.call(
            "POST", "/internal/v1/sessions/revoke", {"token": token, "reason": reason}
        )

    async def list_for_user(self, user_id: str) -> Reply:
        return await self._client.call(
            "GET", f"/internal/v1/users/{_segment(user_id)}/sessions"
        )

    async def revoke_for_user(self, user_id: str, session_id: str) -> Reply:
        return await self._client.call(
            "DELETE",
            f"/internal/v1/users/{_segment(user_id)}/sessions/{_segment(session_id)}",
        )

    async def revoke_others(self, user_id: str, keep_session_id: str) -> Reply:
        return await self._client.call(
            "POST",
            f"/internal/v1/users/{_segment(user_id)}/sessions/revoke",
            {"keep_session_id": keep_session_id},
        )

    async def ping(self) -> None:
        await self._client.ping()


IDENTITY = web.AppKey("identity", IdentityClient)
SESSIONS = web.AppKey("sessions", SessionClient)
