"""What every input parser shares: limits, the per-hit context, ids, numbers, time and click ids.

Everything here is a pure function of its arguments: parse_hit must give the same events for the same
RawHit every time (collect validates with it, transform builds with it, replays must agree).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import unquote

from tagpipe.errors import InvalidInput
from tagpipe.models import Consent, RawHit
from tagpipe.parsing._iso4217 import CURRENCIES

# --------------------------------------------------------------------------- limits

MAX_GTAG_EVENTS = 50  # body lines in one /g/collect request (gtag batches far fewer)
MAX_BATCH_EVENTS = 500  # events in one MP or JSON request
MAX_PARAMS_PER_EVENT = 500  # parameters of one event (gtag: URL + line params merged)
MAX_ITEMS_PER_EVENT = 200  # gtag numbers items pr1..pr200
MAX_VALUE_BYTES = 8 * 1024  # one value (UTF-8 bytes)
SAFE_CHARS = MAX_VALUE_BYTES // 4  # a str this short can never exceed MAX_VALUE_BYTES

STATUS_TOO_LARGE = 413

# timestamps outside [MIN_TIMESTAMP, now + MAX_FUTURE_SKEW_SECONDS] are refused (invalid_timestamp)
MIN_TIMESTAMP = 946_684_800.0  # 2000-01-01T00:00:00Z
MAX_FUTURE_SKEW_SECONDS = 24 * 3600.0
MS_THRESHOLD = 1e11  # a JSON number above this is unix milliseconds (1e11 s is the year 5138)

# event_id = uuid5(EVENT_ID_NAMESPACE, "<hit_id>:<index>") when the hit carries none
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/tagpipe/tagpipe/event_id")

# headers never copied into Event.headers
_DROP_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})

# load-balancer / CDN geo headers, first non-empty wins. GCP external HTTP(S) LB custom headers are
# named by whoever configures them; x-client-geo-* and x-client-geo-location ("{client_region},{client_city}")
# follow Google's documentation example. The others are the platforms' fixed names.
GEO_HEADERS: dict[str, tuple[str, ...]] = {
    "country": (
        "x-client-geo-country",
        "x-appengine-country",
        "cf-ipcountry",
        "cloudfront-viewer-country",
        "x-vercel-ip-country",
    ),
    "region": (
        "x-client-geo-region",
        "x-client-geo-subdivision",
        "x-appengine-region",
        "cf-region-code",
        "cloudfront-viewer-country-region",
        "x-vercel-ip-country-region",
    ),
    "city": (
        "x-client-geo-city",
        "x-appengine-city",
        "cf-ipcity",
        "cloudfront-viewer-city",
        "x-vercel-ip-city",
    ),
}
_GEO_UNKNOWN = frozenset({"", "?", "XX", "ZZ", "zz", "xx", "T1"})  # unknown / Tor markers

# page-URL query parameters that are click ids (URL wins over cookies)
URL_CLICK_IDS = frozenset(("fbclid", "gclid", "gbraid", "wbraid", "ttclid", "dclid", "epik", "ScCid", "rdt_cid",
                           "li_fat_id", "msclkid"))  # fmt: skip
# the ClickIds field of a URL parameter whose name differs (Snapchat's ScCid is sent as user_data.sc_click_id)
URL_CLICK_ID_FIELDS = {"ScCid": "sc_click_id"}
# substrings one of which every click id parameter name contains: a query without any has no click id
_CLICK_ID_MARKERS = re.compile("clid|braid|epik|ScCid|rdt_cid|li_fat_id|msclkid")
# first-party cookies that hold a click or browser id as it came, cookie name -> ClickIds field
# (Pinterest _epik: stape-io/pinterest-tag template.js; Snapchat _scclid / _scid: stape-io/snapchat-tag;
# Reddit _rdt_cid / _rdt_uuid: stape-io/reddit-tag; LinkedIn li_fat_id: stape-io/linkedin-tag; Microsoft
# _uetvid: stape-io/microsoft-capi-tag)
PLAIN_ID_COOKIES = {"_epik": "epik", "_scclid": "sc_click_id", "_scid": "sc_cookie1", "_rdt_cid": "rdt_cid",
                    "_rdt_uuid": "rdt_uuid", "li_fat_id": "li_fat_id", "_uetvid": "uet_vid"}  # fmt: skip

ECOMMERCE_NUMBERS = ("value", "tax", "shipping")
ECOMMERCE_STRINGS = ("transaction_id", "coupon", "currency")


class EventSketch(NamedTuple):
    """What collect needs of one event of a hit it accepted (the cookie plan and its answer), without
    the Event. event_id is None where collect does not answer with event ids (gtag: a 204)."""

    page_url: str | None
    consent: Consent
    client_id: str | None
    event_id: str | None = None


# --------------------------------------------------------------------------- errors


def fail(code: str, message: str, status: int = 400) -> InvalidInput:
    return InvalidInput(code, message, status)


def too_large(path: str) -> InvalidInput:
    return fail(
        "value_too_large", f"{path} is longer than {MAX_VALUE_BYTES} bytes; shorten it", STATUS_TOO_LARGE
    )


def check_size(path: str, value: str) -> str:
    """Refuse a string over MAX_VALUE_BYTES (UTF-8). Cheap for the usual short value."""
    n = len(value)
    if n > SAFE_CHARS and (
        n > MAX_VALUE_BYTES or (not value.isascii() and len(value.encode()) > MAX_VALUE_BYTES)
    ):
        raise too_large(path)
    return value


def short(name: str, limit: int = 60) -> str:
    """A parameter *name* for an error message (names, never values; cut so a huge key stays readable)."""
    name = name if len(name) <= limit else name[:limit] + "..."
    return repr(name)


def ensure_text(where: str, text: str) -> None:
    """A str that holds lone surrogates (bytes decoded with surrogateescape) is not UTF-8 text."""
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise fail("invalid_utf8", f"the {where} is not valid UTF-8") from None


# --------------------------------------------------------------------------- values


def parse_number(s: str) -> int | float | None:
    """'3' -> 3, '30.03' -> 30.03, '1e+21' -> 1e21; None if not a finite number."""
    try:
        if s.isdigit() or (s[:1] == "-" and s[1:].isdigit()):
            return int(s)
        f = float(s)
    except ValueError:  # also int() of more than 4300 digits
        return None
    return f if math.isfinite(f) else None


CURRENCY_RULE = "must be a 3-letter ISO 4217 code such as EUR or USD"


def currency_code(value: str) -> str | None:
    """The ISO 4217 code of a currency as an ingress received it ('eur ' -> 'EUR'), or None. The one rule
    every ingress applies (gtag `cu` / `ep.currency`, MP `params.currency`, the JSON API `currency`), so
    "US$" is refused wherever it comes from instead of reaching Meta as "us$". Meta: currency is ISO 4217
    ([doc] custom-data parameters; the SDK only lowercases and checks 3 letters, [sdk] custom_data.py);
    GA4: "Currency ... in 3-letter ISO 4217 format" ([doc] GA4 recommended events reference)."""
    code = value.strip().upper()
    return code if code in CURRENCIES else None


def parse_currency(path: str, value: str) -> str:
    """currency_code, or refuse the event naming the parameter (never the value)."""
    code = currency_code(value)
    if code is None:
        raise fail("invalid_field", f"{path} {CURRENCY_RULE}")
    return code


def finite_float(v: int | float) -> float | None:
    """float(v) if finite (a JSON integer can be too big for a float: OverflowError)."""
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def parse_int(s: str | None) -> int | None:
    if not s:
        return None
    n = parse_number(s)
    if n is None or isinstance(n, float) and not n.is_integer():
        return None
    return int(n)


def truthy(s: Any) -> bool:
    if isinstance(s, bool):
        return s
    if isinstance(s, (int, float)):
        return s != 0
    return isinstance(s, str) and s.strip().lower() in ("1", "true", "yes", "on")


_NS_BYTES = EVENT_ID_NAMESPACE.bytes


def hit_fingerprint(raw: RawHit) -> str:
    """What a hit says, whoever sends it again: source, method, path, query and body; not its hit_id,
    arrival time or client address. A client's retry or an attacker's replay of the same request gets
    the same generated event_ids, so deliver sends it once (issue 14: 3 replays were 3 purchases)."""
    h = hashlib.sha256()
    for part in (raw.source, raw.method, raw.path, raw.query):
        h.update(part.encode("utf-8", "surrogatepass") + b"\n")
    h.update(raw.body.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def event_id_for(key: str, index: int) -> str:
    """The deterministic event_id of event `index` of the hit whose fingerprint is `key`.

    Equal to str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{key}:{index}")), without building UUID objects.
    """
    h = bytearray(hashlib.sha1(_NS_BYTES + f"{key}:{index}".encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def check_ip(path: str, value: str) -> str:
    value = value.strip()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise fail("invalid_field", f"{path} is not an IPv4 or IPv6 address") from None
    return value


# Meta capi-param-builder nodejs/src/ParamBuilder.js _isPrivateIPv4 / _isPrivateIPv6: the ranges it never
# sends as client_ip_address (unspecified added: 0.0.0.0 and :: name no client). Not ipaddress.is_global,
# which also drops the documentation and shared (CGNAT) ranges Meta's builder keeps.
_NOT_CLIENT_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/32",
              "::1/128", "fe80::/10", "fc00::/7", "::/128")
)  # fmt: skip


@lru_cache(maxsize=4096)  # the same visitors' addresses hit after hit
def _public_ip(value: str) -> tuple[int, str] | None:
    """(IP version, compressed form) of a public address, else None."""
    try:
        ip = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in net for net in _NOT_CLIENT_NETS if net.version == ip.version):
        return None
    return ip.version, str(ip)


def fbi_cookie_ip(value: str | None) -> str | None:
    """The address in Meta's `_fbi` cookie (written by the client-side parameter builder, ideally with the
    visitor's IPv6): '<ip>.<appendix>', the appendix a 2-char language token or 8 characters
    (ParamBuilder.js _removeLanguageToken)."""
    if not value:
        return None
    head, dot, tail = value.rpartition(".")
    if dot and (tail in ("AQ", "Ag", "Aw", "BA", "BQ", "Bg") or len(tail) == 8):
        return head
    return value


def best_client_ip(*candidates: str | None) -> str | None:
    """The client address vendors get: the first public IPv6 of `candidates`, else the first public
    IPv4, never a private, loopback or link-local one (Meta ParamBuilder.js _getClientIp: "IPv6 over
    IPv4, public over private, cookie-sourced IPs over request-sourced IPs"; a private address matches
    nobody). Returned in its compressed form."""
    fallback = None
    for candidate in candidates:
        ip = _public_ip(candidate) if candidate else None
        if ip is None:
            continue
        if ip[0] == 6:
            return ip[1]
        fallback = fallback or ip[1]
    return fallback


def check_timestamp(path: str, ts: float, now: float) -> float:
    if not math.isfinite(ts) or ts < MIN_TIMESTAMP or ts > now + MAX_FUTURE_SKEW_SECONDS:
        raise fail(
            "invalid_timestamp",
            f"{path} must be a time between 2000-01-01 and {int(MAX_FUTURE_SKEW_SECONDS // 3600)} h after "
            "the request was received (unix seconds, unix milliseconds or ISO 8601)",
        )
    return ts


def parse_json_timestamp(path: str, value: Any, now: float) -> float:
    """JSON API `timestamp`: unix seconds, unix ms (> 1e11), a numeric string of either, or ISO 8601."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise fail("invalid_timestamp", f"{path} must be a number or an ISO 8601 string")
    if isinstance(value, str):
        text = value.strip()
        num = parse_number(text) if text else None
        if num is None:
            try:
                dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
            except ValueError:
                raise fail(
                    "invalid_timestamp",
                    f"{path} is neither a number nor an ISO 8601 date-time (e.g. 2025-05-01T12:00:00Z)",
                ) from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)  # documented: a naive ISO time is UTC
            return check_timestamp(path, dt.timestamp(), now)
        value = num
    ts = finite_float(value)
    if ts is None:
        return check_timestamp(path, math.inf, now)
    if ts > MS_THRESHOLD:
        ts /= 1000.0
    return check_timestamp(path, ts, now)


