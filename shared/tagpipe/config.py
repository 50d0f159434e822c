"""Typed configuration, read once at start-up from one TOML file.

Path: $TAGPIPE_CONFIG, else ./tagpipe.toml if present, else built-in defaults (a dry-run `log`
destination, so a new user sees events flow before entering any credentials).
Secrets never live in the file: a destination setting ending in `_env` names the environment
variable that holds the secret (e.g. access_token_env = "META_ACCESS_TOKEN").
Every error names the file (and line, when the key can be found in the text), the key and the fix.

[variables], [triggers] and [tags] (GTM's model, see shared/tagpipe/tagging and docs/tags.md) are compiled and
checked at load too: Config.tagging() is the compiled form transform uses.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from tagpipe.bots import BotConfig
from tagpipe.consent import ConsentConfig
from tagpipe.errors import ConfigError
from tagpipe.identity import IdentityConfig
from tagpipe.monitoring.config import MonitoringConfig
from tagpipe.privacy import PrivacyConfig
from tagpipe.settings import Settings, secret

CONFIG_ENV = "TAGPIPE_CONFIG"
DEFAULT_FILE = "tagpipe.toml"

# The consent purposes a destination needs by default (Google consent mode v2 names).
# Meta/TikTok/Ads use the data for advertising: ad_storage (cookies/ids) and ad_user_data (sending
# user data to Google/ads platforms); GA4 needs analytics_storage. Override per destination.
DEFAULT_CONSENT: dict[str, list[str]] = {
    "meta": ["ad_storage", "ad_user_data"],
    "tiktok": ["ad_storage", "ad_user_data"],
    "google_ads": ["ad_storage", "ad_user_data"],
    "data_manager": ["ad_storage", "ad_user_data"],
    "pinterest": ["ad_storage", "ad_user_data"],
    "snapchat": ["ad_storage", "ad_user_data"],
    "reddit": ["ad_storage", "ad_user_data"],
    "linkedin": ["ad_storage", "ad_user_data"],
    "microsoft_ads": ["ad_storage", "ad_user_data"],
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
    trusted_proxies: int | None = Field(
        None, ge=0, le=10, description="proxies in front of collect that append to X-Forwarded-For; the client IP is "
        "the entry the outermost of them appended (rightmost-N), never a value the client wrote. 0 = forwarded "
        "headers are ignored (the socket's peer). Unset: 1 on Cloud Run / Cloud Functions (K_SERVICE is set; "
        "Google's front end appends the caller), 0 elsewhere. Behind an external Application Load Balancer, which "
        "appends \"<client>,<lb>\", or your own reverse proxy in front of the function: 2 (docs/first-party-serving.md)",
    )
    forwarded_host: bool = Field(
        False, description="cookies' host from X-Forwarded-Host (its rightmost entry, the one your first-party proxy "
        "set) instead of Host; needs trusted_proxies >= 1. A value that is not a host name is ignored",
    )
    cors_origins: list[str] = Field(default_factory=list, description="[] allows any origin")
    browser_paths: list[str] | None = Field(
        None, description="collect paths that take browser hits (no key, held to cors_origins, identity cookies); "
        "default: paths.gtag, plus paths.events unless api_keys_env/hmac_secret_env is set. Every other path "
        "(always paths.mp) is server-to-server and needs the key or signature on every request",
    )
    debug_header: str = "x-tagpipe-debug"
    debug_param: str = "tp_debug"
    api_keys_env: str | None = Field(None, description="env var with API keys (comma-separated) server-to-server calls must present")
    hmac_secret_env: str | None = Field(None, description="env var with a secret for X-Tagpipe-Signature (HMAC-SHA256)")
    rate_limit_per_ip: float = Field(100.0, ge=0, description="requests/s per client IP; 0 turns it off")
    header_timeout: float = Field(10.0, gt=0, le=300, description="seconds a client has to send its request headers "
                                  "(local stack; slower connections get 408 and are closed)")
    body_timeout: float = Field(30.0, gt=0, le=600, description="seconds a client has to send its body (408 after)")
    max_connections: int = Field(1000, ge=10, le=100_000, description="open connections the local stack takes; "
                                 "beyond it uvicorn answers 503")
    rate_limit_burst: int = Field(1000, ge=1, description="requests an IP may send at once")
    workers: Literal["threads", "process"] = Field(
        "threads", description='local stack: transform/deliver/archive as threads beside collect, or "process": in a '
        "child process of their own, so a backlog being drained does not slow collect down (one more core)",
    )

    @model_validator(mode="after")
    def _resolve_proxies(self) -> ServerConfig:
        if self.trusted_proxies is None:  # K_SERVICE: set by Cloud Run (and Cloud Functions gen2) itself
            self.trusted_proxies = 1 if Settings.load().on_cloud_run else 0
        if self.forwarded_host and not self.trusted_proxies:
            raise ValueError("forwarded_host needs trusted_proxies >= 1 (else any client chooses the cookies' host)")
        return self


class PathsConfig(_Section):
    gtag: str = "/g/collect"
    mp: str = "/mp/collect"
    events: str = "/events"
    health: str = "/healthz"
    sitetag: str = Field("/assets/app.js", description='the first-party site tag (docs/site-tag.md); "" = off')
    shopify: str = Field("/webhooks/shopify", description="Shopify order webhooks (docs/webhooks.md)")
    woocommerce: str = Field("/webhooks/woocommerce", description="WooCommerce order webhooks (docs/webhooks.md)")
    segment_prefix: str = Field("/v1", description="the Segment spec's endpoints: <prefix>/track, /page, /identify, "
                                "/batch ... (docs/segment.md); \"\" = off")


class ShopifyConfig(_Section):
    """`[shopify]`: Shopify's order webhooks at paths.shopify (docs/webhooks.md)."""

    secret_env: str = Field("SHOPIFY_WEBHOOK_SECRET", description="env var holding the secret Shopify signs "
                            "webhooks with: the app's client secret, or the key the shop admin's webhooks page shows")


