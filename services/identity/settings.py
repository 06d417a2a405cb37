"""Settings of the identity service, read from MFLIX_IDENTITY_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import CommonSettings


class IdentitySettings(CommonSettings):
    model_config = SettingsConfigDict(
        env_prefix="MFLIX_IDENTITY_", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8081, ge=1, le=65535)
    bcrypt_cost: int = Field(12, ge=4, le=16)
    # Number of threads hashing at once; 0 means one per CPU core.
    hash_workers: int = Field(0, ge=0, le=64)
    # Hashes allowed to wait for a thread before new ones get 503; 0 means
    # about four seconds of hashing work, measured at start.
    max_queued_hashes: int = Field(0, ge=0)
    password_min_length: int = Field(8, ge=8, le=64)
    # Seconds a pending event waits before another consumer claims it.
    claim_idle: float = Field(30.0, gt=0)
