"""The ``mflix-auth`` operator command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pymongo.errors import PyMongoError

from services.common.logs import configure_logging
from services.common.mongo import create_client, database
from services.common.runner import load_settings
from services.identity.importer import ImportFileError, import_users
from services.identity.settings import IdentitySettings
from services.identity.store import UserStore


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mflix-auth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    importer = commands.add_parser(
        "import-users",
        help="import a MongoDB users export (JSON Lines or JSON array) "
        "into the database of MONGODB_URL",
    )
    importer.add_argument("file", type=Path, help="the export file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging("cli", "WARNING")
    if args.command == "import-users":
        if not args.file.is_file():
            print(f"mflix-auth: {args.file}: no such file", file=sys.stderr)
            return 2
        try:
            return asyncio.run(_import_users(args.file))
        except ImportFileError as error:
            print(f"mflix-auth: {error}", file=sys.stderr)
            return 2
        except PyMongoError as error:
            print(
                f"mflix-auth: MongoDB is unreachable or failed: {error}. "
                "Start the stack with `make run` or set MONGODB_URL.",
                file=sys.stderr,
            )
            return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
