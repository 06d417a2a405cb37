"""Readable device labels for the sessions list."""

from __future__ import annotations

from functools import lru_cache

import ua_parser


@lru_cache(maxsize=1024)
def device_label(user_agent: str) -> str:
    """Describe a User-Agent as "Browser on OS", such as "Firefox on Windows"."""
    result = ua_parser.parse(user_agent[:512])
    browser = result.user_agent.family if result.user_agent else None
    system = result.os.family if result.os else None
    if browser and system and system != "Other":
        return f"{browser} on {system}"
    return browser or "Unknown device"
