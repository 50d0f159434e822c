"""Who may send to collect: API keys or HMAC signatures for server-to-server calls, and a per-IP
rate limit for everyone.

Browsers cannot keep a secret, so browser hits (gtag, the site tag) are held to the CORS origin
allow-list instead; a server-to-server call (no Origin header, or /mp/collect) must present one of
  Authorization: Bearer <key>  |  X-Api-Key: <key>  |  api_secret=<key> (GA4 MP's own parameter)
  X-Tagpipe-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256(secret, signed_message(...))>
  (signed: "<t>\n<METHOD>\n<path>\n<query>\n" + the raw body, so a signature is good for one
  request only; each one is accepted once within the 5-minute window)
when [server] api_keys_env / hmac_secret_env name environment variables that hold them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from urllib.parse import parse_qsl

from tagpipe.errors import ConfigError, InvalidInput
from tagpipe.settings import secret as secret_from_env

SIGNATURE_HEADER = "x-tagpipe-signature"
SIGNATURE_TOLERANCE = 300  # seconds a signature stays valid (replay window), as Stripe does


def _secret_list(env_name: str | None, key: str) -> list[str]:
    if not env_name:
        return []
    value = secret_from_env(env_name)
    secrets = [v.strip() for v in value.split(",") if v.strip()]
    if not secrets:
        raise ConfigError(key, f"environment variable {env_name} is not set",
                          f"export {env_name}=<key>[,<key>...] or remove {key}")
    return secrets


class ServerAuth:
    def __init__(self, api_keys_env: str | None, hmac_secret_env: str | None) -> None:
        self.keys = [k.encode() for k in _secret_list(api_keys_env, "server.api_keys_env")]
        self.hmac_secrets = [s.encode() for s in _secret_list(hmac_secret_env, "server.hmac_secret_env")]
        self.seen = SeenSignatures()

    @property
    def enabled(self) -> bool:
        return bool(self.keys or self.hmac_secrets)

    def check(self, headers, query: str, body: bytes, now: float | None = None, *, method: str = "POST",
              path: str = "/") -> None:
        """Raises InvalidInput(401) unless the request carries a valid key or signature."""
        if not self.enabled:
            return
        offered = headers.get("x-api-key") or ""
        auth = headers.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            offered = auth[7:].strip()
        if not offered and "api_secret=" in query:
            offered = dict(parse_qsl(query)).get("api_secret", "")
        if offered and any(hmac.compare_digest(offered.encode(), k) for k in self.keys):
            return
        signature = headers.get(SIGNATURE_HEADER)
        if signature and self.hmac_secrets:
            self._check_signature(signature, (method, path, query, body), time.time() if now is None else now)
            return
        raise InvalidInput("unauthorized", "server-to-server calls need an API key (Authorization: Bearer, "
                           "X-Api-Key or api_secret) or an X-Tagpipe-Signature", 401)

    def _check_signature(self, signature: str, request: tuple[str, str, str, bytes], now: float) -> None:
        parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
        try:
            stamp = int(parts.get("t", ""))
        except ValueError:
            raise InvalidInput("unauthorized", "X-Tagpipe-Signature needs t=<unix seconds>", 401) from None
        if abs(now - stamp) > SIGNATURE_TOLERANCE:
            raise InvalidInput("unauthorized", "X-Tagpipe-Signature is too old or from the future", 401)
        given = parts.get("v2", "").encode()
        if not given:
            raise InvalidInput("unauthorized", "X-Tagpipe-Signature needs v2=<hex HMAC-SHA256 of t, method, path, "
                               "query and body> (v1 signed the body only, so it could be replayed to any path)", 401)
        signed = signed_message(stamp, *request)
        for secret in self.hmac_secrets:
            expected = hmac.new(secret, signed, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(given, expected):
                if not self.seen.first_time(given, now):
                    raise InvalidInput("unauthorized", "X-Tagpipe-Signature was already used (a replay)", 401)
                return
        raise InvalidInput("unauthorized", "X-Tagpipe-Signature does not match the request", 401)


def signed_message(stamp: int, method: str, path: str, query: str, body: bytes) -> bytes:
    """What a v2 signature covers. HTTP forbids newlines in the method, path and query, so the
    fields cannot be shifted into one another."""
    return f"{stamp}\n{method.upper()}\n{path}\n{query}\n".encode() + body


class SeenSignatures:
    """Signatures accepted in the last SIGNATURE_TOLERANCE seconds: one of them again is a replay.
    Bounded (the oldest go first); per process, so a replay to another instance within the window is
    caught by the event_id dedup instead (a retried hit keeps its ids: parsing.hit_fingerprint)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[bytes, float] = OrderedDict()

    def first_time(self, signature: bytes, now: float) -> bool:
        while self.entries and next(iter(self.entries.values())) < now - SIGNATURE_TOLERANCE:
            self.entries.popitem(last=False)
        if signature in self.entries:
            return False
        self.entries[signature] = now
        if len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
        return True


class RateLimiter:
    """A token bucket per client IP: `rate` requests a second, bursts up to `burst`.

    Bounded memory: the least recently seen IPs are forgotten beyond `max_ips` (a forgotten IP
    starts again with a full bucket, which only errs towards letting traffic in).
    """

    def __init__(self, rate: float, burst: int, max_ips: int = 100_000) -> None:
        self.rate, self.burst, self.max_ips = rate, burst, max_ips
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, ip: str | None, now: float | None = None) -> float:
        """0.0 if this request may pass, else the seconds until it would."""
        if not self.enabled or not ip:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.pop(ip, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self.buckets[ip] = (tokens, now)
        if len(self.buckets) > self.max_ips:
            self.buckets.popitem(last=False)
        return wait
