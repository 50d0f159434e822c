"""The `[monitoring]` section of tagpipe.toml: dashboard, alert delivery and alert rules.

    [monitoring.dashboard]   where the dashboard listens (127.0.0.1:8081), its token's env var
    [monitoring.alerts]      how often rules run, Slack and email settings
    [[monitoring.rules]]     one table per rule; `type` picks the rule (see RULE_TYPES)

Secrets never live in the file: the Slack webhook URL, SMTP credentials and the dashboard token
are read from the environment variables named here (SLACK_WEBHOOK_URL, SMTP_USERNAME,
SMTP_PASSWORD, TAGPIPE_DASHBOARD_TOKEN by default).

Until tagpipe.config.Config has a `monitoring` field, `load_monitoring_config` reads the table from
the same TOML file itself.
"""

from __future__ import annotations

import tomllib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tagpipe.errors import ConfigError

DASHBOARD_PORT_ENV = "TAGPIPE_DASHBOARD_PORT"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- rules


class _Rule(_Section):
    id: str | None = Field(None, description="names the rule in alerts and state; default: its type")
    enabled: bool = True
    severity: Literal["critical", "warning"] = "warning"

    @property
    def rule_id(self) -> str:
        return self.id or self.type  # type: ignore[attr-defined]


class DeliveryFailureRateRule(_Rule):
    """Share of (event, destination) outcomes that ended rejected or dead-lettered, per destination."""

    type: Literal["delivery_failure_rate"] = "delivery_failure_rate"
    destination: str | None = Field(None, description="omit: every destination, each alerting on its own")
    window_minutes: float = Field(15, gt=0)
    max_failure_percent: float = Field(5.0, ge=0, le=100)
    min_events: int = Field(20, ge=1, description="fewer outcomes than this in the window: no verdict")


class DeadLetterRule(_Rule):
    """Events dead-lettered (retries exhausted or the vendor refused the whole request)."""

    type: Literal["dead_letters"] = "dead_letters"
    destination: str | None = None
    window_minutes: float = Field(15, gt=0)
    max_events: int = Field(0, ge=0, description="alert when more than this many in the window")
    severity: Literal["critical", "warning"] = "critical"


class TrafficDropRule(_Rule):
    """No hits for N minutes, or hits in the window below X% of the same window a week earlier."""

    type: Literal["traffic_drop"] = "traffic_drop"
    no_hits_minutes: float | None = Field(60, gt=0, description="None: do not check silence")
    window_minutes: float = Field(60, gt=0)
    min_percent_of_last_week: float | None = Field(50, ge=0, le=100, description="None: do not compare")
    min_baseline_hits: int = Field(100, ge=1, description="last week's window needs this many hits to compare")


class BacklogAgeRule(_Rule):
    """The oldest message waiting in a subscription (unacked, or waiting for its retry)."""

    type: Literal["backlog_age"] = "backlog_age"
    subscription: str | None = Field(None, description="transform, deliver, dead-letter-archive; omit: each")
    max_age_minutes: float = Field(15, gt=0)


class CollectErrorRateRule(_Rule):
    """Share of incoming hits that collect rejected (4xx): broken tags, wrong endpoint, bots."""

    type: Literal["collect_error_rate"] = "collect_error_rate"
    window_minutes: float = Field(15, gt=0)
    max_error_percent: float = Field(10.0, ge=0, le=100)
    min_hits: int = Field(20, ge=1)


class MatchKeysRule(_Rule):
    """Share of delivered events carrying each match key, against the baseline days before."""

    type: Literal["match_keys_drop"] = "match_keys_drop"
    destination: str | None = None
    keys: list[str] = Field(default_factory=lambda: ["em", "ph", "fbp", "fbc"])
    window_minutes: float = Field(60, gt=0)
    baseline_days: float = Field(7, gt=0)
    max_drop_percent: float = Field(25, gt=0, le=100, description="relative drop: 80% -> 60% is a 25% drop")
    min_events: int = Field(50, ge=1)
    min_baseline_percent: float = Field(5, ge=0, le=100, description="ignore keys rarer than this in the baseline")


class MatchQualityRule(_Rule):
    """tagpipe's estimated match quality (0-10, monitoring/match_quality.py) per destination and event name,
    against the baseline days before: a drop means the site stopped passing a key."""

    type: Literal["match_quality_drop"] = "match_quality_drop"
    destination: str | None = None
    window_minutes: float = Field(60, gt=0)
    baseline_days: float = Field(7, gt=0)
    max_drop_points: float = Field(1.5, gt=0, le=10, description="6.2 -> 4.5 is a drop of 1.7 points")
    min_events: int = Field(50, ge=1)


Rule = Annotated[
    DeliveryFailureRateRule | DeadLetterRule | TrafficDropRule | BacklogAgeRule | CollectErrorRateRule | MatchKeysRule
    | MatchQualityRule,
    Field(discriminator="type"),
]
RULE_TYPES = ("delivery_failure_rate", "dead_letters", "traffic_drop", "backlog_age", "collect_error_rate",
              "match_keys_drop", "match_quality_drop")


