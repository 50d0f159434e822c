"""FakeVendors: one real HTTP server (127.0.0.1, port 0) speaking all five vendor protocols at their real paths.

It checks each request the way the vendor would (auth, shape, limits, hashing, time windows), answers the way
the vendor answers, records every event it accepted, and plays a fault script for reliability tests:

    with FakeVendors() as fakes:
        settings = {"endpoint": fakes.url, ...}
        fakes.meta.fail_next(2, status=500)       # the next 2 Meta requests get a 500 (Meta error envelope)
        fakes.meta.throttle_next(1, retry_after=1) # Meta code 4 (GA4 / webhook: HTTP 429, TikTok: code 40100,
                                                   #  Google Ads: 429 RESOURCE_EXHAUSTED with retryDelay)
        fakes.tiktok.slow_next(1, seconds=2)       # answer after 2 s (client time-outs)
        fakes.meta.latency_per_event = 0.003       # every request takes 3 ms per event it carries
        fakes.webhook.reset_next(1)                # close the connection without answering
        fakes.google_ads.reject_token()            # credentials refused until accept_token()
        fakes.google_ads.mark_bad("GCLID-BAD", code="UNPARSEABLE_GCLID")  # a partial-failure row
        ...
        assert fakes.meta.count == 3 and not fakes.meta.duplicates()

Paths: Meta  POST /{v}/{pixel}/events          GA4  POST /mp/collect, /debug/mp/collect
       Google Ads POST /token (OAuth), POST /v{N}/customers/{id}:uploadClickConversions
       Data Manager POST /token (service-account JWT), POST /v1/events:ingest, GET /v1/requestStatus:retrieve
       TikTok POST /open_api/v1.3/event/track/  webhook POST /webhook (any path under it)
       Pinterest POST /v5/ad_accounts/{id}/events[?test=true]   Snapchat POST /v3/{pixel}/events[/validate]
       Reddit POST /api/v3/pixels/{pixel}/conversion_events    LinkedIn POST /rest/conversionEvents
       Microsoft UET POST /v1/{tag}/events
       (the five ad platforms of issue 20 refuse an event whose id is in `vendor.bad` per event, where the vendor
        answers per event: Pinterest, LinkedIn batches; Snapchat, Reddit and Microsoft refuse the whole request)

The protocol rules are written here independently of shared/tagpipe/destinations (a second reading of VENDORS.md), so
a destination bug is not mirrored by the fake. Thread-safe: every vendor's state sits behind its own lock.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import itertools
import json
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HEX64 = re.compile(r"^[a-f0-9]{64}$")
Answer = tuple[int, dict[str, str], bytes]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def _hashed(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(v, str) and HEX64.match(v) for v in values)


@dataclass
class Fault:
    kind: str  # fail | throttle | slow | reset
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    body: Any = None


class VendorState:
    """What one fake vendor accepted, and its fault script."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []  # accepted vendor events, in arrival order
        self.requests: list[dict[str, Any]] = []  # every request: path, status answered, events in it
        self._refused: list[dict[str, Any]] = []  # what the vendor refused or dropped, with a reason
        self._refusals_read = False  # the test looked at them (reading .refused)
        self.expected_refusals: set[str] = set()  # reasons (fnmatch patterns) the test means to cause
        self.faults: deque[Fault] = deque()
        self.token_rejected = False
        self.latency_per_event = 0.0  # seconds each request takes per event in it (a vendor slow with size)

    # ---- fault script
    def _add(self, n: int, fault: Fault) -> None:
        with self.lock:
            self.faults.extend(Fault(**fault.__dict__) for _ in range(n))

    def fail_next(self, n: int = 1, status: int = 500, body: Any = None) -> None:
        self._add(n, Fault("fail", status=status, body=body))

    def throttle_next(self, n: int = 1, retry_after: float | None = 1) -> None:
        self._add(n, Fault("throttle", retry_after=retry_after))

    def slow_next(self, n: int = 1, seconds: float = 1.0) -> None:
        self._add(n, Fault("slow", seconds=seconds))

    def reset_next(self, n: int = 1) -> None:
        self._add(n, Fault("reset"))

    def reject_token(self, on: bool = True) -> None:
        with self.lock:
            self.token_rejected = on

    def accept_token(self) -> None:
        self.reject_token(False)

    def take_fault(self) -> Fault | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    # ---- records
    def accept(self, events: list[dict[str, Any]], **extra: Any) -> None:
        with self.lock:
            self.events.extend({**e, **({"_meta": extra} if extra else {})} for e in events)

    def refuse(self, reason: str, **info: Any) -> None:
        with self.lock:
            self._refused.append({"reason": reason, **info})

    @property
    def refused(self) -> list[dict[str, Any]]:
        """What the vendor refused; reading it tells the fake the test checks its refusals itself."""
        with self.lock:
            self._refusals_read = True
            return list(self._refused)

    def expect_refusal(self, *reasons: str) -> None:
        """Refusals this test causes on purpose (a broken token, a bad row); others fail the test."""
        with self.lock:
            self.expected_refusals.update(reasons)

    def unexpected_refusals(self) -> list[dict[str, Any]]:
        with self.lock:
            if self._refusals_read:
                return []
            return [r for r in self._refused
                    if not any(fnmatch.fnmatchcase(str(r["reason"]), p) for p in self.expected_refusals)]

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.events)

    def event_ids(self, key: str = "event_id") -> list[Any]:
        with self.lock:
            return [e.get(key) for e in self.events]

    def duplicates(self, key: str = "event_id") -> dict[Any, int]:
        return {k: n for k, n in Counter(self.event_ids(key)).items() if n > 1}

    def clear(self) -> None:
        with self.lock:
            self.events.clear()
            self.requests.clear()
            self._refused.clear()
            self._refusals_read = False
            self.expected_refusals.clear()
            self.faults.clear()
            self.token_rejected = False


class GoogleAdsState(VendorState):
    def __init__(self) -> None:
        super().__init__("google_ads")
        self.bad: dict[str, str] = {}  # gclid / gbraid / wbraid / orderId -> error code for that row
        self.tokens: dict[str, float] = {}  # issued access token -> expiry
        self.token_requests = 0
        self.token_lifetime = 3599
        self._serial = itertools.count(1)

    def mark_bad(self, value: str, code: str = "UNPARSEABLE_GCLID") -> None:
        with self.lock:
            self.bad[value] = code

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.bad.clear()
            self.tokens.clear()
            self.token_requests = 0

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = {t: 0.0 for t in self.tokens}


class DataManagerState(VendorState):
    """Data Manager: the service account it trusts (client_email -> PEM public key), the access tokens it
    issued, and what its asynchronous processing will say per request id."""

    def __init__(self) -> None:
        super().__init__("data_manager")
        self.service_accounts: dict[str, bytes] = {}
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.fail_later: dict[str, str] = {}  # gclid / transactionId -> ProcessingErrorReason, seen in requestStatus
        self.statuses: dict[str, list[dict[str, Any]]] = {}  # request id -> requestStatusPerDestination
        self._serial = itertools.count(1)

    def trust(self, client_email: str, public_key_pem: bytes) -> None:
        with self.lock:
            self.service_accounts[client_email] = public_key_pem

    def mark_fails_later(self, value: str, reason: str = "PROCESSING_ERROR_REASON_DUPLICATE_GCLID") -> None:
        with self.lock:
            self.fail_later[value] = reason

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.tokens.clear()
            self.fail_later.clear()
            self.statuses.clear()
            self.token_requests = 0


