"""Reading HTML form posts safely."""

from __future__ import annotations

from aiohttp import web

from services.common.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from services.common.validation import BODY_ERRORS

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
MAX_FIELD_LENGTH = 1024


async def read_form(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    """Return the named fields as strings, missing ones as "".

    Repeated fields keep the first value; uploaded files and overlong values
    count as empty, so no field ever reaches a handler as anything but str.
    """
    if request.content_type not in FORM_TYPES:
        raise UnsupportedMediaType("The request body must be a form.")
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge as error:
        raise PayloadTooLarge() from error
    except BODY_ERRORS as error:
        # A bad charset, boundary, encoding or truncated body.
        raise BadRequest("The form body could not be read.") from error
    fields: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        valid = isinstance(value, str) and len(value) <= MAX_FIELD_LENGTH
        fields[name] = value if valid else ""  # type: ignore[assignment]
    return fields
