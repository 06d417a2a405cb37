"""Production mode refuses default and weak secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.gateway.settings import GatewaySettings
from services.identity.settings import IdentitySettings
from tests.support.processes import ROOT

STRONG = "s" * 40


def test_production_rejects_default_service_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MFLIX_MODE", "production")

    with pytest.raises(ValidationError, match="MFLIX_SERVICE_TOKEN"):
        IdentitySettings()


def test_production_rejects_short_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFLIX_MODE", "production")
    monkeypatch.setenv("MFLIX_SERVICE_TOKEN", STRONG)
    monkeypatch.setenv("MFLIX_GATEWAY_SECRET_KEY", "short")

    with pytest.raises(ValidationError, match="MFLIX_GATEWAY_SECRET_KEY"):
        GatewaySettings()


def test_production_reads_secrets_from_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(STRONG + "\n")
    key_file = tmp_path / "key"
    key_file.write_text("k" * 40)
    monkeypatch.setenv("MFLIX_MODE", "production")
    monkeypatch.setenv("MFLIX_SERVICE_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("MFLIX_GATEWAY_SECRET_KEY_FILE", str(key_file))

    settings = GatewaySettings()

    assert settings.service_token.get_secret_value() == STRONG
    assert settings.secret_key.get_secret_value() == "k" * 40


def test_service_exits_2_on_invalid_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.session"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "MFLIX_SESSION_IDLE_TIMEOUT": "soon"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "invalid setting idle_timeout" in result.stderr


def test_production_service_refuses_to_start_with_defaults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "MFLIX_MODE": "production"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "MFLIX_SERVICE_TOKEN must be set to a non-default value" in result.stderr
