"""Operator commands: import users, lock or delete a user, handle dead letters."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from services.common.bus import create_redis
from services.common.deadletters import list_dead_letters, replay_dead_letters
from services.common.emails import email_key
from services.common.events import (
    ConsumerGroup,
    Producer,
    dead_letter_stream_name,
    stream_name,
)
from services.common.logs import configure_logging
from services.common.mongo import create_client, database
from services.common.outbox import OutboxRelay
from services.common.runner import load_settings
from services.identity.activity import Activity
from services.identity.importer import ImportFileError, import_users
from services.identity.passwords import PasswordHasher
from services.identity.settings import IdentitySettings
from services.identity.store import UserStore
from services.identity.users import Users


async def _import_users(path: Path) -> int:
    settings = load_settings(IdentitySettings)
    client = create_client(settings.mongodb_url)
    try:
        store = UserStore(database(client))
        await store.create_indexes()
        report = await import_users(store, path)
    finally:
        await client.close()
    print(report.summary())
    return 0


async def _lock_or_delete(email: str, action: str, reason: str) -> int:
    settings = load_settings(IdentitySettings)
    client = create_client(settings.mongodb_url)
    redis = create_redis(settings.redis_url)
    try:
        db = database(client)
        store = UserStore(db)
        relay = OutboxRelay(
            [store.users, store.credentials],
            redis,
            stream_name(settings.stream_prefix, Producer.IDENTITY),
        )
        store.on_outbox = relay.notify
        user = await store.find_by_email_key(email_key(email))
        if user is None:
            print(f"mflix-auth: no user with email {email}", file=sys.stderr)
            return 1
        users = Users(
            store,
            PasswordHasher(cost=4, workers=1),
            Activity(db),
            password_min_length=settings.password_min_length,
        )
        if action == "lock":
            await users.lock(str(user["_id"]), reason)
        else:
            await users.delete(str(user["_id"]))
        done = "locked" if action == "lock" else "deleted"
        print(f"{done} user {user['_id']}")
        await _publish_now(relay)
    finally:
        await redis.aclose()
        await client.close()
    return 0


async def _publish_now(relay: OutboxRelay) -> None:
    try:
        await relay.flush()
    except RedisError:
        # The event is stored with the change: the identity service's relay
        # finds it in its next scan, within a minute of Redis coming back.
        print("Redis is unreachable: the sessions will be revoked once it is back")
        return
    print("all of their sessions are being revoked")


async def _dead_letters(action: str, group: str, ids: list[str]) -> int:
    settings = load_settings(IdentitySettings)
    redis = create_redis(settings.redis_url)
    try:
        consumer_group = ConsumerGroup(group)
        if action == "list":
            letters = await list_dead_letters(
                redis, settings.stream_prefix, consumer_group
            )
            total = await redis.xlen(
                dead_letter_stream_name(settings.stream_prefix, consumer_group)
            )
            for letter in letters:
                print(
                    f"{letter.id}\t{letter.stream}\t{letter.original_id}\t{letter.error}"
                )
            print(f"{total} dead letters in group {group}, {len(letters)} shown")
        else:
            count = await replay_dead_letters(
                redis, settings.stream_prefix, consumer_group, set(ids) or None
            )
            print(f"replayed {count} dead letters of group {group}")
    finally:
        await redis.aclose()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mflix-auth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    importer = commands.add_parser(
        "import-users",
        help="import a MongoDB users export (JSON Lines or JSON array) "
        "into the database of MONGODB_URL",
    )
    importer.add_argument("file", type=Path, help="the export file")
    for action, verb in (("lock", "lock"), ("delete", "delete")):
        command = commands.add_parser(
            f"{action}-user", help=f"{verb} a user and revoke all of their sessions"
        )
        command.add_argument("email", help="the user's email address")
        if action == "lock":
            command.add_argument("--reason", default="locked by an operator")
    letters = commands.add_parser(
        "dead-letters", help="list or replay events that consumers failed to handle"
    )
    actions = letters.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="show the dead letters of a group")
    replay = actions.add_parser(
        "replay", help="append dead letters to their stream again"
    )
    replay.add_argument(
        "ids", nargs="*", help="dead-letter ids to replay (default: all)"
    )
    for action in (listing, replay):
        action.add_argument(
            "--group",
            choices=[group.value for group in ConsumerGroup],
            default=ConsumerGroup.SESSION.value,
            help="the consuming service whose dead letters to use (default: session)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging("cli", "WARNING")
    try:
        return _run(args)
    except PyMongoError as error:
        print(
            f"mflix-auth: MongoDB is unreachable or failed: {error}. "
            "Start the stack with `make run` or set MONGODB_URL.",
            file=sys.stderr,
        )
        return 1
    except RedisError as error:
        print(f"mflix-auth: Redis is unreachable or failed: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command in {"lock-user", "delete-user"}:
        action = args.command.removesuffix("-user")
        return asyncio.run(
            _lock_or_delete(args.email, action, getattr(args, "reason", ""))
        )
    if args.command == "dead-letters":
        ids = getattr(args, "ids", [])
        return asyncio.run(_dead_letters(args.action, args.group, ids))
    if args.command == "import-users":
        if not args.file.is_file():
            print(f"mflix-auth: {args.file}: no such file", file=sys.stderr)
            return 2
        try:
            return asyncio.run(_import_users(args.file))
        except ImportFileError as error:
            print(f"mflix-auth: {error}", file=sys.stderr)
            return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