class RowVendorState(VendorState):
    """A vendor that can refuse single events: `mark_bad(event_id)` makes the fake refuse that event the way the
    vendor refuses a bad row (issue 20's ad platforms); `validated` counts events checked in test mode, never
    recorded."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.bad: set[str] = set()
        self.validated = 0

    def mark_bad(self, event_id: str) -> None:
        with self.lock:
            self.bad.add(event_id)

    def validate(self, n: int) -> None:
        with self.lock:
            self.validated += n

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.bad.clear()
            self.validated = 0


class FakeVendors:
    def __init__(
        self,
        *,
        meta_token: str = "meta-token",
        meta_app_secret: str | None = None,
        ga4_api_secret: str = "ga4-secret",
        google_client_id: str = "google-client",
        google_client_secret: str = "google-client-secret",
        google_refresh_token: str = "google-refresh",
        google_developer_token: str = "google-dev-token",
        google_customer_id: str | None = None,
        tiktok_token: str = "tiktok-token",
        webhook_secret: str = "webhook-secret",
        pinterest_token: str = "pinterest-token",
        snapchat_token: str = "snapchat-token",
        reddit_token: str = "reddit-token",
        linkedin_token: str = "linkedin-token",
        microsoft_token: str = "microsoft-token",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.meta_token, self.meta_app_secret = meta_token, meta_app_secret
        self.ga4_api_secret = ga4_api_secret
        self.google_client = (google_client_id, google_client_secret, google_refresh_token)
        self.google_developer_token, self.google_customer_id = google_developer_token, google_customer_id
        self.tiktok_token, self.webhook_secret = tiktok_token, webhook_secret
        self.clock = clock
        self.meta = VendorState("meta")
        self.ga4 = VendorState("ga4")
        self.google_ads = GoogleAdsState()
        self.data_manager = DataManagerState()
        self.tiktok = VendorState("tiktok")
        self.webhook = VendorState("webhook")
        self.ad_tokens = {"pinterest": pinterest_token, "snapchat": snapchat_token, "reddit": reddit_token,
                          "linkedin": linkedin_token, "microsoft_ads": microsoft_token}
        self.pinterest = RowVendorState("pinterest")
        self.snapchat = RowVendorState("snapchat")
        self.reddit = RowVendorState("reddit")
        self.linkedin = RowVendorState("linkedin")
        self.microsoft_ads = RowVendorState("microsoft_ads")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle
    def __enter__(self) -> FakeVendors:
        self.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.stop()
        if exc_type is None:
            self.check_refusals()

    def check_refusals(self) -> None:
        """Fail the test on a refusal it did not expect (as Relay's mini_sentry fails on unexpected
        outcomes): a request our destination built that the vendor would refuse is a bug even when the
        test's own assertions pass. Expected ones: vendor.expect_refusal(reason) or reading vendor.refused."""
        unexpected = {name: found for name, v in self.vendors.items() if (found := v.unexpected_refusals())}
        if unexpected:
            raise AssertionError(f"the fake vendors refused requests this test did not expect: {unexpected}"[:4000])

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"fakes": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-vendors", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "FakeVendors is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def vendors(self) -> dict[str, VendorState]:
        return {v.name: v for v in (self.meta, self.ga4, self.google_ads, self.data_manager, self.tiktok, self.webhook,
                                    self.pinterest, self.snapchat, self.reddit, self.linkedin, self.microsoft_ads)}

    def secrets(self, vendor: str) -> dict[str, str]:
        """The secrets a destination needs to talk to this fake (what config would read from the env)."""
        if vendor in self.ad_tokens:
            return {"access_token": self.ad_tokens[vendor]}
        return {
            "meta": {"access_token": self.meta_token, **({"app_secret": self.meta_app_secret} if self.meta_app_secret else {})},
            "ga4": {"api_secret": self.ga4_api_secret},
            "google_ads": dict(zip(("client_id", "client_secret", "refresh_token"), self.google_client, strict=True))
            | {"developer_token": self.google_developer_token},
            "tiktok": {"access_token": self.tiktok_token},
            "webhook": {"secret": self.webhook_secret},
        }[vendor]

    def reset(self) -> None:
        for vendor in self.vendors.values():
            vendor.clear()

    # ---- routing
    def route(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[VendorState | None, Callable[[], Answer]]:
        if method == "GET" and path == "/v1/requestStatus:retrieve":
            return self.data_manager, lambda: self._dm_status(query, headers)
        if method != "POST":
            return None, lambda: _json(405, {"error": "method not allowed"})
        if re.fullmatch(r"/(v\d+\.\d+)/(\d+)/events", path):
            return self.meta, lambda: self._meta(query, body)
        if path in ("/mp/collect", "/debug/mp/collect"):
            return self.ga4, lambda: self._ga4(path == "/debug/mp/collect", query, body)
        if path == "/token":
            if b"jwt-bearer" in body:
                return None, lambda: self._dm_token(body)
            return None, lambda: self._google_token(body)
        if path == "/v1/events:ingest":
            return self.data_manager, lambda: self._dm_ingest(headers, body)
        if m := re.fullmatch(r"/v(\d+)/customers/(\d+):uploadClickConversions", path):
            customer = m.group(2)
            return self.google_ads, lambda: self._google_ads(customer, headers, body)
        if path == "/open_api/v1.3/event/track/":
            return self.tiktok, lambda: self._tiktok(headers, body)
        if path == "/webhook" or path.startswith("/webhook/"):
            return self.webhook, lambda: self._webhook(headers, body)
        if re.fullmatch(r"/v5/ad_accounts/\d+/events", path):
            return self.pinterest, lambda: _pinterest(self, query, headers, body)
        if m := re.fullmatch(r"/v3/([A-Za-z0-9-]+)/events(/validate)?", path):
            validate = bool(m.group(2))
            return self.snapchat, lambda: _snapchat(self, validate, query, body)
        if re.fullmatch(r"/api/v3/pixels/[A-Za-z0-9_]+/conversion_events", path):
            return self.reddit, lambda: _reddit(self, headers, body)
        if path == "/rest/conversionEvents":
            return self.linkedin, lambda: _linkedin(self, headers, body)
        if re.fullmatch(r"/v1/\d+/events", path):
            return self.microsoft_ads, lambda: _microsoft(self, headers, body)
        return None, lambda: _json(404, {"error": f"no fake vendor at {path}"})

    # ---- faults, shaped like each vendor answers
    def fault_answer(self, vendor: VendorState, fault: Fault) -> Answer:
        retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.kind == "throttle":
            if vendor is self.meta:
                return _json(400, {"error": {"message": "(#4) Application request limit reached", "type": "OAuthException",
                                             "code": 4, "is_transient": True, "fbtrace_id": "FakeThrottle"}}, retry)
            if vendor is self.tiktok:
                return _json(200, {"code": 40100, "message": "Too many requests", "request_id": "fake", "data": {}}, retry)
            if vendor is self.google_ads:
                delay = {"quotaErrorDetails": {"retryDelay": f"{int(fault.retry_after or 1)}s"}}
                return _json(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
                                             "details": [{"errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"},
                                                                      "details": delay}]}]}}, retry)
            return _json(429, {"error": "rate limited"}, retry)
        # fail
        if fault.body is not None:
            return _json(fault.status, fault.body)
        if vendor is self.meta:
            return _json(fault.status, {"error": {"message": "An unexpected error has occurred.", "type": "OAuthException",
                                                  "code": 2, "is_transient": True, "fbtrace_id": "FakeFail"}})
        if vendor is self.google_ads:
            return _json(fault.status, {"error": {"code": fault.status, "status": "INTERNAL", "message": "internal"}})
        if vendor is self.tiktok:
            return _json(fault.status, {"code": 50000, "message": "internal error", "data": {}})
        return _json(fault.status, {"error": "fake failure"})

    # ---- Meta CAPI
    def _meta_error(self, message: str, code: int = 100, subcode: int | None = None, title: str = "") -> Answer:
        error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "FakeTrace"}
        if subcode:
            error["error_subcode"] = subcode
        if title:
            error["error_user_title"] = title
        return _json(400, {"error": error})

    def _meta(self, query: dict[str, list[str]], body: bytes) -> Answer:
        state = self.meta
        token = (query.get("access_token") or [""])[0]
        if state.token_rejected or token != self.meta_token:
            state.refuse("token")
            return self._meta_error("Error validating access token: Session has expired", code=190, subcode=463)
        if self.meta_app_secret:
            proof = hmac.new(self.meta_app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if (query.get("appsecret_proof") or [""])[0] != proof:
                state.refuse("appsecret_proof")
                return self._meta_error("Invalid appsecret_proof provided in the API argument")
        try:
            payload = json.loads(body)
        except ValueError:
            return self._meta_error("Invalid parameter: body is not JSON")
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or not data:
            return self._meta_error("The parameter data is required")
        if len(data) > 1000:
            state.refuse("too_many_events", count=len(data))
            return self._meta_error("Invalid parameter: more than 1000 events in data")
        now = self.clock()
        for i, event in enumerate(data):
            problem = _meta_event_problem(event, now)
            if problem:
                message, subcode, title = problem
                state.refuse(message, index=i)  # one bad event refuses the whole request
                return self._meta_error(f"Invalid parameter: data[{i}]: {message}", subcode=subcode, title=title)
        state.accept(data, test_event_code=payload.get("test_event_code"), partner_agent=payload.get("partner_agent"))
        return _json(200, {"events_received": len(data), "messages": [], "fbtrace_id": "FakeOk"})

    # ---- GA4 Measurement Protocol
    def _ga4(self, debug: bool, query: dict[str, list[str]], body: bytes) -> Answer:
        state = self.ga4
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        messages = _ga4_validation(payload, len(body), self.clock()) if isinstance(payload, dict) else [
            {"fieldPath": "", "description": "Unable to parse the JSON body.", "validationCode": "VALUE_INVALID"}]
        if debug:
            return _json(200, {"validationMessages": messages})
        # /mp/collect: always 2xx, never says why; GA4 silently drops what is invalid
        secret_ok = (query.get("api_secret") or [""])[0] == self.ga4_api_secret and query.get("measurement_id")
        events = payload.get("events") if isinstance(payload, dict) else None
        request_level = [m for m in messages if not m["fieldPath"].startswith("events[")]
        bad_indexes = {int(x) for m in messages for x in re.findall(r"^events\[(\d+)\]", m["fieldPath"])}
        if not secret_ok or request_level or not isinstance(events, list):
            state.refuse("api_secret" if not secret_ok else "request", messages=messages)
            return 204, {}, b""
        accepted = []
        for i, event in enumerate(events):
            if i in bad_indexes:
                state.refuse("event", index=i, messages=[m for m in messages if m["fieldPath"].startswith(f"events[{i}]")])
            else:
                accepted.append(event)
        request_fields = {k: v for k, v in payload.items() if k != "events"}
        state.accept([{**e, "event_id": (e.get("params") or {}).get("event_id")} for e in accepted], **request_fields)
        return 204, {}, b""

    # ---- Google Ads
    def _google_token(self, body: bytes) -> Answer:
        state = self.google_ads
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with state.lock:
            state.token_requests += 1
        client_id, client_secret, refresh = self.google_client
        if form.get("client_id") != client_id or form.get("client_secret") != client_secret:
            return _json(401, {"error": "invalid_client", "error_description": "The OAuth client was not found."})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != refresh:
            return _json(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
        with state.lock:
            token = f"fake-access-{next(state._serial)}"
            state.tokens[token] = self.clock() + state.token_lifetime
        return _json(200, {"access_token": token, "expires_in": state.token_lifetime, "token_type": "Bearer",
                           "scope": "https://www.googleapis.com/auth/adwords"})

    def _google_error(self, http: int, status: str, category: str, code: str, message: str) -> Answer:
        return _json(http, {"error": {"code": http, "message": message, "status": status, "details": [{
            "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
            "errors": [{"errorCode": {category: code}, "message": message}], "requestId": "fake"}]}})

    def _google_ads(self, customer: str, headers: dict[str, str], body: bytes) -> Answer:
        state = self.google_ads
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with state.lock:
            expiry = state.tokens.get(token)
        if state.token_rejected:
            state.refuse("token_rejected")
            return self._google_error(401, "UNAUTHENTICATED", "authenticationError", "NOT_ADS_USER",
                                      "User in the cookie is not a valid Ads user.")
        if expiry is None:
            state.refuse("token_invalid")
            return self._google_error(401, "UNAUTHENTICATED", "authenticationError", "OAUTH_TOKEN_INVALID",
                                      "Oauth token in the header is not valid.")
        if expiry < self.clock():
            state.refuse("token_expired")
            return self._google_error(401, "UNAUTHENTICATED", "authenticationError", "OAUTH_TOKEN_EXPIRED",
                                      "Oauth token in the header has expired.")
        if headers.get("developer-token") != self.google_developer_token:
            state.refuse("developer_token")
            return self._google_error(401, "UNAUTHENTICATED", "authenticationError", "DEVELOPER_TOKEN_INVALID",
                                      "The developer token is not valid.")
        if self.google_customer_id and customer != self.google_customer_id:
            return self._google_error(403, "PERMISSION_DENIED", "authorizationError", "USER_PERMISSION_DENIED",
                                      "The caller does not have permission.")
        try:
            payload = json.loads(body)
        except ValueError:
            return self._google_error(400, "INVALID_ARGUMENT", "requestError", "INVALID_INPUT", "Invalid JSON payload.")
        if payload.get("partialFailure") is not True:
            state.refuse("partial_failure_required")
            return self._google_error(400, "INVALID_ARGUMENT", "partialFailureError", "PARTIAL_FAILURE_MODE_REQUIRED",
                                      "The partial failure field was false in the request.")
        conversions = payload.get("conversions")
        if not isinstance(conversions, list) or not conversions:
            return self._google_error(400, "INVALID_ARGUMENT", "fieldError", "REQUIRED", "conversions is required.")
        if len(conversions) > 2000:
            return self._google_error(400, "INVALID_ARGUMENT", "conversionUploadError",
                                      "TOO_MANY_CONVERSIONS_IN_REQUEST", "Too many conversions in the request.")
        errors, results, accepted = [], [], []
        for i, row in enumerate(conversions):
            problem = _google_row_problem(row, customer)
            with state.lock:
                marked = next((state.bad[row[k]] for k in ("gclid", "gbraid", "wbraid", "orderId")
                               if isinstance(row.get(k), str) and row[k] in state.bad), None)
            if problem is None and marked:
                problem = ("conversionUploadError", marked)
            if problem:
                category, code = problem
                errors.append({"errorCode": {category: code}, "message": f"row {i}: {code}",
                               "location": {"fieldPathElements": [{"fieldName": "conversions", "index": i}]}})
                results.append({})
                state.refuse(code, index=i)
            else:
                results.append({k: row[k] for k in ("gclid", "gbraid", "wbraid", "conversionAction", "conversionDateTime") if k in row})
                accepted.append(row)
        if payload.get("validateOnly") is True:  # validated, not uploaded: results are empty ([doc] validate_only)
            results, accepted = [{} for _ in results], []
        state.accept(accepted)
        answer: dict[str, Any] = {"results": results, "jobId": "1"}
        if errors:
            answer["partialFailureError"] = {"code": 3, "message": f"{len(errors)} conversion(s) failed", "details": [{
                "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                "errors": errors, "requestId": "fake"}]}
        return _json(200, answer)

    # ---- Google Data Manager API ([proto] googleapis google/ads/datamanager/v1, read independently of
    # shared/tagpipe/destinations/data_manager.py)
    def _dm_token(self, body: bytes) -> Answer:
        """RFC 7523 JWT bearer grant as Google's token endpoint takes it from a service account: an RS256
        JWT signed with the account's key, iss = client_email, aud = Google's token URI, a scope, at most an
        hour long and unexpired."""
        import base64

        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        state = self.data_manager
        with state.lock:
            state.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return _json(400, {"error": "unsupported_grant_type"})

        def b64(part: str) -> bytes:
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        try:
            header_b64, claims_b64, signature_b64 = form.get("assertion", "").split(".")
            header, claims = json.loads(b64(header_b64)), json.loads(b64(claims_b64))
        except ValueError:
            return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT."})
        pem = state.service_accounts.get(claims.get("iss", ""))
        if header.get("alg") != "RS256" or pem is None:
            return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        try:
            serialization.load_pem_public_key(pem).verify(
                b64(signature_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        now = self.clock()
        # the audience is Google's token endpoint whatever URL the JWT is posted to (google-auth sets it so)
        if (not (claims.get("iat", 0) - 300 <= now < claims.get("exp", 0) <= claims.get("iat", 0) + 3600)
                or claims.get("aud") != "https://oauth2.googleapis.com/token"):
            return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived token."})
        if "https://www.googleapis.com/auth/datamanager" not in str(claims.get("scope", "")).split():
            return _json(400, {"error": "invalid_scope"})
        with state.lock:
            token = f"fake-dm-access-{next(state._serial)}"
            state.tokens[token] = now + 3599
        return _json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _dm_error(self, http: int, status: str, reason: str, message: str, violations: list[dict] | None = None) -> Answer:
        details: list[dict[str, Any]] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                                          "domain": "datamanager.googleapis.com"}]  # fmt: skip
        if violations:
            details.append({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations})
        return _json(http, {"error": {"code": http, "message": message, "status": status, "details": details}})

    def _dm_authorised(self, headers: dict[str, str]) -> Answer | None:
        state = self.data_manager
        auth = headers.get("authorization", "")
        with state.lock:
            expiry = state.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if state.token_rejected or expiry is None or expiry < self.clock():
            state.refuse("token_invalid")
            return _json(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                         "message": "Request had invalid authentication credentials."}})  # fmt: skip
        return None

    def _dm_ingest(self, headers: dict[str, str], body: bytes) -> Answer:
        state = self.data_manager
        if refused := self._dm_authorised(headers):
            return refused
        try:
            payload = json.loads(body)
        except ValueError:
            return self._dm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received.")
        destinations, events = payload.get("destinations"), payload.get("events")
        if not isinstance(destinations, list) or not destinations:
            return self._dm_error(400, "INVALID_ARGUMENT", "REQUIRED_FIELD_MISSING", "destinations is required.")
        if len(destinations) > 10:
            return self._dm_error(400, "INVALID_ARGUMENT", "TOO_MANY_DESTINATIONS", "At most 10 destinations.")
        refs = [d.get("reference") for d in destinations if isinstance(d, dict)]
        if len(set(refs)) != len(refs):
            return self._dm_error(400, "INVALID_ARGUMENT", "DUPLICATE_DESTINATION_REFERENCE", "Duplicate reference.")
        analytics = set()  # references of GA4 destinations (property + web stream measurement id)
        for i, d in enumerate(destinations):
            account = d.get("operatingAccount") if isinstance(d, dict) else None
            kind = account.get("accountType") if isinstance(account, dict) else None
            product = str(d.get("productDestinationId", "")) if isinstance(d, dict) else ""
            if (not isinstance(account, dict) or not str(account.get("accountId", "")).isdigit()
                    or not ((kind == "GOOGLE_ADS" and product.isdigit())
                            or (kind == "GOOGLE_ANALYTICS_PROPERTY" and re.fullmatch(r"G-[A-Z0-9]+", product)))):  # fmt: skip
                state.refuse("INVALID_DESTINATION", index=i)
                return self._dm_error(400, "INVALID_ARGUMENT", "INVALID_DESTINATION", f"destinations[{i}] is invalid.")
            if kind == "GOOGLE_ANALYTICS_PROPERTY":
                analytics.add(d.get("reference"))
        if not isinstance(events, list) or not events:
            return self._dm_error(400, "INVALID_ARGUMENT", "REQUIRED_FIELD_MISSING", "events is required.")
        if len(events) > 2000:
            return self._dm_error(400, "INVALID_ARGUMENT", "TOO_MANY_EVENTS", "Too many events.")
        violations = []
        for i, event in enumerate(events):
            problem = _dm_event_problem(event, refs, payload.get("encoding"), analytics)
            if problem:
                field, reason = problem
                violations.append({"field": f"events[{i}].{field}", "description": reason, "reason": reason})
                state.refuse(reason, index=i)
        if violations:  # fail fast: nothing of the request is taken
            return self._dm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid events.", violations)
        if payload.get("validateOnly") is True:
            return _json(200, {})
        with state.lock:
            request_id = f"fake-request-{next(state._serial)}"
            failed = Counter(state.fail_later[v] for e in events
                             for v in ((e.get("adIdentifiers") or {}).get("gclid"), e.get("transactionId"))
                             if v in state.fail_later)  # fmt: skip
            state.statuses[request_id] = [{
                "destination": d, "requestStatus": ("PARTIAL_SUCCESS" if failed else "SUCCESS"),
                "eventsIngestionStatus": {"recordCount": str(len(events))},
                **({"errorInfo": {"errorCounts": [{"recordCount": str(n), "reason": r} for r, n in failed.items()]}}
                   if failed else {}),
            } for d in destinations]  # fmt: skip
        state.accept(events, request_id=request_id)
        return _json(200, {"requestId": request_id})

    def _dm_status(self, query: dict[str, list[str]], headers: dict[str, str]) -> Answer:
        if refused := self._dm_authorised(headers):
            return refused
        request_id = (query.get("requestId") or [""])[0]
        with self.data_manager.lock:
            statuses = self.data_manager.statuses.get(request_id)
        if statuses is None:
            return self._dm_error(400, "INVALID_ARGUMENT", "INVALID_REQUEST_ID", "The request ID is not valid.")
        return _json(200, {"requestStatusPerDestination": statuses})

    # ---- TikTok Events API 2.0
    def _tiktok(self, headers: dict[str, str], body: bytes) -> Answer:
        state = self.tiktok

        def answer(code: int, message: str) -> Answer:
            return _json(200, {"code": code, "message": message, "request_id": "fake-request", "data": {}})

        if state.token_rejected or headers.get("access-token") != self.tiktok_token:
            state.refuse("token")
            return answer(40105, "Access token is incorrect or has been revoked.")
        try:
            payload = json.loads(body)
        except ValueError:
            return answer(40002, "Invalid JSON")
        if payload.get("event_source") not in ("web", "app", "offline", "crm"):
            return answer(40002, "event_source: invalid")
        if not payload.get("event_source_id"):
            return answer(40002, "event_source_id: required")
        data = payload.get("data")
        if not isinstance(data, list) or not data or len(data) > 1000:
            state.refuse("batch_size")
            return answer(40002, "data: between 1 and 1000 events")
        now = self.clock()
        for i, event in enumerate(data):
            problem = _tiktok_event_problem(event, now)
            if problem:
                state.refuse(problem, index=i)  # one bad row fails the batch
                return answer(40002, f"data[{i}]: {problem}")
        state.accept(data, test_event_code=payload.get("test_event_code"), pixel=payload.get("event_source_id"))
        return answer(0, "OK")

    # ---- webhook
    def _webhook(self, headers: dict[str, str], body: bytes) -> Answer:
        state = self.webhook
        if state.token_rejected:
            return _json(401, {"error": "signature refused"})
        signature = headers.get("x-tagpipe-signature", "")
        parts = [p.split("=", 1) for p in signature.split(",") if "=" in p]
        stamp = next((v for k, v in parts if k == "t"), "")
        candidates = [v for k, v in parts if k == "v1"]
        if not stamp.isdigit() or not candidates:
            state.refuse("signature_missing")
            return _json(400, {"error": "missing signature"})
        expected = hmac.new(self.webhook_secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, c) for c in candidates):
            state.refuse("signature_mismatch")
            return _json(401, {"error": "bad signature"})
        if abs(self.clock() - int(stamp)) > 300:
            state.refuse("signature_stale")
            return _json(401, {"error": "stale signature"})
        delivery = headers.get("x-tagpipe-delivery")
        if not delivery:
            return _json(400, {"error": "missing delivery id"})
        try:
            events = json.loads(body)["events"]
        except (ValueError, KeyError, TypeError):
            return _json(400, {"error": "body must be {\"events\": [...]}"})
        for event in events:
            user = event.get("user_data") or {}
            if any(not HEX64.match(str(v)) for v in user.values()):
                state.refuse("raw_pii")
                return _json(422, {"error": "user_data must be hashed"})
        state.accept(events, delivery=delivery)
        return _json(200, {"ok": True, "received": len(events)})


# --------------------------------------------------------------------------- per-vendor rules (independent)
META_ACTION_SOURCES = {"website", "email", "app", "phone_call", "chat", "physical_store", "system_generated",
                       "business_messaging", "other"}
META_HASHED = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
FBC_RE = re.compile(r"^fb\.\d+\.\d{13}\.\S+$")
FBP_RE = re.compile(r"^fb\.\d+\.\d{13}\.\d+(\.\S+)?$")


def _meta_event_problem(event: Any, now: float) -> tuple[str, int | None, str] | None:
    if not isinstance(event, dict):
        return "event is not an object", None, ""
    if not isinstance(event.get("event_name"), str) or not event["event_name"]:
        return "event_name is required", None, ""
    event_time = event.get("event_time")
    if not isinstance(event_time, int) or isinstance(event_time, bool):
        return "event_time must be an integer (unix seconds)", None, ""
    if event_time > now + 600:
        return "event_time is in the future", None, "Event Timestamp In Future"
    if event_time < now - 7 * 24 * 3600:
        return "event_time is more than 7 days in the past", 2804003, "Event Timestamp Too Old"
    if not event.get("event_id"):
        return "event_id is required for deduplication", None, ""
    if event.get("action_source") not in META_ACTION_SOURCES:
        return "action_source is invalid", None, ""
    user = event.get("user_data")
    if not isinstance(user, dict) or not user:
        return "user_data must contain customer information", None, ""
    if event["action_source"] == "website":
        if not event.get("event_source_url"):
            return "event_source_url is required for website events", None, ""
        if not user.get("client_user_agent"):
            return "client_user_agent is required for website events", None, ""
    for key in META_HASHED + ("external_id",):
        if key in user:
            value = user[key]
            if key == "external_id":
                values = value if isinstance(value, list) else [value]
                if not all(isinstance(v, str) and v for v in values):
                    return "external_id must be strings", None, ""
            elif not _hashed(value):
                return f"user_data.{key} must be SHA-256 hashed", None, "Unhashed Customer Information"
    for key in ("client_ip_address", "client_user_agent", "fbc", "fbp"):
        if key in user and (not isinstance(user[key], str) or HEX64.match(user[key])):
            return f"user_data.{key} must not be hashed", None, ""
    if "fbc" in user and not FBC_RE.match(user["fbc"]):
        return "user_data.fbc is malformed", None, ""
    if "fbp" in user and not FBP_RE.match(user["fbp"]):
        return "user_data.fbp is malformed", None, ""
    custom = event.get("custom_data") or {}
    if "currency" in custom and not re.fullmatch(r"[A-Za-z]{3}", str(custom["currency"])):
        return "custom_data.currency must be ISO 4217", None, ""
    if "value" in custom and (not isinstance(custom["value"], int | float) or isinstance(custom["value"], bool)):
        return "custom_data.value must be a number", None, ""
    return None


GA4_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
GA4_RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
GA4_RESERVED_EVENTS = {"ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "adunit_exposure",
                       "app_background", "app_clear_data", "app_exception", "app_remove", "app_store_refund",
                       "app_update", "app_upgrade", "error", "first_open", "first_visit", "in_app_purchase",
                       "os_update", "session_start", "user_engagement"}
GA4_LONG_VALUES = {"page_location": 1000, "page_referrer": 420, "page_title": 300}


def _ga4_name(name: Any, limit: int, reserved: set[str] = frozenset()) -> str | None:  # type: ignore[assignment]
    if not isinstance(name, str):
        return "NAME_INVALID"
    if name.startswith(GA4_RESERVED_PREFIXES) or name in reserved:
        return "NAME_RESERVED"
    if len(name) > limit or not GA4_NAME.match(name):
        return "NAME_INVALID"
    return None


def _ga4_validation(payload: dict[str, Any], size: int, now: float) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []

    def add(path: str, code: str, text: str) -> None:
        out.append({"fieldPath": path, "description": text, "validationCode": code})

    if size > 130_000:
        add("", "VALUE_OUT_OF_BOUNDS", "Post body is larger than 130kB.")
    if not payload.get("client_id") and not payload.get("app_instance_id"):
        add("client_id", "VALUE_REQUIRED", "client_id is required.")
    consent = payload.get("consent") or {}
    for key, value in consent.items():
        if value not in ("GRANTED", "DENIED"):
            add(f"consent.{key}", "VALUE_INVALID", "consent must be GRANTED or DENIED.")
    for key, prop in (payload.get("user_properties") or {}).items():
        if _ga4_name(key, 24, {"first_open_time", "first_visit_time", "user_id"}):
            add(f"user_properties.{key}", _ga4_name(key, 24, {"user_id"}) or "NAME_INVALID", "Invalid user property name.")
        value = prop.get("value") if isinstance(prop, dict) else None
        if isinstance(value, str) and len(value) > 36:
            add(f"user_properties.{key}.value", "VALUE_OUT_OF_BOUNDS", "User property value too long.")
    user_data = payload.get("user_data") or {}
    for key in ("sha256_email_address", "sha256_phone_number"):
        if key in user_data and not _hashed(user_data[key]):
            add(f"user_data.{key}", "VALUE_INVALID", "Must be a hex SHA-256.")
    for i, address in enumerate(user_data.get("address") or []):
        for key in ("sha256_first_name", "sha256_last_name", "sha256_street"):
            if key in address and not _hashed(address[key]):
                add(f"user_data.address[{i}].{key}", "VALUE_INVALID", "Must be a hex SHA-256.")
    events = payload.get("events")
    if not isinstance(events, list) or not events:
        add("events", "VALUE_REQUIRED", "events is required.")
        return out
    if len(events) > 25:
        add("events", "EXCEEDED_MAX_ENTITIES", "A request may hold at most 25 events.")
    for i, event in enumerate(events):
        name = event.get("name") if isinstance(event, dict) else None
        problem = _ga4_name(name, 40, GA4_RESERVED_EVENTS)
        if problem:
            add(f"events[{i}].name", problem, f"Event at index: [{i}] has invalid name.")
        params = (event.get("params") if isinstance(event, dict) else None) or {}
        if len(params) > 25:
            add(f"events[{i}].params", "EXCEEDED_MAX_ENTITIES", "At most 25 params per event.")
        for key, value in params.items():
            problem = _ga4_name(key, 40, {"firebase_conversion"})
            if problem:
                add(f"events[{i}].params.{key}", problem, "Invalid param name.")
            if isinstance(value, str) and len(value) > GA4_LONG_VALUES.get(key, 100):
                add(f"events[{i}].params.{key}", "VALUE_OUT_OF_BOUNDS", "Param value too long.")
        micros = event.get("timestamp_micros", payload.get("timestamp_micros")) if isinstance(event, dict) else None
        if micros is not None:
            if not isinstance(micros, int) or micros < 10**15:
                add(f"events[{i}].timestamp_micros", "VALUE_INVALID", "timestamp_micros must be microseconds.")
            elif micros / 1e6 < now - 72 * 3600:
                add(f"events[{i}].timestamp_micros", "VALUE_OUT_OF_BOUNDS", "Events may be backdated 72 hours at most.")
    return out


GOOGLE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


def _google_row_problem(row: Any, customer: str) -> tuple[str, str] | None:
    if not isinstance(row, dict):
        return "requestError", "INVALID_INPUT"
    action = row.get("conversionAction", "")
    if not re.fullmatch(rf"customers/{customer}/conversionActions/\d+", str(action)):
        return "conversionUploadError", "INVALID_CONVERSION_ACTION"
    clicks = [k for k in ("gclid", "gbraid", "wbraid") if row.get(k)]
    if len(clicks) > 1:
        return "conversionUploadError", "GBRAID_WBRAID_BOTH_SET" if "gclid" not in clicks else "MORE_THAN_ONE_CLICK_ID"
    identifiers = row.get("userIdentifiers") or []
    if not clicks and not identifiers:
        return "conversionUploadError", "NO_CLICK_ID_OR_USER_IDENTIFIER"
    if not GOOGLE_DATETIME.match(str(row.get("conversionDateTime", ""))):
        return "dateError", "INVALID_FIELD_VALUES_IN_DATE_TIME"
    if len(identifiers) > 5:
        return "collectionSizeError", "TOO_MANY"
    for identifier in identifiers:
        kinds = [k for k in ("hashedEmail", "hashedPhoneNumber", "addressInfo", "thirdPartyUserId", "mobileId") if k in identifier]
        if len(kinds) != 1:
            return "fieldError", "ONEOF_FIELD_ALREADY_SET" if kinds else "REQUIRED"
        if kinds[0] in ("hashedEmail", "hashedPhoneNumber") and not _hashed(identifier[kinds[0]]):
            return "offlineUserDataJobError", "INVALID_SHA256_FORMAT"
        if kinds[0] == "addressInfo":
            info = identifier["addressInfo"]
            for key in ("hashedFirstName", "hashedLastName", "hashedStreetAddress"):
                if key in info and not _hashed(info[key]):
                    return "offlineUserDataJobError", "INVALID_SHA256_FORMAT"
            for key in ("city", "state", "postalCode", "countryCode"):
                if key in info and HEX64.match(str(info[key])):
                    return "offlineUserDataJobError", "UNHASHED_FIELD_HASHED"  # these must stay in clear
    consent = row.get("consent") or {}
    if "adPersonalization" in consent:
        return "fieldError", "FIELD_NOT_ALLOWED_FOR_CONVERSION_UPLOADS"
    if consent.get("adUserData", "GRANTED") not in ("GRANTED", "DENIED", "UNKNOWN", "UNSPECIFIED"):
        return "fieldError", "INVALID_VALUE"
    if "currencyCode" in row and not re.fullmatch(r"[A-Z]{3}", str(row["currencyCode"])):
        return "conversionUploadError", "INVALID_CURRENCY_CODE"
    return None


DM_IDENTIFIER_KEYS = ("emailAddress", "phoneNumber", "address")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def _dm_event_problem(event: Any, refs: list[Any], encoding: Any, analytics: set[Any]) -> tuple[str, str] | None:
    """(field, ErrorReason) of the first thing Data Manager's validation refuses in one event."""
    if not isinstance(event, dict):
        return "", "INVALID_EVENT"
    if not isinstance(event.get("eventTimestamp"), str) or not RFC3339.match(event["eventTimestamp"]):
        return "event_timestamp", "INVALID_FORMAT"
    for ref in event.get("destinationReferences") or []:
        if ref not in refs:
            return "destination_references", "INVALID_DESTINATION"
    targets = event.get("destinationReferences") or refs  # none named: every destination of the request
    ga = [r for r in targets if r in analytics]
    if len(ga) > 1:
        return "destination_references", "MULTIPLE_DESTINATIONS_FOR_GOOGLE_ANALYTICS_EVENT"
    if ga:
        if (event.get("userData") or {}).get("userIdentifiers") and encoding != "HEX":
            return "user_data", "INVALID_HEX_ENCODING" if encoding else "REQUIRED_FIELD_MISSING"
        return _dm_ga4_event_problem(event)
    ad = event.get("adIdentifiers") or {}
    if sum(1 for k in ("gclid", "gbraid", "wbraid") if ad.get(k)) > 1:
        return "ad_identifiers", "INVALID_ARGUMENT"
    identifiers = (event.get("userData") or {}).get("userIdentifiers") or []
    if identifiers and encoding != "HEX":
        return "user_data", "INVALID_HEX_ENCODING" if encoding else "REQUIRED_FIELD_MISSING"
    if len(identifiers) > 10:
        return "user_data.user_identifiers", "TOO_MANY_USER_IDENTIFIERS"
    for j, identifier in enumerate(identifiers):
        present = [k for k in DM_IDENTIFIER_KEYS if k in (identifier or {})]
        if len(present) != 1:
            return f"user_data.user_identifiers[{j}]", "INVALID_ARGUMENT"
        value = identifier[present[0]]
        if present[0] == "address":
            if not all(value.get(k) for k in ("givenName", "familyName", "regionCode", "postalCode")):
                return f"user_data.user_identifiers[{j}].address", "REQUIRED_FIELD_MISSING"
            if not (_hashed(value["givenName"]) and _hashed(value["familyName"])):
                return f"user_data.user_identifiers[{j}].address", "INVALID_SHA256_FORMAT"
            if not re.fullmatch(r"[A-Z]{2}", str(value["regionCode"])):
                return f"user_data.user_identifiers[{j}].address.region_code", "INVALID_COUNTRY_CODE"
        elif not _hashed(value):
            return f"user_data.user_identifiers[{j}]", "INVALID_SHA256_FORMAT"
    if not identifiers and not any(ad.get(k) for k in ("gclid", "gbraid", "wbraid")):
        return "", "NO_IDENTIFIERS_PROVIDED"
    if "currency" in event and not re.fullmatch(r"[A-Z]{3}", str(event["currency"])):
        return "currency", "INVALID_CURRENCY_CODE"
    value = event.get("conversionValue")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "conversion_value", "INVALID_NUMBER_FORMAT"
    for key in ("adUserData", "adPersonalization"):
        if key in (event.get("consent") or {}) and event["consent"][key] not in ("CONSENT_GRANTED", "CONSENT_DENIED"):
            return f"consent.{key}", "INVALID_ENUM_VALUE"
    if event.get("eventSource", "WEB") not in ("WEB", "APP", "IN_STORE", "PHONE", "OTHER"):
        return "event_source", "INVALID_ENUM_VALUE"
    return None


def _dm_parameters_problem(params: Any, field: str, name_key: str) -> tuple[str, str] | None:
    if not isinstance(params, list):
        return field, "INVALID_ARGUMENT"
    for j, param in enumerate(params):
        if not isinstance(param, dict) or not isinstance(param.get("value"), str):
            return f"{field}[{j}]", "INVALID_ARGUMENT"
        problem = _ga4_name(param.get(name_key), 40)
        if problem:
            return f"{field}[{j}]", "RESERVED_NAME_USED" if problem == "NAME_RESERVED" else "INVALID_ARGUMENT"
    return None


def _dm_ga4_event_problem(event: dict[str, Any]) -> tuple[str, str] | None:
    """A GA4 event's own rules ([proto] event.proto, error.proto): a name, a web client id or an app
    instance id but not both, parameters as name + string value, no reserved names."""
    problem = _ga4_name(event.get("eventName"), 40, GA4_RESERVED_EVENTS) if "eventName" in event else "MISSING"
    if problem == "MISSING":
        return "event_name", "REQUIRED_FIELD_MISSING"
    if problem:
        return "event_name", "RESERVED_NAME_USED" if problem == "NAME_RESERVED" else "INVALID_EVENT_NAME"
    if event.get("clientId") and event.get("appInstanceId"):
        return "client_id", "BOTH_CLIENT_ID_AND_APP_INSTANCE_ID_NOT_ALLOWED"
    if not event.get("clientId") and not event.get("appInstanceId"):
        return "client_id", "REQUIRED_FIELD_MISSING"
    if "additionalEventParameters" in event:
        if problem := _dm_parameters_problem(event["additionalEventParameters"], "additional_event_parameters", "parameterName"):
            return problem
    for j, item in enumerate((event.get("cartData") or {}).get("items") or []):
        if "additionalItemParameters" in item:
            if problem := _dm_parameters_problem(item["additionalItemParameters"], f"cart_data.items[{j}].additional_item_parameters", "parameterName"):
                return problem
    user_properties = (event.get("userProperties") or {}).get("additionalUserProperties")
    if user_properties is not None:
        if problem := _dm_parameters_problem(user_properties, "user_properties.additional_user_properties", "propertyName"):
            return problem
    if "currency" in event and not re.fullmatch(r"[A-Z]{3}", str(event["currency"])):
        return "currency", "INVALID_CURRENCY_CODE"
    identifiers = (event.get("userData") or {}).get("userIdentifiers") or []
    for j, identifier in enumerate(identifiers):
        if not all(_hashed(v) for k, v in (identifier or {}).items() if k != "address"):
            return f"user_data.user_identifiers[{j}]", "INVALID_SHA256_FORMAT"
    return None


def _tiktok_event_problem(event: Any, now: float) -> str | None:
    if not isinstance(event, dict) or not event.get("event"):
        return "event is required"
    event_time = event.get("event_time")
    if not isinstance(event_time, int) or isinstance(event_time, bool) or not 10**9 <= event_time < 10**10:
        return "event_time must be unix seconds"
    if event_time > now + 600:
        return "event_time is in the future"
    user = event.get("user")
    if not isinstance(user, dict):
        return "user is required"
    for key in ("email", "phone", "external_id"):
        if key in user and not _hashed(user[key]):
            return f"user.{key} must be SHA-256 hashed"
    for key in ("ip", "user_agent", "ttp", "ttclid"):
        if key in user and (not isinstance(user[key], str) or HEX64.match(user[key])):
            return f"user.{key} must not be hashed"
    return None


# --------------------------------------------------------------------------- issue 20's ad platforms (independent)
# Each reads the vendor's own documentation (cited in docs/destinations.md), not shared/tagpipe/destinations.


def _bearer(headers: dict[str, str], token: str) -> bool:
    return headers.get("authorization") == f"Bearer {token}"


def _body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _unix_seconds(value: Any, now: float, max_age: float) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 10**9 <= value < 10**10:
        return "must be unix seconds"
    if value > now + 600:
        return "is in the future"
    if value < now - max_age:
        return "is too old"
    return None


def _unix_ms(value: Any, now: float, max_age: float) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 10**12 <= value < 10**13:
        return "must be unix milliseconds"
    return _unix_seconds(value // 1000, now, max_age)


def _plain(value: Any) -> bool:
    """An id or address sent in clear: a string that is not a SHA-256."""
    return isinstance(value, str) and bool(value) and not HEX64.match(value)


# Pinterest: pinterest/pinterest-python-generated-api-client docs (ConversionEventsData, ...UserData, ...CustomData,
# ConversionApiResponse): Bearer token; data[] of events; user_data needs em, hashed_maids, or client_ip_address +
# client_user_agent; the hashed keys are lists of SHA-256; custom_data.value a string; 200 with per-event statuses.
PINTEREST_EVENTS = {"add_payment_info", "add_to_cart", "add_to_wishlist", "app_install", "app_open", "checkout",
                    "custom", "lead", "page_visit", "search", "signup", "view_category", "watch_video"}
PINTEREST_SOURCES = {"app_android", "app_ios", "web", "offline"}
PINTEREST_HASHED = ("em", "hashed_maids", "ph", "ge", "db", "ln", "fn", "ct", "st", "zp", "country", "external_id")


def _pinterest_event_problem(event: Any, now: float) -> str | None:
    if not isinstance(event, dict):
        return "event must be an object"
    if event.get("event_name") not in PINTEREST_EVENTS:
        return "event_name is not a Pinterest event"
    if event.get("action_source") not in PINTEREST_SOURCES:
        return "action_source is invalid"
    if problem := _unix_seconds(event.get("event_time"), now, 7 * 24 * 3600):
        return f"event_time {problem}"
    if not isinstance(event.get("event_id"), str) or not event["event_id"]:
        return "event_id is required"
    user = event.get("user_data")
    if not isinstance(user, dict):
        return "user_data is required"
    for key in PINTEREST_HASHED:
        if key in user and not (isinstance(user[key], list) and _hashed(user[key])):
            return f"user_data.{key} must be a list of SHA-256 hashes"
    for key in ("client_ip_address", "client_user_agent", "click_id"):
        if key in user and not _plain(user[key]):
            return f"user_data.{key} must be sent in clear"
    if not ("em" in user or "hashed_maids" in user or ("client_ip_address" in user and "client_user_agent" in user)):
        return "user_data needs em, hashed_maids or client_ip_address + client_user_agent"
    custom = event.get("custom_data", {})
    if not isinstance(custom, dict) or ("value" in custom and not isinstance(custom["value"], str)):
        return "custom_data.value must be a string"
    if "num_items" in custom and not isinstance(custom["num_items"], int):
        return "custom_data.num_items must be an integer"
    return None


def _pinterest(fakes: FakeVendors, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> Answer:
    state = fakes.pinterest
    if state.token_rejected or not _bearer(headers, fakes.ad_tokens["pinterest"]):
        state.refuse("token")
        return _json(401, {"code": 2, "message": "Authentication failed."})
    payload = _body(body)
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data or len(data) > 1000:
        state.refuse("batch_size", count=len(data) if isinstance(data, list) else None)
        return _json(400, {"code": 1, "message": "data must hold 1 to 1000 events"})
    now, statuses, accepted = fakes.clock(), [], []
    for i, event in enumerate(data):
        problem = _pinterest_event_problem(event, now)
        if problem is None and event["event_id"] in state.bad:
            problem = "event refused (marked bad)"
        if problem:
            state.refuse(problem, index=i)
            statuses.append({"status": "failed", "error_message": problem, "warning_message": None})
        else:
            statuses.append({"status": "processed", "error_message": None, "warning_message": None})
            accepted.append(event)
    if (query.get("test") or [""])[0] == "true":
        state.validate(len(accepted))  # "The events will not be recorded"
    else:
        state.accept(accepted)
    return _json(200, {"num_events_received": len(data), "num_events_processed": len(accepted), "events": statuses})


# Snapchat: developers.snap.com Conversions-API (UsingTheAPI, Parameters): token as ?access_token=, data[] events,
# event_time seconds up to 37 days back, em/ph/... SHA-256, sc_click_id / sc_cookie1 / IP / UA in clear.
SNAP_EVENTS = {"PAGE_VIEW", "VIEW_CONTENT", "ADD_CART", "ADD_TO_WISHLIST", "SIGN_UP", "SEARCH", "PURCHASE", "ADD_BILLING",
               "COMPLETE_TUTORIAL", "SUBSCRIBE", "AD_CLICK", "AD_VIEW", "START_CHECKOUT", "RATE", "LIST_VIEW",
               "LEVEL_COMPLETE", "ACHIEVEMENT_UNLOCKED", "SPENT_CREDITS", "SAVE", "SHARE", "INVITE", "LOGIN",
               "RESERVE", "START_TRIAL", "APP_OPEN", "CUSTOM_EVENT_1", "CUSTOM_EVENT_2", "CUSTOM_EVENT_3",
               "CUSTOM_EVENT_4", "CUSTOM_EVENT_5"}  # fmt: skip
SNAP_HASHED = ("em", "ph", "fn", "ln", "ge", "ct", "st", "zp", "country", "external_id")


def _snapchat_event_problem(event: Any, now: float) -> str | None:
    if not isinstance(event, dict) or event.get("event_name") not in SNAP_EVENTS:
        return "event_name is not a Snap event"
    if event.get("action_source") not in ("WEB", "MOBILE_APP", "OFFLINE"):
        return "action_source is invalid"
    if problem := _unix_seconds(event.get("event_time"), now, 37 * 24 * 3600):
        return f"event_time {problem}"
    user = event.get("user_data")
    if not isinstance(user, dict) or not user:
        return "user_data is required"
    for key in SNAP_HASHED:
        if key in user and not _hashed(user[key]):
            return f"user_data.{key} must be SHA-256 hashed"
    for key in ("sc_click_id", "sc_cookie1", "client_ip_address", "client_user_agent"):
        if key in user and not _plain(user[key]):
            return f"user_data.{key} must be sent in clear"
    if event["action_source"] == "WEB" and not event.get("event_source_url"):
        return "event_source_url is required for WEB events"
    return None


def _snapchat(fakes: FakeVendors, validate: bool, query: dict[str, list[str]], body: bytes) -> Answer:
    state = fakes.snapchat
    if state.token_rejected or (query.get("access_token") or [""])[0] != fakes.ad_tokens["snapchat"]:
        state.refuse("token")
        return _json(401, {"status": "INVALID", "reason": "Unauthorized: invalid access token"})
    payload = _body(body)
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data or len(data) > 2000:
        state.refuse("batch_size")
        return _json(400, {"status": "INVALID", "reason": "data must hold 1 to 2000 events"})
    now = fakes.clock()
    for i, event in enumerate(data):
        problem = _snapchat_event_problem(event, now)
        if problem is None and event.get("event_id") in state.bad:
            problem = "event refused (marked bad)"
        if problem:
            state.refuse(problem, index=i)
            return _json(400, {"status": "INVALID", "reason": f"data[{i}]: {problem}"})
    if validate:
        state.validate(len(data))
    else:
        state.accept(data)
    return _json(200, {"status": "VALID", "reason": ""})


# Reddit v3: Bearer conversion access token; {"data": {"test_id"?, "events": [...]}}; event_at in milliseconds,
# type.tracking_type (CUSTOM needs custom_event_name), metadata.conversion_id, user ids. Reddit hashes plain
# email / phone itself, so either form is accepted; ip_address and user_agent in clear.
REDDIT_TYPES = {"PAGE_VISIT", "VIEW_CONTENT", "SEARCH", "ADD_TO_CART", "ADD_TO_WISHLIST", "PURCHASE", "LEAD", "SIGN_UP",
                "CUSTOM"}


def _reddit_event_problem(event: Any, now: float) -> str | None:
    if not isinstance(event, dict):
        return "event must be an object"
    if problem := _unix_ms(event.get("event_at"), now, 7 * 24 * 3600):
        return f"event_at {problem}"
    kind = event.get("type")
    if not isinstance(kind, dict) or kind.get("tracking_type") not in REDDIT_TYPES:
        return "type.tracking_type is invalid"
    if kind["tracking_type"] == "CUSTOM" and not kind.get("custom_event_name"):
        return "type.custom_event_name is required for CUSTOM"
    metadata = event.get("metadata", {})
    if "value" in metadata and (isinstance(metadata["value"], bool) or not isinstance(metadata["value"], (int, float))):
        return "metadata.value must be a number"
    user = event.get("user")
    if not isinstance(user, dict):
        return "user is required"
    email = user.get("email")
    if email is not None and not (isinstance(email, str) and (HEX64.match(email) or "@" in email)):
        return "user.email is neither an email nor its SHA-256"
    for key in ("ip_address", "user_agent", "uuid"):
        if key in user and not _plain(user[key]):
            return f"user.{key} must be sent in clear"
    return None


def _reddit(fakes: FakeVendors, headers: dict[str, str], body: bytes) -> Answer:
    state = fakes.reddit
    if state.token_rejected or not _bearer(headers, fakes.ad_tokens["reddit"]):
        state.refuse("token")
        return _json(401, {"error": {"code": 401, "message": "Unauthorized"}})
    payload = _body(body)
    data = payload.get("data") if isinstance(payload, dict) else None
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list) or not events or len(events) > 1000:
        state.refuse("batch_size")
        return _json(400, {"error": {"code": 400, "message": "data.events must hold 1 to 1000 events", "field": "events"}})
    now = fakes.clock()
    for i, event in enumerate(events):
        problem = _reddit_event_problem(event, now)
        conversion_id = (event.get("metadata") or {}).get("conversion_id") if isinstance(event, dict) else None
        if problem is None and conversion_id in state.bad:
            problem = "event refused (marked bad)"
        if problem:
            state.refuse(problem, index=i)
            return _json(400, {"error": {"code": 400, "message": problem, "field": f"data.events[{i}]"}})
    if data.get("test_id"):
        state.validate(len(events))  # shown in the Event Testing tool, not counted as conversions
    else:
        state.accept([{**e, "event_id": e["metadata"].get("conversion_id")} for e in events])
    return _json(200, {"message": f"Successfully processed {len(events)} conversion events."})


# LinkedIn: learn.microsoft.com linkedin conversions-api: Bearer; LinkedIn-Version YYYYMM; X-Restli-Protocol-Version
# 2.0.0; one event -> 201, X-RestLi-Method BATCH_CREATE {"elements": [...]} -> 200 with a status per element.
LINKEDIN_ID_TYPES = {"SHA256_EMAIL", "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "ACXIOM_ID", "ORACLE_MOAT_ID"}


def _linkedin_event_problem(event: Any, now: float) -> str | None:
    if not isinstance(event, dict):
        return "event must be an object"
    if not re.fullmatch(r"urn:lla:llaPartnerConversion:\d+", str(event.get("conversion", ""))):
        return "conversion must be a conversion rule URN"
    if problem := _unix_ms(event.get("conversionHappenedAt"), now, 90 * 24 * 3600):
        return f"conversionHappenedAt {problem}"
    value = event.get("conversionValue")
    if value is not None and not (isinstance(value, dict) and re.fullmatch(r"[A-Z]{3}", str(value.get("currencyCode")))
                                  and isinstance(value.get("amount"), str)):
        return "conversionValue needs currencyCode and a string amount"
    user = event.get("user")
    ids = user.get("userIds") if isinstance(user, dict) else None
    if not isinstance(ids, list) or not ids:
        return "user.userIds is required"
    for entry in ids:
        if not isinstance(entry, dict) or entry.get("idType") not in LINKEDIN_ID_TYPES or not entry.get("idValue"):
            return "user.userIds has an invalid entry"
        if entry["idType"] == "SHA256_EMAIL" and not HEX64.match(str(entry["idValue"])):
            return "SHA256_EMAIL must be a SHA-256 hex"
    info = user.get("userInfo")
    if info is not None and not (isinstance(info, dict) and info.get("firstName") and info.get("lastName")):
        return "userInfo needs firstName and lastName"
    return None


def _linkedin(fakes: FakeVendors, headers: dict[str, str], body: bytes) -> Answer:
    state = fakes.linkedin
    if state.token_rejected or not _bearer(headers, fakes.ad_tokens["linkedin"]):
        state.refuse("token")
        return _json(401, {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                           "message": "Invalid access token"})
    if not re.fullmatch(r"\d{6}", headers.get("linkedin-version", "")):
        state.refuse("version")
        return _json(400, {"status": 400, "code": "VERSION_MISSING", "message": "A version must be present"})
    if headers.get("x-restli-protocol-version") != "2.0.0":
        state.refuse("protocol_version")
        return _json(400, {"status": 400, "message": "X-Restli-Protocol-Version 2.0.0 is required"})
    payload, now = _body(body), fakes.clock()
    if headers.get("x-restli-method", "").upper() == "BATCH_CREATE":
        elements = payload.get("elements") if isinstance(payload, dict) else None
        if not isinstance(elements, list) or not elements or len(elements) > 5000:
            state.refuse("batch_size")
            return _json(400, {"status": 400, "message": "elements must hold 1 to 5000 events"})
        statuses, accepted = [], []
        for i, element in enumerate(elements):
            problem = _linkedin_event_problem(element, now)
            if problem is None and element.get("eventId") in state.bad:
                problem = "event refused (marked bad)"
            if problem:
                state.refuse(problem, index=i)
                statuses.append({"status": 400, "message": problem})
            else:
                statuses.append({"status": 201})
                accepted.append(element)
        state.accept([{**e, "event_id": e.get("eventId")} for e in accepted])
        return _json(200, {"elements": statuses})
    problem = _linkedin_event_problem(payload, now)
    if problem is None and payload.get("eventId") in state.bad:
        problem = "event refused (marked bad)"
    if problem:
        state.refuse(problem)
        return _json(422, {"status": 422, "message": problem})
    state.accept([{**payload, "event_id": payload.get("eventId")}])
    return 201, {"x-restli-id": "fake"}, b""


# Microsoft UET CAPI: learn.microsoft.com/advertising/guides/uet-conversion-api-integration: Bearer CAPI token,
# {"data": [...]}: eventType pageLoad|custom, eventTime seconds, userData with at least one identifier, em / ph /
# externalId SHA-256, msclkid / anonymousId / IP / UA in clear, adStorageConsent G or D.
def _microsoft_event_problem(event: Any, now: float) -> str | None:
    if not isinstance(event, dict) or event.get("eventType") not in ("pageLoad", "custom"):
        return "eventType must be pageLoad or custom"
    if problem := _unix_seconds(event.get("eventTime"), now, 7 * 24 * 3600):
        return f"eventTime {problem}"
    if "adStorageConsent" in event and event["adStorageConsent"] not in ("G", "D"):
        return "adStorageConsent must be G or D"
    user = event.get("userData")
    if not isinstance(user, dict):
        return "userData is required"
    for key in ("em", "ph", "externalId"):
        if key in user and not _hashed(user[key]):
            return f"userData.{key} must be SHA-256 hashed"
    for key in ("msclkid", "anonymousId", "clientIpAddress", "clientUserAgent"):
        if key in user and not _plain(user[key]):
            return f"userData.{key} must be sent in clear"
    if not any(k in user for k in ("msclkid", "anonymousId", "em", "ph", "externalId")):
        return "userData needs at least one identifier"
    return None


def _microsoft(fakes: FakeVendors, headers: dict[str, str], body: bytes) -> Answer:
    state = fakes.microsoft_ads
    if state.token_rejected or not _bearer(headers, fakes.ad_tokens["microsoft_ads"]):
        state.refuse("token")
        return _json(401, {"error": {"code": "Unauthorized", "message": "invalid token"}})
    payload = _body(body)
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data or len(data) > 1000:
        state.refuse("batch_size")
        return _json(400, {"error": {"code": "InvalidBatch", "message": "data must hold 1 to 1000 events"}})
    now = fakes.clock()
    for i, event in enumerate(data):
        problem = _microsoft_event_problem(event, now)
        if problem is None and event.get("eventId") in state.bad:
            problem = "event refused (marked bad)"
        if problem:
            state.refuse(problem, index=i)
            return _json(400, {"error": {"code": "InvalidEvent", "message": f"data[{i}]: {problem}"}})
    state.accept([{**e, "event_id": e.get("eventId")} for e in data])
    return _json(200, {"eventsReceived": len(data)})


# --------------------------------------------------------------------------- the HTTP handler
def _events_in(body: bytes) -> int:
    """How many events a request body carries (the list under "data", "events" or "conversions")."""
    try:
        doc = json.loads(body)
    except ValueError:
        return 1
    if isinstance(doc, dict):
        for key in ("data", "events", "conversions"):
            if isinstance(doc.get(key), list):
                return len(doc[key])
    return len(doc) if isinstance(doc, list) else 1


class _Handler(BaseHTTPRequestHandler):
    fakes: FakeVendors
    protocol_version = "HTTP/1.1"  # keep-alive, like the real vendors (the client pool reuses connections)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _handle(self) -> None:
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The sender went away mid-body (e.g. killed): an HTTP server drops an incomplete request
            # unanswered and unprocessed, as the vendors' front ends do.
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        vendor, respond = self.fakes.route(self.command, parts.path, parse_qs(parts.query), headers, body)
        fault = vendor.take_fault() if vendor is not None else None
        if fault is not None and fault.kind == "reset":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            vendor.requests.append({"path": parts.path, "status": "reset", "at": arrived})  # type: ignore[union-attr]
            return
        if vendor is not None and vendor.latency_per_event:
            time.sleep(vendor.latency_per_event * _events_in(body))
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
            fault = None
        status, out_headers, out_body = self.fakes.fault_answer(vendor, fault) if fault else respond()  # type: ignore[arg-type]
        if vendor is not None:
            with vendor.lock:
                vendor.requests.append({"path": parts.path, "status": status, "fault": fault.kind if fault else None,
                                        "at": arrived})
        try:
            self._answer(status, out_headers, out_body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (time-out)
            self.close_connection = True

    do_POST = _handle
    do_GET = _handle
