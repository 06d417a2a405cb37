"""Validation of the ``next`` parameter, which must stay on this site."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

DEFAULT_NEXT = "/"
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?#]*$")


def safe_next(candidate: object) -> str:
    """Return ``candidate`` if it is a same-site relative path, else ``/``.

    Rejects scheme-relative (``//host``), backslash (``/\\host``, which
    browsers treat as ``//``), absolute URLs, control characters and their
    percent-encoded forms, because any of them can leave the site.
    """
    if not isinstance(candidate, str) or not candidate or len(candidate) > 2048:
        return DEFAULT_NEXT
    if not _SAFE_PATH.match(candidate):
        return DEFAULT_NEXT
    decoded = candidate
    for _ in range(3):
        decoded = unquote(decoded)
    if (
        decoded.startswith("//")
        or "\\" in decoded
        or any(ord(c) < 0x20 for c in decoded)
    ):
        return DEFAULT_NEXT
    # Dot segments could turn "/.//host" into "//host" in some client.
    path = decoded.split("?", 1)[0].split("#", 1)[0]
    if any(segment in {".", ".."} for segment in path.split("/")):
        return DEFAULT_NEXT
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return candidate
