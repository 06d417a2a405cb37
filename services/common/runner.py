"""Process entry point shared by the three services."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web
from pydantic import ValidationError

from .logs import configure_logging
from .settings import CommonSettings

logger = logging.getLogger("mflix.runner")

SettingsT = TypeVar("SettingsT", bound=CommonSettings)

# Seconds that SIGTERM leaves requests in flight to finish.
SHUTDOWN_TIMEOUT = 10.0


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read settings or exit with status 2 and the invalid variables."""
    try:
        return settings_class()
    except ValidationError as error:
        for item in error.errors(include_url=False, include_input=False):
            location = ".".join(str(part) for part in item["loc"]) or "settings"
            print(f"invalid setting {location}: {item['msg']}", file=sys.stderr)
        sys.exit(2)


def run_service(
    service: str,
    settings_class: type[SettingsT],
    create_app: Callable[[SettingsT], web.Application],
) -> None:
    """Configure logging, build the app and serve it until SIGINT or SIGTERM."""
    settings = load_settings(settings_class)
    configure_logging(service, settings.log_level)
    host = getattr(settings, "host", "127.0.0.1")
    port = getattr(settings, "port", 8080)
    logger.info("starting %s on %s:%s in %s mode", service, host, port, settings.mode)
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        access_log=None,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    logger.info("%s stopped", service)