class WooCommerceConfig(_Section):
    """`[woocommerce]`: WooCommerce's order webhooks at paths.woocommerce (docs/webhooks.md)."""

    secret_env: str = Field("WOOCOMMERCE_WEBHOOK_SECRET", description="env var holding the webhook's Secret "
                            "(WooCommerce > Settings > Advanced > Webhooks)")


class SegmentConfig(_Section):
    """`[segment]`: Segment / RudderStack SDKs at paths.segment_prefix (docs/segment.md)."""

    write_keys_env: str = Field("SEGMENT_WRITE_KEYS", description="env var holding the write keys (comma-separated) "
                                "the SDKs send; unset: every Segment call is refused (401)")


class StorageConfig(_Section):
    dir: str = ".tagpipe"


DedupScope = Literal["all", "conversions", "none"]
# dedup = "conversions" guards these (matched case-insensitively against the vendor's event name, so
# both the GA4 name and the Meta/TikTok standard names from shared/tagpipe/destinations/mappings are listed):
# the events a duplicate of costs money or skews bidding. Browse events (page_view, view_item,
# add_to_cart, ...) rely on at-least-once delivery plus the vendors' own dedup on event_id: Meta keeps
# the first of event_name + event_id within 48 h (../shared/VENDORS.md §1.5), GA4 and TikTok likewise
# dedup on the event id sent. Google Ads destinations are always guarded: every upload is a conversion.
DEFAULT_DEDUP_EVENTS: tuple[str, ...] = (
    "purchase", "refund", "generate_lead", "sign_up", "subscribe", "start_trial", "qualify_lead",
    "close_convert_lead",
    "Lead", "CompleteRegistration", "StartTrial",  # Meta (Purchase, Subscribe: as above)
    "CompletePayment", "PlaceAnOrder", "SubmitForm",  # TikTok
)


