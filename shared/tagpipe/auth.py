"""Who may send to collect: API keys or HMAC signatures for server-to-server calls, and a per-IP
rate limit for everyone.

Browsers cannot keep a secret, so browser hits (gtag, the site tag) are held to the CORS origin
allow-list instead; a server-to-server call (no Origin header, or /mp/collect) must present one of
  Authorization: Bearer <key>  |  X-Api-Key: <key>  |  api_secret=<key> (GA4 MP's own parameter)
  X-Tagpipe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
when [server] api_keys_env / hmac_secret_env name environment variables that hold them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import OrderedDict
from urllib.parse import parse_qsl

from tagpipe.errors import ConfigError, InvalidInput

SIGNATURE_HEADER = "x-tagpipe-signature"
SIGNATURE_TOLERANCE = 300  # seconds a signature stays valid (replay window), as Stripe does


def _secret_list(env_name: str | None, key: str) -> list[str]:
    if not env_name:
        return []
    value = os.environ.get(env_name, "")
    secrets = [v.strip() for v in value.split(",") if v.strip()]
    if not secrets:
        raise ConfigError(key, f"environment variable {env_name} is not set",
                          f"export {env_name}=<key>[,<key>...] or remove {key}")
    return secrets


class ServerAuth:
    def __init__(self, api_keys_env: str | None, hmac_secret_env: str | None) -> None:
        self.keys = [k.encode() for k in _secret_list(api_keys_env, "server.api_keys_env")]
        self.hmac_secrets = [s.encode() for s in _secret_list(hmac_secret_env, "server.hmac_secret_env")]

    @property
    def enabled(self) -> bool:
        return bool(self.keys or self.hmac_secrets)

    def check(self, headers, query: str, body: bytes, now: float | None = None) -> None:
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
            self._check_signature(signature, body, time.time() if now is None else now)
            return
        raise InvalidInput("unauthorized", "server-to-server calls need an API key (Authorization: Bearer, "
                           "X-Api-Key or api_secret) or an X-Tagpipe-Signature", 401)

    def _check_signature(self, signature: str, body: bytes, now: float) -> None:
        parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
        try:
            stamp = int(parts.get("t", ""))
        except ValueError:
            raise InvalidInput("unauthorized", "X-Tagpipe-Signature needs t=<unix seconds>", 401) from None
        if abs(now - stamp) > SIGNATURE_TOLERANCE:
            raise InvalidInput("unauthorized", "X-Tagpipe-Signature is too old or from the future", 401)
        signed = str(stamp).encode() + b"." + body
        given = parts.get("v1", "").encode()
        for secret in self.hmac_secrets:
            expected = hmac.new(secret, signed, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(given, expected):
                return
        raise InvalidInput("unauthorized", "X-Tagpipe-Signature does not match the body", 401)


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
