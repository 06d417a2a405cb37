"""The event bus against real Redis, FerretDB and service processes.

These tests check the guarantees of docs/events.md. No event is lost while
Redis is stopped or after it lost its data, and no effect is applied twice.
Malformed entries go to the dead letters, revocations reach every gateway
process, and trimming keeps every entry that a group has not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from services.common.bus import StreamFollower, trim_acknowledged
from services.common.deadletters import DeadLetter, list_dead_letters
from services.common.events import (
    ENVELOPE_FIELD,
    ConsumerGroup,
    Envelope,
    EventType,
    Producer,
    new_event,
    stream_name,
)
from tests.support.bus import (
    RedisServer,
    error_log_lines,
    poll,
    redis_client,
    run_cli,
    stack_database,
    start_second_gateway,
    stream_envelopes,
    unacknowledged_count,
)
from tests.support.flows import (
    COOKIE,
    PASSWORD,
    api_login,
    api_signup,
    me_status,
    session_cookie,
)
from tests.support.internal import call, create_session, resolve
from tests.support.processes import Stack, free_port

NEW_PASSWORD = "a quieter night at the movies"
SESSION_GROUP = ConsumerGroup.SESSION.value
# Pending entries of a crashed consumer are claimed after 1 s instead of 30 s.
FAST_CLAIM = {"MFLIX_SESSION_CLAIM_IDLE": "1", "MFLIX_IDENTITY_CLAIM_IDLE": "1"}
# Seconds to wait for an effect that the product promises "within a few
# seconds": consumers back off for up to 5 s while Redis is unreachable.
FEW_SECONDS = 20.0
OUTBOX_COLLECTIONS = ("users", "credentials", "sessions", "session_revocations")
DROPPED_FROM_CACHE = "dropped revoked session from cache"


@dataclass(frozen=True)
class Viewer:
    """A logged-in client, like one browser, with its user and session ids."""

    client: aiohttp.ClientSession
    user_id: str
    session_id: str


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test alone, which the test may stop and restart."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def own_redis_client(own_redis: RedisServer) -> AsyncIterator[Redis]:
    async with redis_client(own_redis.url) as client:
        yield client


def identity_stream(stack: Stack) -> str:
    return stream_name(stack.name, Producer.IDENTITY)


def session_stream(stack: Stack) -> str:
    return stream_name(stack.name, Producer.SESSION)


async def current_viewer(client: aiohttp.ClientSession, stack: Stack) -> Viewer:
    async with client.get(f"{stack.url()}/api/v1/me") as response:
        body = await response.json()
    assert response.status == 200, body
    return Viewer(client, body["user"]["id"], body["session"]["id"])


async def log_in_twice(
    new_client: Callable[[], aiohttp.ClientSession], stack: Stack, email: str
) -> tuple[Viewer, Viewer]:
    """Sign a user up in one client and log the same user in from another."""
    first = new_client()
    second = new_client()
    signup = await api_signup(first, stack, email)
    assert signup.status == 201
    login = await api_login(second, stack, email)
    assert login.status == 200
    return await current_viewer(first, stack), await current_viewer(second, stack)


async def change_password(client: aiohttp.ClientSession, stack: Stack) -> int:
    async with client.post(
        f"{stack.url()}/api/v1/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    ) as response:
        await response.read()
        return response.status


async def wait_until_logged_out(viewer: Viewer, stack: Stack) -> int:
    return await poll(
        lambda: me_status(viewer.client, stack),
        lambda status: status == 401,
        seconds=FEW_SECONDS,
    )


async def wait_until_handled(redis: Redis, stream: str, group: str) -> int:
    return await poll(
        lambda: unacknowledged_count(redis, stream, group),
        lambda count: count == 0,
        seconds=FEW_SECONDS,
    )


async def revoked_activity(database: AsyncDatabase[Any], viewer: Viewer) -> int:
    """Count activity entries of password change revocations, once one exists."""
    query = {
        "user_id": viewer.user_id,
        "kind": "session_revoked",
        "detail": "password_changed",
    }
    return await poll(
        lambda: database.activity.count_documents(query),
        lambda count: count > 0,
        seconds=FEW_SECONDS,
    )


async def revoked_events(redis: Redis, stack: Stack, viewer: Viewer) -> list[str]:
    """Return the ids of the session.revoked events of one session."""
    return [
        envelope["id"]
        for envelope in await stream_envelopes(redis, session_stream(stack))
        if envelope["type"] == EventType.SESSION_REVOKED
        and envelope["data"]["session_id"] == viewer.session_id
    ]


async def pending_outboxes(database: AsyncDatabase[Any]) -> int:
    """Count the documents whose outbox still contains an event."""
    pending = 0
    for name in OUTBOX_COLLECTIONS:
        async for document in database[name].find({}):
            if document.get("outbox") or "outbox_since" in document:
                pending += 1
    return pending


def distinct_ids(envelopes: list[dict[str, Any]], event_type: EventType) -> set[str]:
    return {envelope["id"] for envelope in envelopes if envelope["type"] == event_type}


async def keep_every_entry(redis: Redis, stack: Stack) -> None:
    """Add a group that never reads to both streams of ``stack``.

    The services trim acknowledged entries every 30 s. A group that never
    reads keeps every entry, so a test can count the events at its end.
    """
    for stream in (identity_stream(stack), session_stream(stack)):
        await redis.xgroup_create(stream, "audit", id="0", mkstream=True)


async def test_password_change_survives_redis_restart(
    make_stack: Callable[..., Stack],
    own_redis: RedisServer,
    new_client: Callable[[], aiohttp.ClientSession],
    email: str,
) -> None:
    stack = make_stack(REDIS_URL=own_redis.url)
    async with redis_client(own_redis.url) as redis:
        await keep_every_entry(redis, stack)
    first, second = await log_in_twice(new_client, stack, email)
    async with stack_database(stack) as database:
        await poll(
            lambda: pending_outboxes(database),
            lambda count: count == 0,
            seconds=FEW_SECONDS,
        )
    own_redis.stop()

    status = await change_password(first.client, stack)
    async with stack_database(stack) as database:
        waiting = await pending_outboxes(database)
    own_redis.start()
    second_status = await wait_until_logged_out(second, stack)
    first_status = await me_status(first.client, stack)

    async with stack_database(stack) as database:
        left = await poll(
            lambda: pending_outboxes(database),
            lambda count: count == 0,
            seconds=FEW_SECONDS,
        )
        sessions = await database.sessions.count_documents({})
        revocations = await database.session_revocations.count_documents({})
        activity = await revoked_activity(database, second)
    async with redis_client(own_redis.url) as redis:
        identity_events = await stream_envelopes(redis, identity_stream(stack))
        session_events = await stream_envelopes(redis, session_stream(stack))
    assert status == 204
    # The credential change, the rotated session and its successor.
    assert waiting == 3
    assert second_status == 401
    assert first_status == 200
    assert left == 0
    assert len(distinct_ids(identity_events, EventType.USER_REGISTERED)) == 1
    assert len(distinct_ids(identity_events, EventType.USER_PASSWORD_CHANGED)) == 1
    assert len(distinct_ids(session_events, EventType.SESSION_CREATED)) == sessions
    assert len(distinct_ids(session_events, EventType.SESSION_REVOKED)) == revocations
    assert activity == 1


async def test_crashed_consumer_entry_handled_once(
    make_stack: Callable[..., Stack],
    redis: Redis,
    http: aiohttp.ClientSession,
    new_client: Callable[[], aiohttp.ClientSession],
    email: str,
) -> None:
    stack = make_stack(**FAST_CLAIM)
    first, second = await log_in_twice(new_client, stack, email)
    stream = identity_stream(stack)
    stack.kill("session")
    status, _body = await call(
        http,
        stack,
        "identity",
        "POST",
        f"/internal/v1/users/{first.user_id}/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "keep_session_id": first.session_id,
        },
    )
    await poll(
        lambda: unacknowledged_count(redis, stream, SESSION_GROUP),
        lambda count: count == 1,
        seconds=FEW_SECONDS,
    )
    # Read and never acknowledged, like a session process killed with
    # SIGKILL between XREADGROUP and XACK.
    read = await redis.xreadgroup(
        SESSION_GROUP, "session-crashed-1", {stream: ">"}, count=10
    )

    stack.start("session")
    second_status = await wait_until_logged_out(second, stack)
    first_status = await me_status(first.client, stack)
    unacknowledged = await wait_until_handled(redis, stream, SESSION_GROUP)

    async with stack_database(stack) as database:
        activity = await revoked_activity(database, second)
        revocations = await database.session_revocations.count_documents(
            {"session_id": second.session_id}
        )
    events = await revoked_events(redis, stack, second)
    assert status == 200
    assert len(read[0][1]) == 1
    assert second_status == 401
    assert first_status == 200
    assert unacknowledged == 0
    assert revocations == 1
    assert len(events) == 1
    assert activity == 1


async def test_password_change_revokes_after_flushall(
    make_stack: Callable[..., Stack],
    own_redis: RedisServer,
    own_redis_client: Redis,
    new_client: Callable[[], aiohttp.ClientSession],
    email: str,
) -> None:
    stack = make_stack(REDIS_URL=own_redis.url)
    first, second = await log_in_twice(new_client, stack, email)
    await own_redis_client.flushall()

    status = await change_password(first.client, stack)
    second_status = await wait_until_logged_out(second, stack)
    first_status = await me_status(first.client, stack)

    async with stack_database(stack) as database:
        # Recorded only when the identity service recreated its group too.
        activity = await revoked_activity(database, second)
    assert status == 204
    assert second_status == 401
    assert first_status == 200
    assert activity == 1


async def test_duplicate_event_applies_once(
    make_stack: Callable[..., Stack],
    redis: Redis,
    new_client: Callable[[], aiohttp.ClientSession],
    email: str,
) -> None:
    stack = make_stack()
    first, second = await log_in_twice(new_client, stack, email)
    event = new_event(
        EventType.USER_PASSWORD_CHANGED,
        {"user_id": first.user_id, "keep_session_id": first.session_id},
    )
    stream = identity_stream(stack)

    for _delivery in range(2):
        await redis.xadd(stream, {ENVELOPE_FIELD: event.to_json()})
    unacknowledged = await wait_until_handled(redis, stream, SESSION_GROUP)

    second_status = await wait_until_logged_out(second, stack)
    first_status = await me_status(first.client, stack)
    async with stack_database(stack) as database:
        activity = await revoked_activity(database, second)
        revocations = await database.session_revocations.count_documents(
            {"session_id": second.session_id}
        )
    events = await revoked_events(redis, stack, second)
    dead_letters = await list_dead_letters(redis, stack.name, ConsumerGroup.SESSION)
    assert unacknowledged == 0
    assert second_status == 401
    assert first_status == 200
    assert revocations == 1
    assert len(events) == 1
    assert activity == 1
    assert dead_letters == []
    assert error_log_lines(stack) == []


def envelope_json(**changes: Any) -> str:
    """Return a valid user.locked envelope as JSON, with some fields changed.

    A field changed to None is left out.
    """
    fields = json.loads(
        new_event(EventType.USER_LOCKED, {"user_id": "0" * 24}).to_json()
    )
    fields.update(changes)
    return json.dumps(
        {key: value for key, value in fields.items() if value is not None}
    )


MALFORMED_ENTRIES = {
    "bad-json": ({ENVELOPE_FIELD: '{"id": "unfinished'}, "Invalid JSON"),
    "unknown-type": (
        {ENVELOPE_FIELD: envelope_json(type="user.renamed")},
        "user.renamed",
    ),
    "missing-field": (
        {ENVELOPE_FIELD: envelope_json(occurred_at=None)},
        "Field required",
    ),
    "wrong-producer": (
        {ENVELOPE_FIELD: envelope_json(producer="session")},
        "user.locked is not produced by session",
    ),
    "unknown-data-field": (
        {ENVELOPE_FIELD: envelope_json(data={"user_id": "1", "admin": True})},
        "Extra inputs are not permitted",
    ),
    "no-envelope-field": ({"payload": "{}"}, "entry has no envelope field"),
}


async def dead_letter_of(
    redis: Redis, stack: Stack, entry_id: str
) -> DeadLetter | None:
    """Wait for the dead letter of an identity stream entry and return it."""

    async def find() -> DeadLetter | None:
        letters = await list_dead_letters(redis, stack.name, ConsumerGroup.SESSION)
        matches = [letter for letter in letters if letter.original_id == entry_id]
        return matches[0] if matches else None

    return await poll(find, lambda letter: letter is not None, seconds=FEW_SECONDS)


@pytest.mark.parametrize(
    ("fields", "error"),
    list(MALFORMED_ENTRIES.values()),
    ids=list(MALFORMED_ENTRIES),
)
async def test_malformed_entry_goes_to_dead_letters(
    stack: Stack, redis: Redis, fields: dict[str, str], error: str
) -> None:
    entry_id = (await redis.xadd(identity_stream(stack), fields)).decode()

    letter = await dead_letter_of(redis, stack, entry_id)

    assert letter is not None
    assert letter.stream == identity_stream(stack)
    assert letter.error.startswith("malformed envelope")
    assert error in letter.error
    assert letter.fields == {
        key.encode(): value.encode() for key, value in fields.items()
    }


async def test_consumer_continues_after_malformed_entry(
    stack: Stack,
    redis: Redis,
    new_client: Callable[[], aiohttp.ClientSession],
    email: str,
) -> None:
    first, second = await log_in_twice(new_client, stack, email)
    await redis.xadd(identity_stream(stack), {ENVELOPE_FIELD: "not json"})

    status = await change_password(first.client, stack)
    second_status = await wait_until_logged_out(second, stack)

    assert status == 204
    assert second_status == 401


async def test_dead_letters_list_shows_error(stack: Stack, redis: Redis) -> None:
    entry_id = (
        await redis.xadd(identity_stream(stack), {ENVELOPE_FIELD: "not json"})
    ).decode()
    letter = await dead_letter_of(redis, stack, entry_id)
    assert letter is not None

    result = await run_cli(stack, "dead-letters", "list", "--group", "session")

    lines = result.stdout.splitlines()
    matching = [line for line in lines if line.startswith(f"{letter.id}\t")]
    assert result.returncode == 0, result.stderr
    assert len(matching) == 1
    assert f"\t{entry_id}\t" in matching[0]
    assert "Invalid JSON" in matching[0]


async def test_dead_letters_list_one_line_each(stack: Stack, redis: Redis) -> None:
    # Validation errors span several lines until the dead letter stores them.
    fields = MALFORMED_ENTRIES["missing-field"][0]
    entry_id = (await redis.xadd(identity_stream(stack), fields)).decode()
    assert await dead_letter_of(redis, stack, entry_id) is not None
    letters = await list_dead_letters(redis, stack.name, ConsumerGroup.SESSION)

    result = await run_cli(stack, "dead-letters", "list", "--group", "session")

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(letters) + 1


async def test_replayed_malformed_entry_dead_letters_again(
    stack: Stack, redis: Redis
) -> None:
    payload = f"not json {uuid.uuid4().hex}"
    entry_id = (
        await redis.xadd(identity_stream(stack), {ENVELOPE_FIELD: payload})
    ).decode()
    letter = await dead_letter_of(redis, stack, entry_id)
    assert letter is not None

    async def letters_of_payload() -> list[DeadLetter]:
        letters = await list_dead_letters(redis, stack.name, ConsumerGroup.SESSION)
        return [
            item
            for item in letters
            if item.fields.get(ENVELOPE_FIELD.encode()) == payload.encode()
        ]

    result = await run_cli(
        stack, "dead-letters", "replay", "--group", "session", letter.id
    )
    again = await poll(
        letters_of_payload,
        lambda letters: len(letters) == 1 and letters[0].id != letter.id,
        seconds=FEW_SECONDS,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "replayed 1 dead letters of group session"
    assert len(again) == 1
    assert again[0].id != letter.id
    assert again[0].original_id != entry_id
    assert again[0].error.startswith("malformed envelope")


async def me_with_token(
    client: aiohttp.ClientSession, base_url: str, token: str
) -> int:
    async with client.get(
        f"{base_url}/api/v1/me", headers={"Cookie": f"{COOKIE}={token}"}
    ) as response:
        await response.read()
        return response.status


async def test_logout_reaches_other_gateway_within_one_second(
    make_stack: Callable[..., Stack],
    new_client: Callable[[], aiohttp.ClientSession],
    email: str,
) -> None:
    stack = make_stack()
    second_gateway = start_second_gateway(stack)
    browser = new_client()
    signup = await api_signup(browser, stack, email)
    token = session_cookie(browser)
    assert signup.status == 201
    assert token is not None
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as other:
        warm = await me_with_token(other, second_gateway, token)
        async with browser.post(f"{stack.url()}/api/v1/logout") as response:
            logout_status = response.status
        started = time.monotonic()

        status = await poll(
            lambda: me_with_token(other, second_gateway, token),
            lambda status: status == 401,
            seconds=3.0,
            interval=0.01,
        )
        elapsed = time.monotonic() - started

    log = stack.log_dir / f"{stack.name}-gateway-2.log"
    dropped = await poll(
        lambda: _read_text(log),
        lambda text: DROPPED_FROM_CACHE in text,
        seconds=5.0,
    )
    assert warm == 200
    assert logout_status == 204
    assert status == 401
    assert elapsed < 1.0
    assert DROPPED_FROM_CACHE in dropped


async def _read_text(path: Path) -> str:
    return await asyncio.to_thread(path.read_text, errors="replace")


async def test_lock_user_revokes_every_session(
    stack: Stack,
    new_client: Callable[[], aiohttp.ClientSession],
    email: str,
) -> None:
    first, second = await log_in_twice(new_client, stack, email)

    result = await run_cli(stack, "lock-user", email)
    first_status = await wait_until_logged_out(first, stack)
    second_status = await wait_until_logged_out(second, stack)
    login = await api_login(new_client(), stack, email)

    assert result.returncode == 0, result.stderr
    assert first_status == 401
    assert second_status == 401
    assert login.status == 401


async def revocation_reasons(redis: Redis, stack: Stack, user_id: str) -> list[str]:
    return [
        envelope["data"]["reason"]
        for envelope in await stream_envelopes(redis, session_stream(stack))
        if envelope["type"] == EventType.SESSION_REVOKED
        and envelope["data"]["user_id"] == user_id
    ]


async def test_delete_user_leaves_no_activity(
    stack: Stack,
    redis: Redis,
    database: AsyncDatabase[Any],
    new_client: Callable[[], aiohttp.ClientSession],
    email: str,
) -> None:
    first, second = await log_in_twice(new_client, stack, email)

    result = await run_cli(stack, "delete-user", email)
    reasons = await poll(
        lambda: revocation_reasons(redis, stack, first.user_id),
        lambda reasons: len(reasons) == 2,
        seconds=FEW_SECONDS,
    )
    unacknowledged = await wait_until_handled(
        redis, session_stream(stack), ConsumerGroup.IDENTITY.value
    )
    left = await database.activity.count_documents({"user_id": first.user_id})

    assert result.returncode == 0, result.stderr
    assert reasons == ["user_deleted", "user_deleted"]
    assert unacknowledged == 0
    assert left == 0


async def test_lock_revokes_session_created_after_lock(
    make_stack: Callable[..., Stack],
    http: aiohttp.ClientSession,
    new_client: Callable[[], aiohttp.ClientSession],
    email: str,
) -> None:
    stack = make_stack()
    client = new_client()
    signup = await api_signup(client, stack, email)
    assert signup.status == 201
    locked = await current_viewer(client, stack)
    # With the identity service down and the command unable to reach Redis,
    # nothing relays the lock event yet, so the next session is created
    # between the lock and its event, like the session of a login whose
    # password check passed just before the lock.
    stack.kill("identity")
    result = await run_cli(
        stack, "lock-user", email, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    token, _session = await create_session(http, stack, user_id=locked.user_id)

    stack.start("identity")
    status, body = await poll(
        lambda: resolve(http, stack, token),
        lambda reply: reply[0] == 404,
        seconds=FEW_SECONDS,
    )

    assert result.returncode == 0, result.stderr
    assert status == 404
    assert body["error"]["reason"] == "revoked"


async def group_names(redis: Redis, stream: str) -> set[str]:
    if not await redis.exists(stream):
        return set()
    return {info["name"].decode() for info in await redis.xinfo_groups(stream)}


async def entry_ids(redis: Redis, stream: str) -> list[str]:
    return [entry_id.decode() for entry_id, _fields in await redis.xrange(stream)]


async def test_trim_keeps_entries_until_acknowledged(
    make_stack: Callable[..., Stack], redis: Redis, http: aiohttp.ClientSession
) -> None:
    stack = make_stack()
    stream = identity_stream(stack)
    await poll(
        lambda: group_names(redis, stream),
        lambda names: SESSION_GROUP in names,
        seconds=FEW_SECONDS,
    )
    stack.kill("session")
    for number in range(3):
        status, body = await call(
            http,
            stack,
            "identity",
            "POST",
            "/internal/v1/users",
            {
                "name": "Trim Viewer",
                "email": f"trim-{number}-{uuid.uuid4().hex[:8]}@example.com",
                "password": PASSWORD,
            },
        )
        assert status == 201, body
    produced = await poll(
        lambda: entry_ids(redis, stream),
        lambda ids: len(ids) == 3,
        seconds=FEW_SECONDS,
    )

    removed_while_stopped = await trim_acknowledged(redis, stream)
    remaining = await entry_ids(redis, stream)
    stack.start("session")
    unacknowledged = await wait_until_handled(redis, stream, SESSION_GROUP)
    await trim_acknowledged(redis, stream)
    length_after = await redis.xlen(stream)

    assert len(produced) == 3
    assert removed_while_stopped == 0
    assert remaining == produced
    assert unacknowledged == 0
    assert length_after == 0


async def test_trim_keeps_pending_entries(redis: Redis) -> None:
    stream = f"trim-{uuid.uuid4().hex}"
    ids = [(await redis.xadd(stream, {"n": str(n)})).decode() for n in range(4)]
    await redis.xgroup_create(stream, "fast", id="0")
    await redis.xgroup_create(stream, "slow", id="0")
    await redis.xreadgroup("fast", "reader", {stream: ">"})
    await redis.xack(stream, "fast", *ids)
    # The slow group read three entries and acknowledged only the first.
    await redis.xreadgroup("slow", "reader", {stream: ">"}, count=3)
    await redis.xack(stream, "slow", ids[0])

    removed = await trim_acknowledged(redis, stream)
    remaining = await entry_ids(redis, stream)
    await redis.delete(stream)

    assert removed == 1
    assert remaining == ids[1:]


class ProducerInTheGap(Redis):
    """A real client after whose first empty XREAD a producer appends one entry.

    That entry lands between two reads of a follower, where a follower
    that reads from "$" would never see it.
    """

    stream = ""
    late_entry: dict[str, str] = {}
    appended = False

    async def xread(self, *args: Any, **kwargs: Any) -> Any:
        response = await super().xread(*args, **kwargs)
        if not response and not self.appended:
            self.appended = True
            await self.xadd(self.stream, self.late_entry)
        return response


async def test_follower_sees_entry_added_between_reads(redis_url: str) -> None:
    stream = f"follow-{uuid.uuid4().hex}"
    old = new_event(EventType.SESSION_CREATED, {"user_id": "u", "session_id": "old"})
    late = new_event(EventType.SESSION_CREATED, {"user_id": "u", "session_id": "late"})
    client = ProducerInTheGap.from_url(redis_url)
    client.stream = stream
    client.late_entry = {ENVELOPE_FIELD: late.to_json()}
    await client.xadd(stream, {ENVELOPE_FIELD: old.to_json()})
    received: list[str] = []

    async def collect(envelope: Envelope) -> None:
        received.append(envelope.id)

    async def received_so_far() -> list[str]:
        return list(received)

    follower = StreamFollower(client, stream=stream, handler=collect, block=0.05)
    task = asyncio.create_task(follower.run())
    try:
        await poll(received_so_far, lambda ids: bool(ids), seconds=3.0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.delete(stream)
        await client.aclose()

    assert received == [late.id]