class DeliveryConfig(_Section):
    max_attempts: int = Field(10, ge=1, le=100, description="then the event is dead-lettered")
    min_backoff: float = Field(1.0, gt=0)
    max_backoff: float = Field(600.0, gt=0)
    pull_batch: int = Field(1000, ge=1, le=5000, description="deliveries read per worker cycle")
    linger_ms: int = Field(50, ge=0, le=5000, description="wait this long to fill a batch")
    connect_timeout: float = Field(2.0, gt=0)
    vendor_concurrency: int = Field(8, ge=1, le=50, description="vendor requests of one batch in flight at once")
    resend_grace: float = Field(
        30.0, ge=0, le=3600,
        description="after a request went unanswered (time-out, crash), its events wait its time-out plus this "
                    "long before they are sent again: the first copy is no longer in flight and the vendor has "
                    "had time to record it, so its event_id dedup can catch the second",
    )
    dedup: DedupScope = Field("all", description="which events get the delivered-key check and the in-flight journal")
    dedup_events: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DEDUP_EVENTS),
        description='event names (GA4 or vendor, case-insensitive) that dedup = "conversions" guards',
    )
    dedup_destinations: dict[str, DedupScope] = Field(
        default_factory=dict, description="destination id -> scope, overriding `dedup` for that destination"
    )

    def dedup_scope(self, destination: str) -> DedupScope:
        return self.dedup_destinations.get(destination, self.dedup)


