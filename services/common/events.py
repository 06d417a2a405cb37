"""The event envelope, the catalogue of event types and the stream names.

Every event on the bus is one envelope serialised as JSON in the stream
entry field ``envelope``. Both the producer and every consumer validate the
envelope and its data against the catalogue below.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1
ENVELOPE_FIELD = "envelope"


class Producer(enum.StrEnum):
    IDENTITY = "identity"
    SESSION = "session"


class EventType(enum.StrEnum):
    USER_REGISTERED = "user.registered"
    USER_PASSWORD_CHANGED = "user.password_changed"
    USER_LOCKED = "user.locked"
    USER_DELETED = "user.deleted"
    SESSION_CREATED = "session.created"
    SESSION_REVOKED = "session.revoked"


class ConsumerGroup(enum.StrEnum):
    """Consumer groups: one per consuming service, shared by its processes."""

    SESSION = "session"
    IDENTITY = "identity"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserData(_Data):
    user_id: str


class UserRegisteredData(UserData):
    email: str


class SessionData(_Data):
    user_id: str
    session_id: str


class SessionRevokedData(SessionData):
    reason: str


class UserSessionsRevokedData(UserData):
    keep_session_id: str | None = None


EVENT_DATA: dict[EventType, type[_Data]] = {
    EventType.USER_REGISTERED: UserRegisteredData,
    EventType.USER_PASSWORD_CHANGED: UserSessionsRevokedData,
    EventType.USER_LOCKED: UserData,
    EventType.USER_DELETED: UserData,
    EventType.SESSION_CREATED: SessionData,
    EventType.SESSION_REVOKED: SessionRevokedData,
}

EVENT_PRODUCER: dict[EventType, Producer] = {
    EventType.USER_REGISTERED: Producer.IDENTITY,
    EventType.USER_PASSWORD_CHANGED: Producer.IDENTITY,
    EventType.USER_LOCKED: Producer.IDENTITY,
    EventType.USER_DELETED: Producer.IDENTITY,
    EventType.SESSION_CREATED: Producer.SESSION,
    EventType.SESSION_REVOKED: Producer.SESSION,
}


class Envelope(BaseModel):
    """One event: id, type, UTC time, producer, schema version and data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")
    type: EventType
    occurred_at: AwareDatetime
    producer: Producer
    schema_version: int = Field(ge=1, le=SCHEMA_VERSION)
    data: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def model_post_init(self, context: Any) -> None:
        if EVENT_PRODUCER[self.type] is not self.producer:
            raise ValueError(f"{self.type} is not produced by {self.producer}")
        EVENT_DATA[self.type].model_validate(self.data)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Envelope:
        return cls.model_validate_json(raw)


def new_event(event_type: EventType, data: dict[str, Any]) -> Envelope:
    """Build a validated envelope with a fresh id and the current UTC time."""
    return Envelope(
        id=uuid.uuid4().hex,
        type=event_type,
        occurred_at=datetime.now(UTC),
        producer=EVENT_PRODUCER[event_type],
        schema_version=SCHEMA_VERSION,
        data=EVENT_DATA[event_type].model_validate(data).model_dump(),
    )


def stream_name(prefix: str, producer: Producer) -> str:
    """Name the stream that one producing service appends its events to."""
    return f"{prefix}:events:{producer}"


def dead_letter_stream_name(prefix: str, group: ConsumerGroup) -> str:
    return f"{prefix}:dead-letters:{group}"
