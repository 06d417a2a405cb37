"""Email syntax checks and the case-insensitive key that identifies an address.

Shared because the identity service keys users by it and the gateway keys
its login throttle by it: both must see one account behind every spelling.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 254  # RFC 5321 limit on a forward path


class InvalidEmail(ValueError):
    pass


def email_key(email: str) -> str:
    """Return the uniqueness key of an address: validated, NFKC, case-folded.

    The key makes Ünïcode and ASCII case variants of one address collide,
    while the address itself is stored and shown as the user typed it.
    """
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"Must be at most {MAX_EMAIL_LENGTH} characters.")
    try:
        validated = validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmail(str(error)) from error
    return unicodedata.normalize("NFKC", validated.normalized).casefold()
