"""Strict parsing of JSON request bodies into pydantic models."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ValidationError

from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

Model = TypeVar("Model", bound=BaseModel)

# Errors raised while reading a malformed body: bad content encoding or
# transfer, unknown charsets, undecodable bytes and broken multipart framing.
BODY_ERRORS = (
    HttpProcessingError,
    RequestPayloadError,
    web.HTTPBadRequest,
    ValueError,
    LookupError,
    AssertionError,
)


def validation_fields(error: ValidationError) -> dict[str, str]:
    """Map each invalid field to one readable reason, the first one pydantic found."""
    fields: dict[str, str] = {}
    for item in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in item["loc"]) or "body"
        fields.setdefault(location, _reason(item["type"], item["msg"]))
    return fields


def _reason(error_type: str, message: str) -> str:
    if error_type == "missing":
        return "This field is required."
    if error_type == "string_type":
        return "Must be a string."
    if error_type == "bool_type":
        return "Must be true or false."
    if error_type == "extra_forbidden":
        return "Unknown field."
    # pydantic prefixes the reasons of custom validators with "Value error, ".
    return message.removeprefix("Value error, ")


def parse_model(model: type[Model], payload: object) -> Model:
    """Validate an already decoded payload, raising ValidationFailed on errors.

    Request models set ``strict=True`` so that no value is coerced: an
    object or a number where a string belongs is an error, never a query.
    """
    if not isinstance(payload, dict):
        raise ValidationFailed(fields={"body": "Must be a JSON object."})
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise ValidationFailed(fields=validation_fields(error)) from error


async def read_json(request: web.Request, model: type[Model]) -> Model:
    """Read and validate a JSON body: 415 for other types, 400 bad JSON, 413 size."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType()
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as error:
        raise PayloadTooLarge() from error
    except BODY_ERRORS as error:
        raise BadRequest("The request body could not be read.") from error
    try:
        payload = json.loads(raw)
    # ValueError covers JSONDecodeError, undecodable bytes and integers
    # longer than Python's int_max_str_digits.
    except (ValueError, RecursionError) as error:
        raise BadRequest() from error
    return parse_model(model, payload)


def reject_unencodable(value: str) -> str:
    """Reject lone surrogates and NUL, which MongoDB and bcrypt cannot store or hash."""
    if "\x00" in value:
        raise ValueError("Must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("Must be valid Unicode text.") from error
    return value


def reject_control_characters(value: str) -> str:
    """Reject C0 and C1 control characters in single-line text such as names."""
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in value):
        raise ValueError("Must not contain control characters.")
    return value
