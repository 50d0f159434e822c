"""collect: the public HTTP endpoint the site's tags send to.

It validates the hit (parsing.validate_hit: the same refusals as the parser transform uses, so a
hit that gets a 2xx will parse; gtag hits are checked without building Events), publishes the raw hit durably, and answers at once; it never waits on a vendor. Bad input gets a
4xx with a JSON reason and a failed-event record; a queue that cannot write gets a 503 so the tag
(or the sender) retries.

Browser hits also get the first-party cookies of tagpipe.identity (client id, _fbp, _fbc, click ids),
as far as the hit's consent allows, and the raw hit carries the values the browser holds afterwards,
so the first hit already uses a newly minted _fbp. Only vendor and identity cookies are kept in the
raw hit (identity.forward_cookies): a shop's session cookie never reaches the queue or the store.
collect also serves the site tag (shared/tagpipe/sitetag) at paths.sitetag.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request, cookie_parser
from starlette.responses import JSONResponse, Response

from tagpipe import sitetag
from tagpipe.auth import RateLimiter, ServerAuth
from tagpipe.bots import BotFilter
from tagpipe.errors import InvalidInput, StoreUnavailable
from tagpipe.identity import CookieFilter, hit_consent, identity_config, plan_cookies, referenced_cookies
from tagpipe.models import FailedEvent, Outcome, OutcomeKind, RawHit
from tagpipe.monitoring.logs import register_secrets
from tagpipe.parsing import TEST_EVENT_CODE_HEADER, EventSketch, segment, shopify, validate_hit, woocommerce
from tagpipe.pipeline.outcomes import settle_outcomes
from tagpipe.privacy import mask_secret_params, privacy_config, scrub_text
from tagpipe.runtime import Runtime, get_runtime
from tagpipe.settings import secret
from tagpipe.transport.base import RAW_HITS

log = logging.getLogger("tagpipe.collect")

KEPT_HEADERS = (
    "user-agent", "referer", "origin", "accept-language", "content-type",
    "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "sec-ch-ua-full-version-list",
    "x-client-geo-country", "x-client-geo-region", "x-client-geo-city",
    "x-appengine-country", "x-appengine-region", "x-appengine-city", "cf-ipcountry",
    "sec-fetch-site", "sec-fetch-mode", TEST_EVENT_CODE_HEADER,
    *shopify.KEPT_HEADERS, *woocommerce.KEPT_HEADERS,
)


@dataclass(frozen=True)
class Ingress:
    """What one source does beyond collect's shared path; the defaults are gtag's and MP's."""

    # its own credential check on the raw hit (it may strip the credential from the body); None: the
    # [server] API key or signature on server-to-server paths
    check: Callable[[dict[str, str], RawHit], None] | None = None
    min_body_bytes: int = 0  # a body limit it needs above [server] max_body_bytes
    inflate: Callable[[bytes, str | None, int], bytes] | None = None  # a compressed body, within the limit
    cors_headers: str = ""  # request headers its browser clients send besides ours
    answer: dict[str, Any] | None = None  # None: 204; else 200 JSON with the event ids, these fields first
    record_empty: bool = False  # a request without events: recorded as webhook_ignored, not queued


_UNPLAIN = re.compile(r"[?#\\\t\r\n]")  # characters Request.url escapes or urlsplit strips


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _cors_for(origin: str) -> dict[str, str]:
    return {"access-control-allow-origin": origin, "access-control-allow-credentials": "true", "vary": "Origin"}


def _retry_after(cors: dict[str, str], seconds: int) -> dict[str, str]:
    """Retry-After, readable by a cross-origin tag (CORS exposes it only when told to)."""
    extra = {"access-control-expose-headers": "retry-after"} if cors else {}
    return {**cors, **extra, "retry-after": str(seconds)}


def request_headers(scope: dict) -> dict[str, str]:
    """The request headers in one pass over the ASGI scope (the first of repeated names wins, as
    starlette's Headers.get does); cheaper than one Headers lookup per header name."""
    out: dict[str, str] = {}
    for key, value in scope["headers"]:
        name = key.decode("latin-1")
        if name not in out:
            out[name] = value.decode("latin-1")
    return out


