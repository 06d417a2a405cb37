"""Settings shared by every service, read once from the environment."""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development defaults. Production mode refuses to start while any secret
# still has one of these values.
DEV_SERVICE_TOKEN = "dev-service-token-change-me"
DEV_SECRET_KEY = "dev-secret-key-change-me-dev-secret-key"


class Mode(enum.StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def read_secret_file(path: str | None) -> str | None:
    """Return the stripped content of a secret file, or None without a path."""
    if not path:
        return None
    return Path(path).read_text(encoding="utf-8").strip()


class CommonSettings(BaseSettings):
    """Connection and security settings that all three services read."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    mode: Mode = Field(Mode.DEVELOPMENT, validation_alias=AliasChoices("MFLIX_MODE"))
    mongodb_url: str = Field(
        "mongodb://127.0.0.1:27017/mflix", validation_alias=AliasChoices("MONGODB_URL")
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL")
    )
    service_token: SecretStr = Field(
        SecretStr(DEV_SERVICE_TOKEN),
        validation_alias=AliasChoices("MFLIX_SERVICE_TOKEN"),
    )
    service_token_file: str | None = Field(
        None, validation_alias=AliasChoices("MFLIX_SERVICE_TOKEN_FILE")
    )
    log_level: str = Field("INFO", validation_alias=AliasChoices("MFLIX_LOG_LEVEL"))
    stream_prefix: str = Field(
        "mflix", validation_alias=AliasChoices("MFLIX_STREAM_PREFIX")
    )

    @model_validator(mode="after")
    def _load_secret_files(self) -> CommonSettings:
        token = read_secret_file(self.service_token_file)
        if token is not None:
            object.__setattr__(self, "service_token", SecretStr(token))
        return self

    @model_validator(mode="after")
    def _reject_default_secrets(self) -> CommonSettings:
        if self.mode is Mode.PRODUCTION:
            reject_weak_secret(
                "MFLIX_SERVICE_TOKEN", self.service_token, DEV_SERVICE_TOKEN
            )
        return self


def reject_weak_secret(name: str, value: SecretStr, default: str) -> None:
    """Raise ValueError when a production secret is empty, default or short."""
    secret = value.get_secret_value()
    if not secret or secret == default:
        raise ValueError(f"{name} must be set to a non-default value in production")
    if len(secret) < 32:
        raise ValueError(f"{name} must be at least 32 characters in production")