def default_rules() -> list[Any]:
    return [DeliveryFailureRateRule(), DeadLetterRule(), TrafficDropRule(), BacklogAgeRule(),
            CollectErrorRateRule(), MatchKeysRule(), MatchQualityRule()]


# --------------------------------------------------------------------------- delivery of alerts


class SlackConfig(_Section):
    enabled: bool = True
    webhook_url_env: str = Field("SLACK_WEBHOOK_URL", description="env var holding the incoming-webhook URL")
    timeout: float = Field(5.0, gt=0)


class EmailConfig(_Section):
    enabled: bool = True
    host: str | None = Field(None, description="SMTP relay; unset: no email")
    port: int = Field(587, ge=1, le=65535)
    from_: str | None = Field(None, alias="from")
    to: list[str] = Field(default_factory=list)
    starttls: Literal["auto", "require", "never"] = Field("auto", description="auto: when the server offers it")
    ssl: bool = Field(False, description="implicit TLS from the first byte (port 465)")
    ca_file: str | None = Field(None, description="CA bundle to verify the server with (private relays)")
    username_env: str = "SMTP_USERNAME"
    password_env: str = "SMTP_PASSWORD"
    timeout: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> EmailConfig:
        if self.host and (not self.to or not self.from_):
            missing = "to" if not self.to else "from"
            raise ValueError(f"email.{missing} is required when email.host is set")
        return self


class AlertsConfig(_Section):
    enabled: bool = True
    interval_seconds: float = Field(60, ge=1, description="how often the rules run")
    recovery_minutes: float = Field(5, ge=0, description="a firing rule must be fine this long to resolve")
    default_rules: bool = Field(True, description="start from the built-in rule set; [[monitoring.rules]] adds/overrides by id")
    slack: SlackConfig = Field(default_factory=SlackConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)


class DashboardConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8081, ge=0, le=65535)
    token_env: str = Field("TAGPIPE_DASHBOARD_TOKEN", description="env var with the access token (required off loopback)")
    public_url: str | None = Field(None, description="the dashboard's URL as linked from alerts")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host names the dashboard answers to besides 127.0.0.1, localhost, ::1, "
        "its own host and public_url's: any other Host (a DNS-rebinding page) gets 421",
    )

    def answers_to(self, host_header: str | None) -> bool:
        """Whether a request with this Host header is for this dashboard (not a rebound name)."""
        from urllib.parse import urlsplit

        if not host_header:
            return False
        name = urlsplit(f"//{host_header}").hostname or ""
        own = {"127.0.0.1", "localhost", "::1", *(h.lower() for h in self.allowed_hosts)}
        if self.host not in ("0.0.0.0", "::", ""):
            own.add(self.host.lower())
        if self.public_url:
            own.add((urlsplit(self.public_url).hostname or "").lower())
        return name.lower() in own

    @property
    def url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class MonitoringConfig(_Section):
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> MonitoringConfig:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.rule_id in seen:
                raise ValueError(f"two rules share the id {rule.rule_id!r}: give one an `id`")
            seen.add(rule.rule_id)
        return self

    def effective_rules(self) -> list[Any]:
        """The rules that run: the built-in set (unless disabled), overridden by id, plus the user's."""
        rules: dict[str, Any] = {}
        if self.alerts.default_rules:
            rules = {r.rule_id: r for r in default_rules()}
        for rule in self.rules:
            rules[rule.rule_id] = rule
        return [r for r in rules.values() if r.enabled]


def parse_monitoring(data: dict[str, Any] | None, source: str = "<monitoring>") -> MonitoringConfig:
    try:
        return MonitoringConfig(**(data or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(["monitoring", *(str(p) for p in err["loc"] if not str(p).endswith("]"))])
        if err["type"] == "extra_forbidden":
            raise ConfigError(key, "unknown key", "remove it or check its spelling in docs/monitoring.md", source) from None
        if err["type"] == "missing":
            raise ConfigError(key, "required key is missing", "add it", source) from None
        if err["type"] == "union_tag_invalid":
            raise ConfigError(key, "unknown rule type", f"one of: {', '.join(RULE_TYPES)}", source) from None
        raise ConfigError(key, err["msg"], "see docs/monitoring.md", source) from None


def _table_from_file(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f).get("monitoring")
    except FileNotFoundError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<syntax>", str(exc), "fix the TOML syntax at that line", path) from None


def load_monitoring_config(config: Any) -> MonitoringConfig:
    """The monitoring settings of a loaded tagpipe.config.Config (its [monitoring] table)."""
    value = getattr(config, "monitoring", None)
    if isinstance(value, MonitoringConfig):
        return value
    if isinstance(value, dict):
        return parse_monitoring(value, getattr(config, "source", "<config>"))
    return MonitoringConfig()


def dashboard_port(cfg: MonitoringConfig) -> int:
    """The dashboard port: $TAGPIPE_DASHBOARD_PORT overrides the config (like PORT does for collect)."""
    from tagpipe.settings import Settings

    return Settings.load().dashboard_port or cfg.dashboard.port