def forwarded_client(forwarded_for: str | None, trusted_proxies: int) -> str | None:
    """The client address as the outermost trusted proxy saw it: the trusted_proxies-th entry from
    the right of X-Forwarded-For (each proxy appends the address it was called from, so anything to
    the left of that entry is whatever the client wrote). None when the header cannot be trusted."""
    if not trusted_proxies or not forwarded_for:
        return None
    entries = [e.strip() for e in forwarded_for.split(",")]
    if len(entries) < trusted_proxies:  # the request did not come through all our proxies
        return None
    candidate = entries[-trusted_proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def path_and_query(request: Request) -> tuple[str, str]:
    """request.url.path and request.url.query, read from the scope without building a URL when
    nothing in them needs Request.url's escaping."""
    scope = request.scope
    path = scope["path"]
    query = scope.get("query_string", b"").decode()
    if path[:1] != "/" or path[:2] == "//" or _UNPLAIN.search(path) or _UNPLAIN.search(query):
        url = request.url
        return url.path, url.query
    return path, query


class Collector:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        cfg = runtime.config
        self.routes = {
            cfg.paths.gtag: ("gtag", {"GET", "POST"}),
            cfg.paths.mp: ("mp", {"POST"}),
            cfg.paths.events: ("json", {"POST"}),
            cfg.paths.shopify: ("shopify", {"POST"}),
            cfg.paths.woocommerce: ("woocommerce", {"POST"}),
        }
        if cfg.paths.segment_prefix:  # the Segment spec's calls (docs/segment.md), checked by their write key
            self.routes.update({f"{cfg.paths.segment_prefix}/{call}": ("segment", {"POST"}) for call in segment.ROUTES})
        self.ingress = self._ingress(cfg)
        self.health_path = cfg.paths.health
        self.sitetag_path = sitetag.sitetag_path(cfg)
        self.server = cfg.server
        self.allowed_origins = set(cfg.server.cors_origins)
        self.publish_inline = getattr(runtime.bus, "publish_is_fast", False)
        # group commit (LocalBus) or a publish that does not hold a thread while it waits
        self.publish_async = getattr(runtime.bus, "publish_async", None)
        self.identity = identity_config(cfg)
        self.tag_cookies = referenced_cookies(cfg)  # cookies [variables]/[triggers]/[tags] read
        self._cookie_filter = CookieFilter(self.identity, self.tag_cookies)
        self.debug_header = cfg.server.debug_header.lower()
        self.consent_default = cfg.consent.default == "granted"
        self.store_raw_pii = privacy_config(cfg).store_raw_pii
        self.bots = BotFilter.from_config(cfg)
        self.auth = ServerAuth(cfg.server.api_keys_env, cfg.server.hmac_secret_env)
        register_secrets(k.decode() for k in self.auth.keys + self.auth.hmac_secrets)
        self.browser_paths = self._browser_paths(cfg)
        self.limiter = RateLimiter(cfg.server.rate_limit_per_ip, cfg.server.rate_limit_burst)
        self.throttled = ThrottledTally()

    @staticmethod
    def _ingress(cfg) -> dict[str, Ingress]:
        keys_env = cfg.segment.write_keys_env
        write_keys = [k.strip() for k in secret(keys_env).split(",") if k.strip()]
        register_secrets(write_keys)

        def segment_check(headers: dict[str, str], raw: RawHit) -> None:  # its write key never reaches the queue
            raw.body = segment.authorize(headers, raw.body, write_keys, keys_env)

        def shop_check(module, secret_env: str) -> Callable[[dict[str, str], RawHit], None]:
            # shop order webhooks (docs/webhooks.md): the shop's signature over the raw body, before anything reads it
            value = secret(secret_env)
            register_secrets([value] if value else [])
            return lambda headers, raw: module.verify(headers, raw.body.encode(), value, secret_env)

        return {
            "gtag": Ingress(), "mp": Ingress(), "json": Ingress(answer={}),
            "segment": Ingress(check=segment_check, min_body_bytes=segment.MAX_BATCH_BYTES, inflate=segment.inflate,
                               cors_headers=", authorization, x-retry-count",  # analytics.js sends both
                               answer={"success": True}),  # Segment's own answer, which its SDKs expect
            "shopify": Ingress(check=shop_check(shopify, cfg.shopify.secret_env), answer={}, record_empty=True),
            "woocommerce": Ingress(check=shop_check(woocommerce, cfg.woocommerce.secret_env), answer={},
                                   record_empty=True),
        }  # fmt: skip

    def _browser_paths(self, cfg) -> frozenset[str]:
        """Browser endpoints by path, from the config: never from headers a client sets (Origin, Sec-Fetch-*)."""
        if cfg.server.browser_paths is not None:
            return frozenset(cfg.server.browser_paths) - {cfg.paths.mp, cfg.paths.shopify, cfg.paths.woocommerce}
        if self.auth.enabled:  # a key is configured: the JSON endpoint is server-to-server unless listed
            return frozenset({cfg.paths.gtag})
        return frozenset({cfg.paths.gtag, cfg.paths.events})

    def cors_headers(self, headers: dict[str, str]) -> dict[str, str]:
        origin = headers.get("origin")
        if not origin or (self.allowed_origins and origin not in self.allowed_origins):
            return {}
        return _cors_for(origin)

    async def __call__(self, request: Request) -> Response:
        path, query = path_and_query(request)
        if path == self.health_path:
            return _json(200, {"ok": True})
        method = request.scope["method"]
        if path == self.sitetag_path and method in ("GET", "HEAD"):
            return self._script(request)
        route = self.routes.get(path)
        if route is None:
            exc = InvalidInput("not_found", f"no collect endpoint at {path[:200]}", 404)
            self.refuse(exc, "http", "*", {"source": "http", "method": method, "path": path[:200]})
            return _json(404, exc.as_json())
        source, methods = route
        ingress = self.ingress[source]
        headers = request_headers(request.scope)
        cors = self.cors_headers(headers)
        if method == "OPTIONS":
            if "origin" in headers and not cors:
                return _json(403, {"ok": False, "error": "origin_not_allowed", "reason": "origin is not in server.cors_origins"})
            return Response(status_code=204, headers={
                **cors,
                "access-control-allow-methods": ", ".join(sorted(methods | {"OPTIONS"})),
                "access-control-allow-headers": f"content-type, {self.server.debug_header}, {TEST_EVENT_CODE_HEADER}"
                                                + ingress.cors_headers,
                "access-control-max-age": "86400",
            })
        browser = path in self.browser_paths
        try:
            client_ip = self._client_ip(request, headers)
            wait = self.limiter.allow(client_ip)
            if self.throttled.due():
                self._record_throttled()
            if wait:
                cors = _retry_after(cors, max(1, round(wait)))
                raise InvalidInput("rate_limited", "too many requests from this address; retry later", 429)
            if method not in methods:
                raise InvalidInput("method_not_allowed", f"{path} accepts {', '.join(sorted(methods))}", 405)
            if "origin" in headers and (self.allowed_origins or not headers["origin"]) and not cors:
                # readable by the refused page, so its tag sees a 403 and stops instead of retrying what
                # would look like a network error; the hit itself is refused, which is the allow-list's job
                cors = _cors_for(headers["origin"]) if headers["origin"] else {}
                raise InvalidInput("origin_not_allowed", "origin is not in server.cors_origins", 403)
            raw = await self._read(request, source, ingress, method, path, query, headers, client_ip)
            if ingress.check is not None:
                ingress.check(headers, raw)
            elif not browser:  # a server-to-server endpoint: the key or signature on every request
                self.auth.check(headers, raw.query, raw.body.encode(), method=method, path=path)
            raw.query = mask_secret_params(raw.query)  # checked; no credential is queued or stored
            events = validate_hit(raw)  # refuses what transform's parse_hit would; builds no Event
        except InvalidInput as exc:
            self.refuse(exc, source, path, {"source": source, "method": method, "path": path,
                                            "query": mask_secret_params(query[:2000])})
            return _json(exc.status, exc.as_json(), cors)
        # which cookies to set is no security decision, so here a browser's own headers may tell a page from a server
        looks_like_a_page = source == "gtag" or "origin" in headers or "sec-fetch-mode" in headers
        set_cookies = self._identity(headers, raw, events) if browser and looks_like_a_page else []
        try:
            if ingress.record_empty and not events:  # a topic or an order state that is no purchase or refund
                self._record_ignored(raw)
                return _json(200, {"ok": True, "hit_id": raw.hit_id, "events": 0, "event_ids": []})
            data = raw.model_dump_json().encode()
            if self.publish_async is not None:
                await self.publish_async(RAW_HITS, data)
            elif self.publish_inline:
                self.rt.bus.publish(RAW_HITS, data)
            else:
                from starlette.concurrency import run_in_threadpool

                await run_in_threadpool(self.rt.bus.publish, RAW_HITS, data)
        except StoreUnavailable as exc:
            log.error("collect could not queue a hit: %s", exc)
            return _json(503, {"ok": False, "error": "unavailable", "reason": "the queue is not writable; retry later"},
                         _retry_after(cors, 5))
        if ingress.answer is not None:
            response = _json(200, {**ingress.answer, "ok": True, "hit_id": raw.hit_id, "events": len(events),
                                   "event_ids": [e.event_id for e in events]}, cors)  # fmt: skip
        else:
            response = Response(status_code=204, headers=cors)
        if set_cookies:
            response.raw_headers += [(b"set-cookie", header.encode("latin-1")) for header in set_cookies]
            response.raw_headers.append((b"cache-control", b"no-store"))
        return response

    def _script(self, request: Request) -> Response:
        script = sitetag.render(self.rt.config.paths.events)
        headers = {"content-type": sitetag.CONTENT_TYPE, "cache-control": sitetag.CACHE_CONTROL,
                   "etag": script.etag, "x-content-type-options": "nosniff"}  # fmt: skip
        if request.headers.get("if-none-match") == script.etag:
            return Response(status_code=304, headers=headers)
        return Response(b"" if request.method == "HEAD" else script.body, headers=headers)

    def _identity(self, headers: dict[str, str], raw: RawHit, events: list[EventSketch]) -> list[str]:
        """Set-Cookie headers for this browser hit; adds the values the browser now holds to raw.cookies."""
        cfg = self.identity
        if not cfg.enabled or not events:
            return []
        if self.bots.cfg.enabled and self.bots.is_bot(raw.headers.get("user-agent")):
            return []
        host = headers.get("host", "")
        if self.server.forwarded_host and (fwd := headers.get("x-forwarded-host")):
            host = fwd.split(",")[-1].strip()  # the one our own proxy set (a client's own value comes first)
        page_url = next((e.page_url for e in events if e.page_url), None)
        # one event: its consent is the hit's (the cookie plan reads only the four purposes)
        consent = events[0].consent if len(events) == 1 else hit_consent(e.consent for e in events)
        plan = plan_cookies(
            cfg, host=host, cookies=raw.cookies, consent=consent,
            consent_default=self.consent_default, page_url=page_url, referer=raw.headers.get("referer"),
            hit_client_id=events[0].client_id, now=raw.received_at,
        )  # fmt: skip
        raw.cookies.update(plan.values)
        return plan.headers(raw.received_at)

    async def _read(self, request: Request, source: str, ingress: Ingress, method: str, path: str, query: str,
                    headers: dict[str, str], client_ip: str | None) -> RawHit:
        limit = max(self.server.max_body_bytes, ingress.min_body_bytes)
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise InvalidInput("body_too_large", f"body exceeds {limit} bytes", 413)
        text = ""
        if declared != "0" and (declared or "transfer-encoding" in headers):  # else HTTP/1.1 says no body
            body = b""
            seconds = self.server.body_timeout
            try:
                async with asyncio.timeout(seconds):  # a client that trickles its body holds a connection
                    async for chunk in request.stream():
                        body += chunk
                        if len(body) > limit:
                            raise InvalidInput("body_too_large", f"body exceeds {limit} bytes", 413)
            except TimeoutError:
                raise InvalidInput("request_timeout", f"the body did not arrive within {seconds:g} s", 408) from None
            except ClientDisconnect:  # an aborted upload: counted like any refusal, no traceback
                raise InvalidInput("client_disconnected", "the client closed the connection mid-body", 400) from None
            if ingress.inflate is not None:  # RudderStack's SDK gzips its batches
                body = ingress.inflate(body, headers.get("content-encoding"), limit)
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput("invalid_utf8", f"body is not valid UTF-8 (byte {exc.start})") from None
        if len(query) > limit:
            raise InvalidInput("query_too_large", f"query string exceeds {limit} bytes", 414)
        kept = {k: headers[k] for k in KEPT_HEADERS if k in headers}
        debug = headers.get(self.debug_header)
        if not debug and self.server.debug_param in query:
            debug = dict(parse_qsl(query)).get(self.server.debug_param)
        cookie_header = headers.get("cookie")
        cookies = self._cookies_kept().keep(cookie_parser(cookie_header)) if cookie_header else {}
        return RawHit(
            source=source, method=method, path=path, query=query, body=text,
            headers=kept, cookies=cookies, client_ip=client_ip, debug_token=debug or None,
        )

    def _record_ignored(self, raw: RawHit) -> None:
        """The one outcome of a shop webhook that carries nothing to deliver (another topic, an order not
        placed yet, WooCommerce's ping): filtered at the hit, never queued."""
        topic = raw.headers.get(shopify.TOPIC_HEADER) or raw.headers.get(woocommerce.TOPIC_HEADER) or "ping"
        settle_outcomes(self.rt.store, [Outcome(
            hit_id=raw.hit_id, outcome=OutcomeKind.FILTERED, reason="webhook_ignored",
            detail=f"{raw.source} webhook {topic[:60]!r}: no purchase or refund in it")], stage="collect")

    def _cookies_kept(self) -> CookieFilter:
        if self._cookie_filter.cfg is not self.identity:  # the identity config was replaced
            self._cookie_filter = CookieFilter(self.identity, self.tag_cookies)
        return self._cookie_filter

    def _client_ip(self, request: Request, headers: dict[str, str]) -> str | None:
        client = request.scope.get("client")
        peer = client[0] if client else None
        return forwarded_client(headers.get("x-forwarded-for"), self.server.trusted_proxies) or peer

    def refuse(self, exc: InvalidInput, source: str, path: str, request: dict) -> None:
        """Every refused request goes through here. Any refusal class can be flooded, so only the first
        ones of a window get a record each; the rest are counted per (source, path, reason) into the
        window's summary. `path`: the summary's key ("*" where a client chooses it, as for 404s)."""
        if self.throttled.due():
            self._record_throttled()
        if self.throttled.count(source, path, exc.code, exc.status):
            self._record_rejection(exc, request)

    def _record_throttled(self) -> None:
        """One record per (source, path, reason) for the refusals of a flood not recorded one by one."""
        for (source, path, code, status), (n, seconds) in self.throttled.drain().items():
            self._record_rejection(InvalidInput(
                code, f"{n} more requests to {path} refused ({code}, {status}) in {seconds:.0f} s "
                "(recorded as one; the first ones of the flood have records of their own)", status),
                {"source": source, "path": path, "requests": n}, count=n)

    def _record_rejection(self, exc: InvalidInput, request: dict, count: int = 1) -> None:
        """A failed-event record (`request`: what is kept of the refused request) and a rejected outcome
        standing for `count` requests."""
        from tagpipe.models import new_id

        hit_id = new_id()
        summary = json.dumps(request)
        if not self.store_raw_pii:
            summary = scrub_text(summary)
        try:
            self.rt.store.record_failures([FailedEvent(stage="collect", hit_id=hit_id, error_code=exc.code,
                                                       message=exc.message, payload=summary)])
            rejected = [Outcome(hit_id=hit_id, outcome=OutcomeKind.REJECTED, reason=exc.code, detail=exc.message)]
            # the log line Cloud Monitoring's collect rejection policy counts
            settle_outcomes(self.rt.store, rejected, stage="collect", weight=count)
        except StoreUnavailable as store_exc:
            log.error("collect could not record a rejected hit (%s): %s", exc.code, store_exc)


class ThrottledTally:
    """Refused requests (rate-limited, malformed, unauthorised, too large, ...), so that a flood cannot turn
    into a flood of records and log lines: the first `individually` refusals of each window get a record
    each; the rest are counted per (source, path, reason) and recorded as one summary when the window is
    over (at the next request that reaches collect)."""

    def __init__(self, window: float = 10.0, individually: int = 20, clock=time.monotonic) -> None:
        self.window, self.individually, self.clock = window, individually, clock
        self.started: float | None = None
        self.recorded = 0
        self.counts: dict[tuple[str, str, str, int], int] = {}

    def count(self, source: str, path: str, code: str, status: int) -> bool:
        """True: record this refusal on its own; False: it is counted in the window's summary."""
        if self.started is None:
            self.started = self.clock()
        if self.recorded < self.individually:
            self.recorded += 1
            return True
        key = (source, path, code, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        return False

    def due(self) -> bool:
        return self.started is not None and self.clock() - self.started >= self.window

    def drain(self) -> dict[tuple[str, str, str, int], tuple[int, float]]:
        seconds = self.clock() - self.started if self.started is not None else 0.0
        counts, self.counts, self.started, self.recorded = self.counts, {}, None, 0
        return {key: (n, seconds) for key, n in counts.items()}


_collector: Collector | None = None
_frozen = False


def collector() -> Collector:
    """The process's collector, built once (on the first request, or the first refused connection)."""
    global _collector
    if _collector is None or _collector.rt is not get_runtime():
        _collector = Collector(get_runtime())
        global _frozen
        if not _frozen:
            # The config, tags and runtime live as long as the process: out of the collector's way. Without
            # this, full collections walk them every few thousand hits (p99 under load 29-45 ms -> 9-24 ms,
            # docs/benchmarks.md). Once: a test process builds many runtimes.
            gc.freeze()
            _frozen = True
    return _collector


async def handle(request: Request) -> Response:
    """The collect function's body."""
    return await collector()(request)


def refuse_connection(code: str, message: str, status: int, path: str = "*") -> None:
    """A refusal below the app (the HTTP server timed a connection out): counted and recorded as any
    refused request, through the flood guard."""
    collector().refuse(InvalidInput(code, message, status), "http", "*", {"source": "http", "path": path[:200]})