# --------------------------------------------------------------------------- URLs and click ids


def query_of(url: str) -> str:
    """The query string of a URL ('' if none), without urlsplit's cost."""
    q = url.find("?")
    if q < 0:
        return ""
    h = url.find("#", q)
    return url[q + 1 :] if h < 0 else url[q + 1 : h]


def hostname_of(url: str) -> str | None:
    start = url.find("//")
    if start < 0:
        return None
    start += 2
    end = len(url)
    for ch in "/?#":
        i = url.find(ch, start)
        if 0 <= i < end:
            end = i
    host = url[start:end].rpartition("@")[2]
    if host.startswith("["):  # [::1]:8080
        return host[: host.find("]") + 1] or None
    return host.partition(":")[0].lower() or None


def click_ids_from_url(url: str | None) -> dict[str, str]:
    """fbclid/gclid/... from a page URL's query, decoded once, byte-for-byte otherwise."""
    if not url:
        return {}
    qs = query_of(url)
    if not qs or not _CLICK_ID_MARKERS.search(qs):
        return {}
    found: dict[str, str] = {}
    for part in qs.split("&"):
        k, _, v = part.partition("=")
        if k in URL_CLICK_IDS and v:
            k = URL_CLICK_ID_FIELDS.get(k, k)
            if k in found:
                continue
            if "%" in v or "+" in v:
                v = unquote(v.replace("+", " "))
            found[k] = v
    return found


