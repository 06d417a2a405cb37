"""Settings of the session service, read from MFLIX_SESSION_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import CommonSettings


class SessionSettings(CommonSettings):
    model_config = SettingsConfigDict(
        env_prefix="MFLIX_SESSION_", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8082, ge=1, le=65535)
    # Seconds without use after which a session ends; each use extends it.
    idle_timeout: int = Field(24 * 3600, ge=1)
    # Seconds after creation after which a session ends, however active.
    absolute_timeout: int = Field(14 * 24 * 3600, ge=1)
    # Seconds between writes of last-seen time while a session is only read.
    touch_interval: int = Field(60, ge=0)
    # Seconds between sweeps of expired sessions on servers without TTL indexes.
    sweep_interval: float = Field(60.0, gt=0)
    # Largest JSON-encoded session data, in bytes.
    max_data_bytes: int = Field(4096, ge=256, le=1_000_000)
    # Seconds a pending event waits before another consumer claims it.
    claim_idle: float = Field(30.0, gt=0)