@dataclass
class DestinationEntry:
    id: str
    type: str
    enabled: bool
    consent: list[str]
    settings: Any  # the destination's own Settings model
    secret_vars: dict[str, str] = field(default_factory=dict)  # secret name -> the variable holding it
    secrets: dict[str, str] = field(default_factory=dict)  # filled by Config.resolved_entries, at runtime build


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    server: ServerConfig = Field(default_factory=ServerConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    consent: ConsentConfig = Field(default_factory=ConsentConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    bots: BotConfig = Field(default_factory=BotConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    shopify: ShopifyConfig = Field(default_factory=ShopifyConfig)
    woocommerce: WooCommerceConfig = Field(default_factory=WooCommerceConfig)
    segment: SegmentConfig = Field(default_factory=SegmentConfig)
    destinations: dict[str, Any] = Field(default_factory=dict)  # raw tables, see load_destinations
    variables: dict[str, Any] = Field(default_factory=dict)  # raw tables, see tagpipe.tagging
    triggers: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)
    source: str = "<defaults>"
    _text: str = PrivateAttr("")  # the file's text, to point errors at a line
    _tagging: Any = PrivateAttr(None)
    _entries: dict[str, DestinationEntry] | None = PrivateAttr(None)

    def destination_entries(self) -> dict[str, DestinationEntry]:
        """The validated [destinations.<id>] entries, built once (without their secrets)."""
        if self._entries is None:
            self._entries = load_destinations(self.destinations, self.source, self._text)
        return self._entries

    def resolved_entries(self, environ: Mapping[str, str] | None = None) -> dict[str, DestinationEntry]:
        """The entries with their secrets read from the environment (or `environ`): done when a runtime
        is built. A required secret of an enabled destination that is unset is a ConfigError."""
        from tagpipe.destinations import destination_class

        out: dict[str, DestinationEntry] = {}
        for entry in self.destination_entries().values():
            secrets: dict[str, str] = {}
            if entry.enabled:
                optional = getattr(destination_class(entry.type), "optional_secrets", ())
                for name, var in entry.secret_vars.items():
                    if value := secret(var, environ):
                        secrets[name] = value
                    elif f"{name}_env" not in optional:
                        key = f"destinations.{entry.id}.{name}_env"
                        raise ConfigError(
                            key, f"environment variable {var} is not set",
                            f"export {var}=... (or set {name}_env to another variable name, or enabled = false)",
                            _where(self.source, self._text, key),
                        )
            out[entry.id] = replace(entry, secrets=secrets)
        return out

    def secret_variables(self) -> dict[str, str]:
        """The variables the enabled destinations read secrets from -> their setting (`access_token_env`)."""
        return {var: f"{name}_env" for e in self.destination_entries().values() if e.enabled
                for name, var in e.secret_vars.items()}

    def tagging(self):
        """The compiled [variables] / [triggers] / [tags] (tagpipe.tagging.Tagging), built once."""
        if self._tagging is None:
            from tagpipe.tagging import Source, compile_tagging

            types = {
                dest_id: table.get("type", "") if isinstance(table, dict) else ""
                for dest_id, table in self.destinations.items()
            }
            self._tagging = compile_tagging(
                self.variables, self.triggers, self.tags, types, Source(self.source, self._text),
                consent_default=self.consent.default == "granted",
            )
        return self._tagging


def _key(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def _where(source: str, text: str, key: str) -> str:
    """`file:line` when the key can be found in the file text, else the file."""
    if not text:
        return source
    from tagpipe.tagging import line_of

    line = line_of(text, key)
    return f"{source}:{line}" if line else source


def _raise_validation(exc: ValidationError, prefix: str, source: str, text: str = "") -> None:
    err = exc.errors()[0]
    key = ".".join(filter(None, [prefix, _key(err["loc"])]))
    where = _where(source, text, key)
    if err["type"] == "extra_forbidden":
        raise ConfigError(key, "unknown key", "remove it or check its spelling in the README config table", where)
    if err["type"] == "missing":
        raise ConfigError(key, "required key is missing", "add it", where)
    raise ConfigError(key, err["msg"], "", where)


def load_destinations(tables: dict[str, Any], source: str, text: str = "") -> dict[str, DestinationEntry]:
    from tagpipe.destinations import REGISTRY, destination_class

    def error(key: str, message: str, fix: str) -> ConfigError:
        return ConfigError(key, message, fix, _where(source, text, key))

    entries: dict[str, DestinationEntry] = {}
    for dest_id, table in tables.items():
        prefix = f"destinations.{dest_id}"
        if not isinstance(table, dict):
            raise error(prefix, "must be a table", f"write it as [destinations.{dest_id}]")
        table = dict(table)
        type_ = table.pop("type", None)
        if type_ is None:
            raise error(f"{prefix}.type", "required key is missing", f"one of: {', '.join(REGISTRY)}")
        if type_ not in REGISTRY:
            raise error(f"{prefix}.type", f"unknown destination type {type_!r}", f"one of: {', '.join(REGISTRY)}")
        enabled = table.pop("enabled", True)
        consent = table.pop("consent", DEFAULT_CONSENT.get(type_, []))
        if not isinstance(enabled, bool):
            raise error(f"{prefix}.enabled", "must be true or false", "")
        known = {"ad_storage", "analytics_storage", "ad_user_data", "ad_personalization"}
        if not isinstance(consent, list) or any(c not in known for c in consent):
            raise error(f"{prefix}.consent", "must be a list of consent purposes", f"use any of {sorted(known)}")
        cls = destination_class(type_)
        try:
            settings = cls.Settings(**table)
        except ValidationError as exc:
            _raise_validation(exc, prefix, source, text)
        secret_vars = {name[: -len("_env")]: value for name, value in settings.model_dump().items()
                       if name.endswith("_env") and value}
        entries[dest_id] = DestinationEntry(dest_id, type_, enabled, list(consent), settings, secret_vars)
    return entries


def config_path(path: str | os.PathLike | None = None) -> str | os.PathLike | None:
    """The file load_config reads: `path`, else $TAGPIPE_CONFIG, else ./tagpipe.toml if present, else None."""
    if path is None:
        path = Settings.load().config or (DEFAULT_FILE if Path(DEFAULT_FILE).exists() else None)
    return path


def load_config(path: str | os.PathLike | None = None) -> Config:
    path = config_path(path)
    if path is None:
        config = Config(destinations={"dry_run": {"type": "log"}})
    else:
        source = str(path)
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
            data = tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(CONFIG_ENV, f"config file {source} not found", "fix the path or unset the variable") from None
        except UnicodeDecodeError:
            raise ConfigError("<file>", "the file is not UTF-8 text", "save it as UTF-8", source) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("<syntax>", str(exc), "fix the TOML syntax at that line", source) from None
        try:
            config = Config(**data, source=source)
        except ValidationError as exc:
            _raise_validation(exc, "", source, text)
        config._text = text
    config.destination_entries()  # validate destinations now, not at the first event (secrets: at runtime build)
    config.tagging()  # compile and check variables, triggers and tags now too
    return config
