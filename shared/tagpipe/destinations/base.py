"""The one small interface every destination implements.

A destination turns canonical events into vendor requests and reads the vendor's answer:

    prepare(event)            -> Prepared | None   in transform: map + normalise + hash one event
                                                   (None: this destination does not take this event;
                                                    raise InvalidInput to reject it with a reason)
    build_requests(tasks)     -> Batch             in deliver: batch prepared payloads into requests
    classify(request, response, error) -> Verdict  in deliver: ok / retry / throttle / permanent

Destinations never do I/O themselves: deliver owns the HTTP client (built once, injected), so tests
can swap the transport and the hot path reuses connections.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from tagpipe.errors import ConfigError
from tagpipe.models import DeliveryTask, Event

MAPPINGS_DIR = Path(__file__).parent / "mappings"


class Verdict(str, Enum):
    OK = "ok"
    RETRY = "retry"  # transient: 5xx, network, unknown vendor error
    THROTTLE = "throttle"  # rate limited: retry later, honour retry_after
    PERMANENT = "permanent"  # the vendor refused for good: never retry


@dataclass(frozen=True)
class Prepared:
    event_name: str  # the vendor's event name (Purchase, purchase, CompletePayment, ...)
    payload: dict[str, Any]  # one vendor event, hashed, ready to batch
    identifiers: list[str] = field(default_factory=list)  # match keys present (em, ph, fbp, ...)
    # non-fatal changes made to fit the vendor's limits, as short codes ("ga4:value_truncated:page_title");
    # transform records them with the outcome so nothing is dropped silently
    notes: list[str] = field(default_factory=list)


@dataclass
class VendorRequest:
    method: str
    url: str
    event_uids: list[str]  # the tasks this request carries, in order
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    masked_url: str = ""  # url with secrets masked, for logs and the debug view

    def __post_init__(self) -> None:
        if not self.masked_url:
            self.masked_url = self.url


@dataclass(frozen=True)
class Rejection:
    event_uid: str
    reason: str
    detail: str


@dataclass
class Batch:
    requests: list[VendorRequest] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)  # tasks refused before sending


@dataclass
class Result:
    verdict: Verdict
    reason: str = ""  # short code: "ok", "http:503", "meta:190", "network"
    detail: str = ""  # one sentence for humans, no PII
    retry_after: float | None = None
    # per-event verdicts when the vendor reports them (Google Ads partial failure, GA4 validation);
    # event_uids absent here share the request's verdict
    per_event: dict[str, tuple[Verdict, str, str]] = field(default_factory=dict)


class DestinationSettings(BaseModel):
    """Base of each destination's typed settings (the keys under [destinations.<id>] in config)."""

    model_config = ConfigDict(extra="forbid")


class HttpDestinationSettings(DestinationSettings):
    """Settings every HTTP vendor destination shares. Subclasses override `endpoint`'s default."""

    endpoint: str = ""  # base URL; the vendor's real one by default, a proxy or a test fake otherwise
    timeout: float = 5.0  # seconds a request of one event may take; deliver passes it to the shared client
    # Added per event of a batched request: a vendor that takes longer for 1,000 events than for one is
    # waited for, not timed out and sent the whole batch again (issue 14: 1.5 s flat for 1,000 Meta events
    # re-sent batches). Our allowance, not a vendor figure: no vendor publishes a latency per event.
    timeout_per_event: float = Field(0.005, ge=0)
    max_timeout: float = Field(60.0, gt=0)  # the cap, whatever the batch size
    default_phone_country: str | None = None  # ISO alpha-2 used when a phone number lacks a country code

    def request_timeout(self, events: int) -> float:
        return min(self.max_timeout, self.timeout + self.timeout_per_event * max(0, events - 1))


