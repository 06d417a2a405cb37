"""Password policy and the robustness of hash checks."""

from __future__ import annotations

import asyncio

import bcrypt
import pytest

from services.common.errors import ServiceUnavailable
from services.identity.passwords import (
    MAX_PASSWORD_BYTES,
    PasswordHasher,
    WeakPassword,
    check_password_policy,
    hash_cost,
    normalize_password,
)


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(cost=4, workers=1)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "Must be at least 8 characters."),
        ("password", "This password is too common. Choose another one."),
        ("PASSWORD1", "This password is too common. Choose another one."),
        ("é" * 37, f"Must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8."),
    ],
)
def test_policy_rejects_weak_password(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword) as raised:
        check_password_policy(password, min_length=8)

    assert str(raised.value) == reason


def test_policy_accepts_long_plain_passphrase() -> None:
    check_password_policy("popcorn at midnight", min_length=8)


def test_normalization_merges_compatibility_forms() -> None:
    assert normalize_password("ｐａｓｓ") == normalize_password("pass")


async def test_hash_uses_configured_cost(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("popcorn at midnight")

    assert hashed.startswith("$2b$04$")
    assert await hasher.verify("popcorn at midnight", hashed) is True
    assert await hasher.verify("popcorn at noon", hashed) is False


@pytest.mark.parametrize("prefix", ["$2a$", "$2y$"])
async def test_verify_accepts_other_bcrypt_prefixes(
    hasher: PasswordHasher, prefix: str
) -> None:
    hashed = bcrypt.hashpw(b"popcorn at midnight", bcrypt.gensalt(4)).decode()

    assert await hasher.verify("popcorn at midnight", prefix + hashed[4:]) is True


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "plaintext",
        "$2b$04$tooshort",
        "$2b$31$" + "a" * 53,
        "$2b$03$" + "a" * 53,
        "$2b$04$" + "!" * 53,
        "$2b$04$" + "a" * 53,
    ],
)
async def test_verify_fails_cleanly_on_unusable_hash(
    hasher: PasswordHasher, stored: str | None
) -> None:
    assert await hasher.verify("popcorn at midnight", stored) is False


async def test_verify_rejects_password_over_byte_limit(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("x" * 72)

    assert await hasher.verify("x" * 73, hashed) is False


def test_hash_cost_reads_cost() -> None:
    assert hash_cost("$2b$12$" + "a" * 53) == 12
    assert hash_cost("nope") is None


def test_needs_rehash_only_below_configured_cost(hasher: PasswordHasher) -> None:
    stronger = PasswordHasher(cost=5, workers=1)

    assert stronger.needs_rehash("$2b$04$" + "a" * 53) is True
    assert hasher.needs_rehash("$2b$04$" + "a" * 53) is False
    assert hasher.needs_rehash("$2b$12$" + "a" * 53) is False


async def test_hashing_refuses_work_beyond_queue_limit() -> None:
    busy = PasswordHasher(cost=10, workers=1, max_queued=2)

    results = await asyncio.gather(
        *[busy.verify("popcorn at midnight", None) for _ in range(6)],
        return_exceptions=True,
    )
    busy.close()

    refused = [r for r in results if isinstance(r, ServiceUnavailable)]
    assert len(refused) == 4
    assert all(r is False for r in results if not isinstance(r, ServiceUnavailable))
    assert refused[0].headers["Retry-After"] == "1"


async def test_hash_that_waited_too_long_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.identity.passwords.MAX_WAIT_SECONDS", 0.05)
    busy = PasswordHasher(cost=12, workers=1, max_queued=10)

    results = await asyncio.gather(
        *[busy.verify("popcorn at midnight", None) for _ in range(3)],
        return_exceptions=True,
    )
    busy.close()

    assert results[0] is False
    assert all(isinstance(result, ServiceUnavailable) for result in results[1:])