def _ga_client_id(cookie: str) -> str | None:
    # _ga = GA1.1.<random>.<first-visit seconds>: the client id is the last two parts
    parts = cookie.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 and all(parts[-2:]) else None


def cookie_click_ids(cookies: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if v := cookies.get("_fbp"):
        out["fbp"] = v
    if v := cookies.get("_fbc"):
        out["fbc"] = v
    if v := cookies.get("_gcl_aw"):  # GCL.<seconds>.<gclid>
        last = v.rpartition(".")[2]
        if last:
            out["gclid"] = last
    if v := cookies.get("_ttp"):
        out["ttp"] = v
    if v := cookies.get("ttclid"):
        out["ttclid"] = v
    for name, field in PLAIN_ID_COOKIES.items():
        if v := cookies.get(name):
            out[field] = v
    if v := cookies.get("_uetmsclkid"):  # UET writes "_uet" + msclkid (stape-io/microsoft-capi-tag getClickId)
        out["msclkid"] = v.removeprefix("_uet")
    return out


def geo_from_headers(headers: dict[str, str]) -> dict[str, str]:
    geo: dict[str, str] = {}
    for field, names in GEO_HEADERS.items():
        for name in names:
            v = headers.get(name)
            if v is not None:
                v = v.strip()
                if v not in _GEO_UNKNOWN:
                    geo[field] = v
                    break
    if ("country" not in geo or "city" not in geo) and (loc := headers.get("x-client-geo-location")):
        country, _, city = loc.partition(",")
        country, city = country.strip(), city.strip()
        if country and country not in _GEO_UNKNOWN:
            geo.setdefault("country", country)
        if city and city not in _GEO_UNKNOWN:
            geo.setdefault("city", city)
    return geo


def check_request_text(raw: RawHit) -> None:
    """Headers and cookies must be UTF-8 text (raises invalid_utf8): the check HitContext makes."""
    for where, mapping in (("header", raw.headers), ("cookie", raw.cookies)):
        for key, value in mapping.items():
            if not (key.isascii() and value.isascii()):
                ensure_text(f"{where} {short(key)}", key + value)


def ga_cookie_client_id(cookies: dict[str, str]) -> str | None:
    """HitContext.ga_client_id: the client id in the _ga cookie."""
    ga = cookies.get("_ga") if cookies else None
    return _ga_client_id(ga) if ga else None


class HitContext:
    """What the request itself says about the client, computed once per hit (not per event)."""

    __slots__ = (
        "ip",
        "user_agent",
        "geo",
        "cookie_ids",
        "ga_client_id",
        "headers",
        "cookies",
        "debug",
        "debug_token",
        "_raw",
        "_event_key",
    )

    def __init__(self, raw: RawHit) -> None:
        headers = raw.headers
        cookies = raw.cookies
        check_request_text(raw)
        self.ip = best_client_ip(fbi_cookie_ip(cookies.get("_fbi")) if cookies else None, raw.client_ip)
        self.user_agent = headers.get("user-agent") or None
        self.geo = geo_from_headers(headers) if headers else {}
        self.cookie_ids = cookie_click_ids(cookies) if cookies else {}
        self.ga_client_id = ga_cookie_client_id(cookies)
        self.headers = {k: v for k, v in headers.items() if k not in _DROP_HEADERS}
        self.cookies = cookies
        self.debug_token = raw.debug_token or None
        self.debug = bool(raw.debug_token)
        self._raw = raw
        self._event_key: str | None = None

    @property
    def event_key(self) -> str:
        """hit_fingerprint of the hit, computed once and only if an event lacks an id."""
        if self._event_key is None:
            self._event_key = hit_fingerprint(self._raw)
        return self._event_key


def click_ids(
    ctx: HitContext, page_url: str | None, explicit: dict[str, str] | None = None
) -> dict[str, str]:
    """explicit (the hit says so) > page URL query > cookies.

    A _fbc cookie whose fbclid differs from a fresh fbclid in the URL is stale: it is dropped, so the
    destination builds a new fbc from click_ids.fbclid (VENDORS.md §6 rule 6).
    """
    ids = dict(ctx.cookie_ids)
    from_url = click_ids_from_url(page_url)
    if from_url:
        ids.update(from_url)
        fbc = ids.get("fbc")
        if fbc and "fbclid" in from_url and fbc_click_id(fbc) != from_url["fbclid"]:
            del ids["fbc"]
    if explicit:
        ids.update(explicit)
    return ids


def fbc_click_id(fbc: str) -> str | None:
    """fb.<subdomainIndex>.<creationTimeMs>.<fbclid>[.<appendix>] -> fbclid."""
    parts = fbc.split(".", 3)
    return parts[3].split(".", 1)[0] if len(parts) == 4 else None


# --------------------------------------------------------------------------- experiments


def take_experiments(params: dict[str, Any], into: dict[str, str]) -> None:
    """Move experiment params out of `params` into `into` (id -> variant).

    experiment_id + variant_id (both present) -> {experiment_id: variant_id};
    exp_<id> = <variant> -> {<id>: variant}; an `experiments` object is handled by the caller.
    """
    if "experiment_id" in params and "variant_id" in params:
        exp, var = params.pop("experiment_id"), params.pop("variant_id")
        if exp is not None and var is not None and str(exp):
            into[str(exp)] = str(var)
    for key in [k for k in params if k.startswith("exp_") and len(k) > 4]:
        var = params.pop(key)
        if var is not None:
            into[key[4:]] = str(var)


def given_event_id(event_id: Any) -> str | None:
    """The event id the hit carries (None: absent or empty, so event_id_for makes one)."""
    if event_id is None:
        return None
    return str(event_id) or None


def event_base(
    raw: RawHit, ctx: HitContext, index: int, event_id: Any, name: str, ts: float
) -> dict[str, Any]:
    """The fields every source fills the same way."""
    given = given_event_id(event_id)
    return {
        "event_uid": f"{raw.hit_id}:{index}",
        "hit_id": raw.hit_id,
        "event_id": given or event_id_for(ctx.event_key, index),
        "event_id_generated": given is None,
        "name": name,
        "timestamp": ts,
        "source": raw.source,
        "debug_token": ctx.debug_token,
        "cookies": ctx.cookies,
        "headers": ctx.headers,
    }
