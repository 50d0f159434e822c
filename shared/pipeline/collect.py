"""collect: the public HTTP endpoint the site's tags send to.

It validates the hit (the same parser transform uses, so a hit that gets a 2xx will parse),
publishes the raw hit durably, and answers at once; it never waits on a vendor. Bad input gets a
4xx with a JSON reason and a failed-event record; a queue that cannot write gets a 503 so the tag
(or the sender) retries.

Browser hits also get the first-party cookies of shared.identity (client id, _fbp, _fbc, click ids),
as far as the hit's consent allows, and the raw hit carries the values the browser holds afterwards,
so the first hit already uses a newly minted _fbp. Only vendor and identity cookies are kept in the
raw hit (identity.forward_cookies): a shop's session cookie never reaches the queue or the store.
collect also serves the site tag (shared/sitetag) at paths.sitetag.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared import sitetag
from shared.auth import RateLimiter, ServerAuth
from shared.bots import BotFilter
from shared.errors import InvalidInput, StoreUnavailable
from shared.identity import forward_cookies, hit_consent, identity_config, plan_cookies, referenced_cookies
from shared.models import Event, FailedEvent, Outcome, OutcomeKind, RawHit
from shared.monitoring.logs import log_outcomes, register_secrets
from shared.parsing import parse_hit
from shared.privacy import privacy_config, scrub_text
from shared.runtime import Runtime, get_runtime
from shared.transport.base import RAW_HITS

log = logging.getLogger("tagpipe.collect")

KEPT_HEADERS = (
    "user-agent", "referer", "origin", "accept-language", "content-type",
    "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "sec-ch-ua-full-version-list",
    "x-client-geo-country", "x-client-geo-region", "x-client-geo-city",
    "x-appengine-country", "x-appengine-region", "x-appengine-city", "cf-ipcountry",
    "sec-fetch-site", "sec-fetch-mode",
)


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


class Collector:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        cfg = runtime.config
        self.routes = {
            cfg.paths.gtag: ("gtag", {"GET", "POST"}),
            cfg.paths.mp: ("mp", {"POST"}),
            cfg.paths.events: ("json", {"POST"}),
        }
        self.health_path = cfg.paths.health
        self.sitetag_path = sitetag.sitetag_path(cfg)
        self.server = cfg.server
        self.allowed_origins = set(cfg.server.cors_origins)
        self.publish_inline = getattr(runtime.bus, "publish_is_fast", False)
        self.identity = identity_config(cfg)
        self.tag_cookies = referenced_cookies(cfg)  # cookies [variables]/[triggers]/[tags] read
        self.consent_default = cfg.consent.default == "granted"
        self.store_raw_pii = privacy_config(cfg).store_raw_pii
        self.bots = BotFilter.from_config(cfg)
        self.auth = ServerAuth(cfg.server.api_keys_env, cfg.server.hmac_secret_env)
        register_secrets(k.decode() for k in self.auth.keys + self.auth.hmac_secrets)
        self.limiter = RateLimiter(cfg.server.rate_limit_per_ip, cfg.server.rate_limit_burst)

    def cors_headers(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if not origin or (self.allowed_origins and origin not in self.allowed_origins):
            return {}
        return {
            "access-control-allow-origin": origin,
            "access-control-allow-credentials": "true",
            "vary": "Origin",
        }

    async def __call__(self, request: Request) -> Response:
        path = request.url.path
        if path == self.health_path:
            return _json(200, {"ok": True})
        if path == self.sitetag_path and request.method in ("GET", "HEAD"):
            return self._script(request)
        route = self.routes.get(path)
        if route is None:
            return _json(404, {"ok": False, "error": "not_found", "reason": f"no collect endpoint at {path}"})
        source, methods = route
        cors = self.cors_headers(request)
        if request.method == "OPTIONS":
            if request.headers.get("origin") and not cors:
                return _json(403, {"ok": False, "error": "origin_not_allowed", "reason": "origin is not in server.cors_origins"})
            return Response(status_code=204, headers={
                **cors,
                "access-control-allow-methods": ", ".join(sorted(methods | {"OPTIONS"})),
                "access-control-allow-headers": f"content-type, {self.server.debug_header}",
                "access-control-max-age": "86400",
            })
        if request.method not in methods:
            return _json(405, {"ok": False, "error": "method_not_allowed",
                               "reason": f"{path} accepts {', '.join(sorted(methods))}"}, cors)
        if request.headers.get("origin") and self.allowed_origins and not cors:
            return _json(403, {"ok": False, "error": "origin_not_allowed", "reason": "origin is not in server.cors_origins"})
        try:
            wait = self.limiter.allow(self._client_ip(request))
            if wait:
                cors = {**cors, "retry-after": str(max(1, round(wait)))}
                raise InvalidInput("rate_limited", "too many requests from this address; retry later", 429)
            raw = await self._read(request, source)
            if not self._is_browser(request, source):
                self.auth.check(request.headers, raw.query, raw.body.encode())
            events = parse_hit(raw)
        except InvalidInput as exc:
            self._record_rejection(request, source, exc)
            return _json(exc.status, exc.as_json(), cors)
        set_cookies = self._identity(request, raw, events)
        try:
            data = raw.model_dump_json().encode()
            if self.publish_inline:
                self.rt.bus.publish(RAW_HITS, data)
            else:
                from starlette.concurrency import run_in_threadpool

                await run_in_threadpool(self.rt.bus.publish, RAW_HITS, data)
        except StoreUnavailable as exc:
            log.error("collect could not queue a hit: %s", exc)
            return _json(503, {"ok": False, "error": "unavailable", "reason": "the queue is not writable; retry later"},
                         {**cors, "retry-after": "5"})
        if source == "json":
            response = _json(200, {"ok": True, "hit_id": raw.hit_id, "events": len(events),
                                   "event_ids": [e.event_id for e in events]}, cors)
        else:
            response = Response(status_code=204, headers=cors)
        for header in set_cookies:
            response.headers.append("set-cookie", header)
        if set_cookies:
            response.headers["cache-control"] = "no-store"
        return response

    def _script(self, request: Request) -> Response:
        script = sitetag.render(self.rt.config.paths.events)
        headers = {"content-type": sitetag.CONTENT_TYPE, "cache-control": sitetag.CACHE_CONTROL,
                   "etag": script.etag, "x-content-type-options": "nosniff"}  # fmt: skip
        if request.headers.get("if-none-match") == script.etag:
            return Response(status_code=304, headers=headers)
        return Response(b"" if request.method == "HEAD" else script.body, headers=headers)

    def _is_browser(self, request: Request, source: str) -> bool:
        """A hit a browser sent (cookies mean something), not a server-to-server request."""
        if source == "mp":
            return False
        h = request.headers
        return source == "gtag" or "origin" in h or "sec-fetch-mode" in h

    def _identity(self, request: Request, raw: RawHit, events: list[Event]) -> list[str]:
        """Set-Cookie headers for this hit; adds the values the browser now holds to raw.cookies."""
        cfg = self.identity
        if not cfg.enabled or not events or not self._is_browser(request, raw.source):
            return []
        if self.bots.cfg.enabled and self.bots.is_bot(raw.headers.get("user-agent")):
            return []
        host = request.headers.get("host", "")
        if self.server.trust_forwarded_for and (fwd := request.headers.get("x-forwarded-host")):
            host = fwd.split(",")[0].strip()
        page_url = next((e.page.url for e in events if e.page.url), None)
        plan = plan_cookies(
            cfg, host=host, cookies=raw.cookies, consent=hit_consent(e.consent for e in events),
            consent_default=self.consent_default, page_url=page_url, referer=raw.headers.get("referer"),
            hit_client_id=events[0].client.client_id, now=raw.received_at,
        )  # fmt: skip
        raw.cookies.update(plan.values)
        return plan.headers(raw.received_at)

    async def _read(self, request: Request, source: str) -> RawHit:
        limit = self.server.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise InvalidInput("body_too_large", f"body exceeds {limit} bytes", 413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise InvalidInput("body_too_large", f"body exceeds {limit} bytes", 413)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("invalid_utf8", f"body is not valid UTF-8 (byte {exc.start})") from None
        query = request.url.query
        if len(query) > limit:
            raise InvalidInput("query_too_large", f"query string exceeds {limit} bytes", 414)
        headers = {k: request.headers[k] for k in KEPT_HEADERS if k in request.headers}
        debug = request.headers.get(self.server.debug_header)
        if not debug and self.server.debug_param in query:
            debug = dict(parse_qsl(query)).get(self.server.debug_param)
        return RawHit(
            source=source, method=request.method, path=request.url.path, query=query, body=text,
            headers=headers, cookies=forward_cookies(request.cookies, self.identity, self.tag_cookies),
            client_ip=self._client_ip(request), debug_token=debug or None,
        )

    def _client_ip(self, request: Request) -> str | None:
        if self.server.trust_forwarded_for:
            forwarded = request.headers.get("x-forwarded-for")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return request.client.host if request.client else None

    def _record_rejection(self, request: Request, source: str, exc: InvalidInput) -> None:
        from shared.models import new_id

        hit_id = new_id()
        summary = json.dumps({"source": source, "method": request.method, "path": request.url.path,
                              "query": request.url.query[:2000]})
        if not self.store_raw_pii:
            summary = scrub_text(summary)
        try:
            self.rt.store.record_failures([FailedEvent(stage="collect", hit_id=hit_id, error_code=exc.code,
                                                       message=exc.message, payload=summary)])
            rejected = [Outcome(hit_id=hit_id, outcome=OutcomeKind.REJECTED, reason=exc.code, detail=exc.message)]
            self.rt.store.record_outcomes(rejected)
            log_outcomes(rejected)  # the log line Cloud Monitoring's collect rejection policy counts
        except StoreUnavailable as store_exc:
            log.error("collect could not record a rejected hit (%s): %s", exc.code, store_exc)


_collector: Collector | None = None


async def handle(request: Request) -> Response:
    """The collect function's body: built once per process, on the first request."""
    global _collector
    if _collector is None or _collector.rt is not get_runtime():
        _collector = Collector(get_runtime())
    return await _collector(request)
