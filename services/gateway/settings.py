"""Settings of the gateway, read from MFLIX_GATEWAY_* variables."""

from __future__ import annotations

import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.settings import (
    DEV_SECRET_KEY,
    CommonSettings,
    Mode,
    read_secret_file,
    reject_weak_secret,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class GatewaySettings(CommonSettings):
    model_config = SettingsConfigDict(
        env_prefix="MFLIX_GATEWAY_", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Origin users reach the gateway at; an https URL turns on Secure
    # cookies with the __Host- prefix and HSTS.
    public_url: str = "http://127.0.0.1:8080"
    identity_url: str = "http://127.0.0.1:8081"
    session_url: str = "http://127.0.0.1:8082"
    # Key for CSRF tokens; at least 32 characters in production.
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    secret_key_file: str | None = None
    # Seconds a resolved session is served from memory before it is
    # checked again; revocations reach every process sooner via events.
    cache_ttl: float = Field(1.0, ge=0, le=1.0)
    cache_size: int = Field(100_000, ge=0)
    # Failed logins are counted over this many seconds.
    login_window: int = Field(900, ge=1)
    # Failures per account, and per client address, before locks begin.
    login_account_failures: int = Field(5, ge=1)
    login_address_failures: int = Field(20, ge=1)
    # Maximum lock, in seconds. Locks double from 1 s up to it.
    login_max_lock: float = Field(300.0, ge=1)
    # Signups allowed per client address per hour.
    signups_per_address: int = Field(10, ge=1)
    # Proxies whose X-Forwarded-For is trusted, as addresses or networks.
    trusted_proxies: Annotated[list[Network], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [
                ipaddress.ip_network(part.strip())
                for part in value.split(",")
                if part.strip()
            ]
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(
                "must be an http or https URL such as https://mflix.example"
            )
        return f"{parts.scheme}://{parts.netloc}"

    @model_validator(mode="after")
    def _secret_key_rules(self) -> GatewaySettings:
        key = read_secret_file(self.secret_key_file)
        if key is not None:
            object.__setattr__(self, "secret_key", SecretStr(key))
        if self.mode is Mode.PRODUCTION:
            reject_weak_secret(
                "MFLIX_GATEWAY_SECRET_KEY", self.secret_key, DEV_SECRET_KEY
            )
        return self

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")
