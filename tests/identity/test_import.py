"""The import-users command against the real database and login."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.support.flows import api_login, api_signup
from tests.support.processes import ROOT, Stack, with_database

EXPORT = Path(__file__).parents[1] / "data" / "mflix-users.jsonl"


def run_import(stack: Stack, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "import-users", str(path)],
        cwd=ROOT,
        env=stack.environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_of_export_reports_counts_and_is_idempotent(stack: Stack) -> None:
    first = run_import(stack, EXPORT)
    second = run_import(stack, EXPORT)

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        "read 185 records: 183 usable, 2 locked, 0 invalid; 185 new, 0 already present"
    )
    assert second.stdout.strip() == (
        "read 185 records: 183 usable, 2 locked, 0 invalid; 0 new, 185 already present"
    )


async def test_imported_record_without_hash_cannot_log_in(
    stack: Stack, http: aiohttp.ClientSession, database: AsyncDatabase
) -> None:
    run_import(stack, EXPORT)

    response = await api_login(http, stack, "mistoffelees@cats.example", "somehashedpw")
    user = await database.users.find_one({"email": "mistoffelees@cats.example"})
    credentials = await database.credentials.find(
        {"user_id": str(user["_id"])}
    ).to_list()

    assert response.status == 401
    assert [c["password_hash"] for c in credentials] == [None]
    assert credentials[0]["locked_at"] is not None


async def test_imported_user_wrong_password_answers_401(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    run_import(stack, EXPORT)

    response = await api_login(
        http, stack, "oskar_sorensen@westeros.example", "wrong!!!"
    )

    assert response.status == 401


async def test_no_plaintext_password_is_stored(
    stack: Stack, database: AsyncDatabase
) -> None:
    run_import(stack, EXPORT)

    dump = json.dumps(
        [doc async for doc in database.credentials.find({})]
        + [doc async for doc in database.users.find({})],
        default=str,
    )

    assert "somehashedpw" not in dump
    assert '"foobar"' not in dump


async def test_imported_hash_variants_log_in(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    hashed = bcrypt.hashpw(b"popcorn at midnight", bcrypt.gensalt(4)).decode()
    export = tmp_path / "users.json"
    export.write_text(
        json.dumps(
            [
                {
                    "_id": {"$oid": "65a000000000000000000a01"},
                    "name": "Old Node User",
                    "email": "Node.User@Example.com",
                    "password": "$2a$" + hashed[4:],
                },
                {
                    "name": "PHP User",
                    "email": "php@example.com",
                    "password": "$2y$" + hashed[4:],
                },
            ]
        )
    )

    result = run_import(stack, export)
    node = await api_login(http, stack, "node.user@example.com", "popcorn at midnight")
    php = await api_login(http, stack, "php@example.com", "popcorn at midnight")

    assert result.stdout.strip() == (
        "read 2 records: 2 usable, 0 locked, 0 invalid; 2 new, 0 already present"
    )
    assert node.status == 200
    assert php.status == 200


def test_import_reports_invalid_records(stack: Stack, tmp_path: Path) -> None:
    export = tmp_path / "users.jsonl"
    export.write_text(
        '{"name": "No Email", "password": "x"}\n'
        "not json\n"
        '{"name": "Bad", "email": "not-an-address", "password": "x"}\n'
        "[1, 2]\n"
    )

    result = run_import(stack, export)

    assert result.returncode == 0
    assert result.stdout.strip() == (
        "read 4 records: 0 usable, 0 locked, 4 invalid; 0 new, 0 already present"
    )


def test_import_of_missing_file_exits_2(stack: Stack, tmp_path: Path) -> None:
    result = run_import(stack, tmp_path / "absent.jsonl")

    assert result.returncode == 2
    assert "no such file" in result.stderr


async def test_login_upgrades_outdated_hash_cost(
    make_stack: Callable[..., Stack], mongodb_url: str, tmp_path: Path
) -> None:
    stack = make_stack(MFLIX_IDENTITY_BCRYPT_COST="5")
    hashed = bcrypt.hashpw(b"popcorn at midnight", bcrypt.gensalt(4)).decode()
    export = tmp_path / "users.jsonl"
    export.write_text(
        json.dumps({"name": "Old", "email": "old@example.com", "password": hashed})
        + "\n"
    )
    run_import(stack, export)

    async with aiohttp.ClientSession() as client:
        first = await api_login(client, stack, "old@example.com", "popcorn at midnight")
        second = await api_login(
            client, stack, "old@example.com", "popcorn at midnight"
        )
    client_db: AsyncMongoClient = AsyncMongoClient(
        with_database(mongodb_url, stack.database)
    )
    credentials = await client_db.get_default_database().credentials.find({}).to_list()
    await client_db.close()

    assert first.status == 200
    assert second.status == 200
    assert sorted(c["password_hash"][:7] for c in credentials) == ["$2b$04$", "$2b$05$"]


async def test_signup_stores_cost_12_hash_by_default(
    make_stack: Callable[..., Stack], mongodb_url: str, email: str
) -> None:
    stack = make_stack(MFLIX_IDENTITY_BCRYPT_COST="12")

    async with aiohttp.ClientSession() as client:
        response = await api_signup(client, stack, email)
    client_db: AsyncMongoClient = AsyncMongoClient(
        with_database(mongodb_url, stack.database)
    )
    credentials = await client_db.get_default_database().credentials.find({}).to_list()
    await client_db.close()

    assert response.status == 201
    assert [c["password_hash"][:7] for c in credentials] == ["$2b$12$"]


@pytest.mark.parametrize("stored", ["", "garbage", "$2b$31$" + "a" * 53])
async def test_unusable_stored_hash_answers_401_and_logs(
    make_stack: Callable[..., Stack], mongodb_url: str, email: str, stored: str
) -> None:
    stack = make_stack()
    async with aiohttp.ClientSession() as client:
        await api_signup(client, stack, email)
    client_db: AsyncMongoClient = AsyncMongoClient(
        with_database(mongodb_url, stack.database)
    )
    await client_db.get_default_database().credentials.update_many(
        {}, {"$set": {"password_hash": stored}}
    )
    await client_db.close()

    async with aiohttp.ClientSession() as client:
        response = await api_login(client, stack, email)

    assert response.status == 401
    assert "stored password hash is invalid, login rejected" in stack.logs()
