"""Every environment variable tagpipe reads, in one typed model (pydantic-settings).

tagpipe.toml says *what* to do; the environment says *where* it runs (which queue and store, the
GCP project and names Terraform gave the resources, ports, logging) and holds the secrets. The
fixed variables are the fields below, read at start-up: `Settings()` from the process environment,
`Settings.model_validate(mapping)` from a mapping (tests, `tagpipe preview`). The secrets live in
variables the config names (`access_token_env = "META_ACCESS_TOKEN"`, `api_keys_env`, ...): they
are read through `secret()` when the runtime is built, never at import and never written back.
No other module reads os.environ (tests/unit/test_settings.py checks).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tagpipe.errors import ConfigError


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, populate_by_name=False,
                                      env_ignore_empty=True, frozen=True)

    config: str | None = Field(None, validation_alias=_env("TAGPIPE_CONFIG"),
                               description="the config file (else ./tagpipe.toml, else built-in defaults)")
    transport: Literal["local", "pubsub"] = Field("local", validation_alias=_env("TAGPIPE_TRANSPORT"))
    store: Literal["sqlite", "bigquery"] = Field("sqlite", validation_alias=_env("TAGPIPE_STORE"))
    gcp_project: str = Field("", validation_alias=_env("TAGPIPE_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT"))
    topic_prefix: str = Field("tagpipe", validation_alias=_env("TAGPIPE_TOPIC_PREFIX"),
                              description="prefix of the Pub/Sub topics and subscriptions Terraform made")
    bq_dataset: str = Field("tagpipe", validation_alias=_env("TAGPIPE_BQ_DATASET"))
    firestore_database: str | None = Field(None, validation_alias=_env("TAGPIPE_FIRESTORE_DATABASE"),
                                           description="the dedup keys' database (default <prefix>-keys)")
    dedup_ttl_days: float = Field(35.0, gt=0, le=3650, validation_alias=_env("TAGPIPE_DEDUP_TTL_DAYS"))
    pubsub_batch_ms: float = Field(2.0, validation_alias=_env("TAGPIPE_PUBSUB_BATCH_MS"),
                                   description="the publisher's batch window, clamped to 0-1000 ms")
    push_linger_ms: float = Field(100.0, ge=0, le=10_000, validation_alias=_env("TAGPIPE_PUSH_LINGER_MS"),
                                  description="how long deliver's push handler gathers a batch")
    drain_seconds: float = Field(25.0, gt=0, le=3600, validation_alias=_env("TAGPIPE_DRAIN_SECONDS"),
                                 description="a drain request's budget, well under the function timeout")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", validation_alias=_env("TAGPIPE_LOG_LEVEL"))
    log_format: Literal["json", "text"] = Field("json", validation_alias=_env("TAGPIPE_LOG_FORMAT"))
    dashboard_port: int | None = Field(None, ge=1, le=65535, validation_alias=_env("TAGPIPE_DASHBOARD_PORT"),
                                       description="overrides monitoring.dashboard.port")
    port: int | None = Field(None, ge=1, le=65535, validation_alias=_env("PORT"),
                             description="collect's port (set by Cloud Run; overrides server.port)")
    k_service: str | None = Field(None, validation_alias=_env("K_SERVICE"),
                                  description="set by Cloud Run / Cloud Functions gen2 themselves")
    bigquery_emulator_host: str | None = Field(None, validation_alias=_env("BIGQUERY_EMULATOR_HOST"))
    firestore_emulator_host: str | None = Field(None, validation_alias=_env("FIRESTORE_EMULATOR_HOST"))

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        if isinstance(data, Mapping):  # as env_ignore_empty does for the process environment
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("pubsub_batch_ms")
    @classmethod
    def _clamp_batch(cls, value: float) -> float:
        return min(max(value, 0.0), 1000.0)

    @property
    def on_cloud_run(self) -> bool:
        return bool(self.k_service)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """From the process environment (or `environ`); a bad value is a ConfigError naming the variable."""
        try:
            return cls() if environ is None else cls.model_validate(dict(environ))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = cls.model_fields[str(err["loc"][0])] if err["loc"] and str(err["loc"][0]) in cls.model_fields else None
            name = _variable(field) if field else ".".join(map(str, err["loc"]))
            raise ConfigError(name, f"{err['msg']} (got {str(err.get('input'))[:40]!r})",
                              f"fix or unset {name}") from None


def _variable(field: Any) -> str:
    alias = field.validation_alias
    return alias.choices[0] if isinstance(alias, AliasChoices) else str(alias)


def variables() -> list[str]:
    """Every fixed variable Settings reads (the docs table and tests use it)."""
    return [name for f in Settings.model_fields.values() for name in f.validation_alias.choices]


def secret(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of the secret variable `name` ('' if unset): the config names it, the runtime reads it."""
    return (os.environ if environ is None else environ).get(name, "")