class Destination:
    type: ClassVar[str]
    max_batch: ClassVar[int] = 1
    Settings: ClassVar[type[DestinationSettings]] = DestinationSettings
    # True where every event sent is a conversion: [delivery] dedup = "conversions" then guards them all
    conversions_only: ClassVar[bool] = False
    # the setting that puts the vendor in its test mode (tagpipe.ops.test_send): "validate_only" (checked,
    # nothing recorded) or "test_event_code" (Test Events only); None: sent as configured
    # "own_endpoint": the user's own receiver, sent as configured; None: the vendor has no test mode, so a test
    # send records a real conversion and is sent only when asked to (--live)
    test_mode: ClassVar[Literal["validate_only", "test_event_code", "own_endpoint"] | None] = None
    # settings fields ending in "_env" name required secrets, except the ones listed here
    optional_secrets: ClassVar[tuple[str, ...]] = ()
    # names of env vars holding secrets, declared by settings fields ending in "_env"

    def __init__(self, id: str, settings: DestinationSettings, secrets: Mapping[str, str]) -> None:
        self.id = id
        self.settings = settings
        self.secrets = dict(secrets)

    def prepare(self, event: Event) -> Prepared | None:
        raise NotImplementedError

    @cached_property
    def event_map(self) -> dict[str, str]:
        """GA4 event name -> the vendor's: mappings/<type>.toml, under the settings' own event_map."""
        return {**load_event_map(self.type), **getattr(self.settings, "event_map", {})}

    def mapped_name(self, event: Event, unmapped: str) -> str | None:
        """The vendor's name for `event`: a tag's event_name verbatim, else the map's; for a name the map lacks,
        `unmapped` when the settings' send_unmapped is on, else None (the destination takes no such event)."""
        name = event.vendor_event_name or self.event_map.get(event.name)
        if name is None and getattr(self.settings, "send_unmapped", False):
            return unmapped
        return name

    def required_secret(self, name: str, fix: str) -> str:
        """The secret `name` (read from the variable its `<name>_env` setting names), or a ConfigError that
        names the variable and `fix`: where the user gets one."""
        value = self.secrets.get(name)
        if not value:
            variable = getattr(self.settings, f"{name}_env", name)
            raise ConfigError(f"destinations.{self.id}.{name}_env", f"the environment variable {variable} is not set", fix)
        return value

    def now(self) -> float:
        """The clock build_requests checks vendor time windows against (tests replace it)."""
        return time.time()

    def request_timeout(self, events: int) -> float | None:
        """Seconds a request carrying `events` events may take; None for a destination without HTTP."""
        s = self.settings
        return s.request_timeout(events) if isinstance(s, HttpDestinationSettings) else None

    def before_send(self, client: httpx.Client) -> None:
        """Called by deliver before build_requests: fetch or refresh credentials (e.g. OAuth)."""

    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        raise NotImplementedError

    def send_locally(self, request: VendorRequest) -> Result | None:
        """A destination that needs no HTTP (dry-run) answers here; None means: send it."""
        return None

    def classify(
        self, request: VendorRequest, response: httpx.Response | None, error: Exception | None
    ) -> Result:
        return classify_http(response, error)


def load_event_map(destination_type: str) -> dict[str, str]:
    """GA4 event name -> vendor event name, from mappings/<type>.toml ([events] table)."""
    path = MAPPINGS_DIR / f"{destination_type}.toml"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        return dict(tomllib.load(f).get("events", {}))


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        import time
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


AUTH_STATUSES = (401, 403)  # a vendor refusing the token: "<vendor>:auth", fixed by renewing it


def vendor_refusal(vendor: str, response: httpx.Response, table: Mapping[int, tuple[Verdict, str]],
                   reason: str | None = None, detail: str = "") -> Result:
    """A refused request read by the vendor's own status table (each cited beside its table), else as HTTP
    says: 401/403 are "<vendor>:auth", throttling "<vendor>:throttled", the rest `reason` or "http:<status>";
    `detail` (a field name or the vendor's code, never a value) is added to the words."""
    status = response.status_code
    if status in table:
        verdict, description = table[status]
    else:
        generic = classify_http(response, None)
        verdict, description = generic.verdict, generic.detail
    if status in AUTH_STATUSES:
        code = f"{vendor}:auth"
    elif verdict is Verdict.THROTTLE:
        code = f"{vendor}:throttled"
    else:
        code = reason or f"http:{status}"
    retry_after = retry_after_seconds(response) if verdict in (Verdict.RETRY, Verdict.THROTTLE) else None
    return Result(verdict, code, description + (f" ({detail})" if detail else ""), retry_after)


def classify_http(response: httpx.Response | None, error: Exception | None) -> Result:
    """The generic HTTP reading every destination starts from."""
    if error is not None or response is None:
        return Result(Verdict.RETRY, "network", f"{type(error).__name__}: request did not complete")
    status = response.status_code
    if 200 <= status < 300:
        return Result(Verdict.OK, "ok")
    if status == 429:
        return Result(Verdict.THROTTLE, "http:429", "rate limited", retry_after_seconds(response))
    if status >= 500 or status == 408:
        return Result(Verdict.RETRY, f"http:{status}", "vendor error", retry_after_seconds(response))
    return Result(Verdict.PERMANENT, f"http:{status}", "request refused")


# --------------------------------------------------------------------------- helpers for destinations

# A prepared payload may carry request-level fields under this key (Meta/TikTok test_event_code, the GA4
# user a request describes). build_requests groups tasks by it and strips it: events whose request fields
# differ never share a request.
REQUEST_KEY = "_request"


def split_request(payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request-level fields, the vendor event without them)."""
    event = dict(payload)
    return dict(event.pop(REQUEST_KEY, None) or {}), event


def group_by_request(tasks: Iterable[DeliveryTask]) -> list[tuple[dict[str, Any], list[DeliveryTask]]]:
    """Tasks grouped by their request-level fields, in first-seen order (stable)."""
    groups: dict[str, tuple[dict[str, Any], list[DeliveryTask]]] = {}
    for task in tasks:
        fields = dict(task.payload.get(REQUEST_KEY) or {})
        key = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
        groups.setdefault(key, (fields, []))[1].append(task)
    return list(groups.values())


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


def mask_url(url: str, secret_params: Iterable[str]) -> str:
    """The url with the values of the named query parameters replaced by ***."""
    names = set(secret_params)
    parts = urlsplit(url)
    query = [(k, "***" if k in names else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def response_json(response: httpx.Response | None) -> Any:
    """The response body as JSON, or None when it is absent or not JSON."""
    if response is None or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None
