"""The case-insensitive, Unicode-aware email key."""

from __future__ import annotations

import pytest

from services.common.emails import InvalidEmail, email_key


def test_key_ignores_case() -> None:
    assert email_key("Ada.Viewer@Example.COM") == email_key("ada.viewer@example.com")


def test_key_folds_unicode_case() -> None:
    assert email_key("ÉLODIE@example.com") == email_key("élodie@example.com")


def test_key_merges_compatibility_forms() -> None:
    assert email_key("ｊｏｅ@example.com") == email_key("joe@example.com")


@pytest.mark.parametrize(
    "address",
    ["", "no-at-sign", "a@", "@example.com", "a b@example.com", "a@" + "x" * 260],
)
def test_key_rejects_invalid_address(address: str) -> None:
    with pytest.raises(InvalidEmail):
        email_key(address)
