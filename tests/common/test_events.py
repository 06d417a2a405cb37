"""The event envelope is validated on both ends."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from services.common.events import Envelope, EventType, new_event


def test_envelope_round_trips_through_json() -> None:
    event = new_event(EventType.USER_LOCKED, {"user_id": "u1"})

    decoded = Envelope.from_json(event.to_json())

    assert decoded == event
    assert decoded.occurred_at.utcoffset() is not None
    assert decoded.producer == "identity"


@pytest.mark.parametrize(
    "change",
    [
        {"type": "user.unknown"},
        {"producer": "session"},
        {"schema_version": 99},
        {"id": "not-hex"},
        {"occurred_at": "2026-01-01T00:00:00"},
        {"data": {"user_id": 5}},
        {"data": {"user_id": "u1", "extra": True}},
    ],
)
def test_envelope_rejects_invalid_field(change: dict[str, object]) -> None:
    raw = json.loads(new_event(EventType.USER_LOCKED, {"user_id": "u1"}).to_json())
    raw.update(change)

    with pytest.raises(ValidationError):
        Envelope.from_json(json.dumps(raw))


def test_new_event_rejects_wrong_data() -> None:
    with pytest.raises(ValidationError):
        new_event(EventType.SESSION_REVOKED, {"user_id": "u1"})
