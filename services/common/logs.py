"""Structured JSON logging with a request id carried across services.

Every record is one JSON line with the service name and the id of the
request being handled, so one login can be followed through the gateway,
identity and session logs.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import sys

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default="-"
)

# An inbound id is reused only when it looks like one of ours, so a client
# cannot inject newlines, markup or megabytes into every log line.
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")


def new_request_id() -> str:
    return secrets.token_hex(8)


def accept_request_id(candidate: str | None) -> str:
    """Return the inbound request id when it is well-formed, else a new one."""
    if candidate and _REQUEST_ID_PATTERN.fullmatch(candidate):
        return candidate
    return new_request_id()


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.request_id = request_id_var.get()
        return True


class _ClientBodyErrorFilter(logging.Filter):
    """Log a malformed request body as one warning line, not an ERROR traceback.

    After a handler has responded with 400, aiohttp drains the unread body and
    logs its decoding error as an unhandled exception. That is the client's
    fault, and anyone could fill the log with such tracebacks.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (RequestPayloadError, HttpProcessingError)):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = (
                "malformed request body: %s",
                (type(error).__name__,),
            )
            record.exc_info, record.exc_text = None, None
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every record of this process to stderr as one JSON line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(service)s %(request_id)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            timestamp=False,
        )
    )
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what the request middleware logs.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(_ClientBodyErrorFilter())
