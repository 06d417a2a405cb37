"""The ``next`` parameter never leaves the site."""

from __future__ import annotations

import pytest

from services.gateway.redirects import safe_next


@pytest.mark.parametrize(
    "candidate",
    [
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "/%252F%252Fevil.example",
        "/%5Cevil.example",
        "/\tevil",
        "/%0d%0aSet-Cookie:x=1",
        "evil.example",
        "",
        None,
        ["/"],
        "/" + "a" * 3000,
    ],
)
def test_safe_next_rejects_offsite_target(candidate: object) -> None:
    assert safe_next(candidate) == "/"


@pytest.mark.parametrize(
    "candidate", ["/", "/account", "/movies?id=12&sort=year", "/a/b#c", "/caf%C3%A9"]
)
def test_safe_next_keeps_same_site_path(candidate: str) -> None:
    assert safe_next(candidate) == candidate


@pytest.mark.parametrize(
    "candidate", ["/.//evil.example", "/a/../..//evil", "/%2e%2e/x"]
)
def test_safe_next_rejects_dot_segments(candidate: str) -> None:
    assert safe_next(candidate) == "/"
