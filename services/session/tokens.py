"""Session tokens: what the cookie carries and what the store keeps of it."""

from __future__ import annotations

import hashlib
import re
import secrets

# 32 random bytes are 256 bits, while OWASP's session management cheat sheet
# requires at least 64 bits of entropy: ample margin.
TOKEN_BYTES = 32
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """Return the SHA-256 of a token, the only form the store keeps.

    A fast hash suffices because the token has 256 random bits: a dump of
    the store cannot be turned back into cookies.
    """
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def is_well_formed(token: str) -> bool:
    return TOKEN_PATTERN.fullmatch(token) is not None


def new_session_id() -> str:
    """Return a public session id: listed and revoked by it, useless as a cookie."""
    return secrets.token_urlsafe(12)
