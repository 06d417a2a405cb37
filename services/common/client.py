"""The HTTP client one service uses to call another's internal API."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .errors import ServiceUnavailable
from .logs import REQUEST_ID_HEADER, request_id_var

logger = logging.getLogger("mflix.client")


@dataclass(frozen=True)
class Reply:
    """Status and decoded JSON body of an internal call (empty on 204)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error")
        return error.get("code") if isinstance(error, dict) else None


class InternalClient:
    """Call one internal service with the service credential and request id.

    Connection failures, timeouts and 5xx responses raise ServiceUnavailable;
    every other status is returned to the caller to interpret.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        service_token: str,
        name: str,
        timeout: float = 5.0,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._authorization = f"Bearer {service_token}"
        self._name = name
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(self, method: str, path: str, payload: Any = None) -> Reply:
        headers = {
            "Authorization": self._authorization,
            REQUEST_ID_HEADER: request_id_var.get(),
        }
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                json=payload,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                body = await _json_body(response)
        except (TimeoutError, aiohttp.ClientError) as error:
            # Only the type: the text of some aiohttp errors repeats the
            # request headers, service credential included.
            logger.warning(
                "%s %s on %s failed: %s", method, path, self._name, type(error).__name__
            )
            raise ServiceUnavailable(detail=f"{self._name} unreachable") from error
        if response.status >= 500:
            logger.warning(
                "%s %s on %s responded with status %d",
                method,
                path,
                self._name,
                response.status,
            )
            raise ServiceUnavailable(
                detail=f"{self._name} responded with status {response.status}"
            )
        return Reply(response.status, body)

    async def ping(self) -> None:
        """Raise unless the service's /readyz, which checks its dependencies, is 2xx."""
        reply = await self.call("GET", "/readyz")
        if not reply.ok:
            raise ServiceUnavailable(detail=f"{self._name} is not ready")


async def _json_body(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """Decode a JSON object body; anything else (204, text, HTML) counts as empty."""
    if response.status == 204:
        return {}
    try:
        body = await response.json(content_type=None)
    except ValueError:
        logger.warning("non-JSON response with status %d", response.status)
        return {}
    return body if isinstance(body, dict) else {}
