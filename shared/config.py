"""Typed configuration, read once at start-up from one TOML file.

Path: $TAGPIPE_CONFIG, else ./tagpipe.toml if present, else built-in defaults (a dry-run `log`
destination, so a new user sees events flow before entering any credentials).
Secrets never live in the file: a destination setting ending in `_env` names the environment
variable that holds the secret (e.g. access_token_env = "META_ACCESS_TOKEN").
Every error names the file, the key and the fix.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ConfigError

CONFIG_ENV = "TAGPIPE_CONFIG"
DEFAULT_FILE = "tagpipe.toml"

# The consent purposes a destination needs by default (Google consent mode v2 names).
# Meta/TikTok/Ads use the data for advertising: ad_storage (cookies/ids) and ad_user_data (sending
# user data to Google/ads platforms); GA4 needs analytics_storage. Override per destination.
DEFAULT_CONSENT: dict[str, list[str]] = {
    "meta": ["ad_storage", "ad_user_data"],
    "tiktok": ["ad_storage", "ad_user_data"],
    "google_ads": ["ad_storage", "ad_user_data"],
    "ga4": ["analytics_storage"],
    "webhook": [],
    "log": [],
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    max_body_bytes: int = Field(256_000, ge=1_000, description="larger bodies get 413")
    trust_forwarded_for: bool = Field(True, description="take the client IP from X-Forwarded-For")
    cors_origins: list[str] = Field(default_factory=list, description="[] allows any origin")
    debug_header: str = "x-tagpipe-debug"
    debug_param: str = "tp_debug"


class PathsConfig(_Section):
    gtag: str = "/g/collect"
    mp: str = "/mp/collect"
    events: str = "/events"
    health: str = "/healthz"


class StorageConfig(_Section):
    dir: str = ".tagpipe"


class DeliveryConfig(_Section):
    max_attempts: int = Field(10, ge=1, le=100, description="then the event is dead-lettered")
    min_backoff: float = Field(1.0, gt=0)
    max_backoff: float = Field(600.0, gt=0)
    pull_batch: int = Field(1000, ge=1, le=5000, description="deliveries read per worker cycle")
    linger_ms: int = Field(50, ge=0, le=5000, description="wait this long to fill a batch")
    connect_timeout: float = Field(2.0, gt=0)


class ConsentConfig(_Section):
    default: Literal["granted", "denied"] = Field(
        "granted", description="what an absent consent signal means"
    )


class PrivacyConfig(_Section):
    store_raw_pii: bool = Field(False, description="keep raw email/phone/IP in stored events and failures")


@dataclass
class DestinationEntry:
    id: str
    type: str
    enabled: bool
    consent: list[str]
    settings: Any  # the destination's own Settings model
    secrets: dict[str, str] = field(default_factory=dict)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    server: ServerConfig = Field(default_factory=ServerConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    consent: ConsentConfig = Field(default_factory=ConsentConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    destinations: dict[str, Any] = Field(default_factory=dict)  # raw tables, see load_destinations
    source: str = "<defaults>"

    def destination_entries(self) -> dict[str, DestinationEntry]:
        return load_destinations(self.destinations, self.source)


def _key(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def _raise_validation(exc: ValidationError, prefix: str, source: str) -> None:
    err = exc.errors()[0]
    key = ".".join(filter(None, [prefix, _key(err["loc"])]))
    if err["type"] == "extra_forbidden":
        raise ConfigError(key, "unknown key", "remove it or check its spelling in the README config table", source)
    if err["type"] == "missing":
        raise ConfigError(key, "required key is missing", "add it", source)
    raise ConfigError(key, err["msg"], "", source)


def load_destinations(tables: dict[str, Any], source: str) -> dict[str, DestinationEntry]:
    from shared.destinations import REGISTRY, destination_class

    entries: dict[str, DestinationEntry] = {}
    for dest_id, table in tables.items():
        prefix = f"destinations.{dest_id}"
        if not isinstance(table, dict):
            raise ConfigError(prefix, "must be a table", f"write it as [destinations.{dest_id}]", source)
        table = dict(table)
        type_ = table.pop("type", None)
        if type_ is None:
            raise ConfigError(f"{prefix}.type", "required key is missing", f"one of: {', '.join(REGISTRY)}", source)
        if type_ not in REGISTRY:
            raise ConfigError(f"{prefix}.type", f"unknown destination type {type_!r}", f"one of: {', '.join(REGISTRY)}", source)
        enabled = table.pop("enabled", True)
        consent = table.pop("consent", DEFAULT_CONSENT.get(type_, []))
        if not isinstance(enabled, bool):
            raise ConfigError(f"{prefix}.enabled", "must be true or false", "", source)
        known = {"ad_storage", "analytics_storage", "ad_user_data", "ad_personalization"}
        if not isinstance(consent, list) or any(c not in known for c in consent):
            raise ConfigError(f"{prefix}.consent", "must be a list of consent purposes", f"use any of {sorted(known)}", source)
        cls = destination_class(type_)
        try:
            settings = cls.Settings(**table)
        except ValidationError as exc:
            _raise_validation(exc, prefix, source)
        secrets: dict[str, str] = {}
        if enabled:
            for name, value in settings.model_dump().items():
                if name.endswith("_env") and value:
                    secret = os.environ.get(value)
                    if secret:
                        secrets[name[: -len("_env")]] = secret
                    elif name not in getattr(cls, "optional_secrets", ()):
                        raise ConfigError(
                            f"{prefix}.{name}",
                            f"environment variable {value} is not set",
                            f"export {value}=... (or set {name} to another variable name, or enabled = false)",
                            source,
                        )
        entries[dest_id] = DestinationEntry(dest_id, type_, enabled, list(consent), settings, secrets)
    return entries


def load_config(path: str | os.PathLike | None = None) -> Config:
    if path is None:
        path = os.environ.get(CONFIG_ENV) or (DEFAULT_FILE if Path(DEFAULT_FILE).exists() else None)
    if path is None:
        config = Config(destinations={"dry_run": {"type": "log"}})
    else:
        source = str(path)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(CONFIG_ENV, f"config file {source} not found", "fix the path or unset the variable") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("<syntax>", str(exc), "fix the TOML syntax at that line", source) from None
        try:
            config = Config(**data, source=source)
        except ValidationError as exc:
            _raise_validation(exc, "", source)
    config.destination_entries()  # validate destinations and secrets now, not at the first event
    return config
