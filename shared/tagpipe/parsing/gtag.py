"""gtag.js v2 hits (`/g/collect`): URL query = shared params, body = zero or more event lines.

Protocol facts (no official spec; reverse-engineered and cross-checked, see tests/fixtures/gtag/README.md):
- body lines split on \\r?\\n, trimmed, empty ones skipped; each line's params override the URL's
  (d8a-tech/d8a pkg/protocol/ga4/protocol.go). Empty body: the one event is in the URL.
- split on '&' first, then percent-decode. '+' decodes to a space, as Go's url.ParseQuery does in
  d8a and foomo/sesamy-go (gtag itself always sends %20 / %2B, so this only matters for other senders).
  Within one param string the first occurrence of a key wins (Go's Values.Get).
- items prN: '~'-joined segments of a 2-char code + value; custom item params are k<i><name> / v<i><value>
  pairs ('va' is item_variant, so a k/v needs a digit after it). Decoded once with the whole value.
- uafvl is double-encoded: after the query decode, each '|'-separated brand needs a second decode.
- consent: gcs = G1<ad_storage><analytics_storage>; gcd letters at positions 2, 4, 6, 8 (ad_storage,
  analytics_storage, ad_user_data, ad_personalization). Where gcs and gcd disagree, denied wins.
- enhanced conversions: em=tv.1~em.<sha256>~pn.<sha256>~fn0.~ln0.~sa0.~pc0.~co0. with base64url or
  hex hashes and e<digits> error codes (google-ads-confidential-computing/confidential-match
  EnhancedMatchMapper.java); ep.user_data.* plain fields (as sent to server containers) win over em.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from tagpipe.models import Consent, Event, RawHit

from ._common import (
    ECOMMERCE_NUMBERS,
    MAX_GTAG_EVENTS,
    MAX_ITEMS_PER_EVENT,
    MAX_PARAMS_PER_EVENT,
    SAFE_CHARS,
    STATUS_TOO_LARGE,
    EventSketch,
    HitContext,
    check_ip,
    check_request_text,
    check_size,
    click_ids,
    ensure_text,
    event_base,
    fail,
    finite_float,
    ga_cookie_client_id,
    hostname_of,
    parse_currency,
    parse_int,
    parse_number,
    short,
    take_experiments,
    truthy,
)

SUPPORTED_VERSION = "2"

# client hints -> ClientContext.client_hints keys (navigator.userAgentData high-entropy names, snake_case)
CLIENT_HINTS = {
    "uaa": "architecture",
    "uab": "bitness",
    "uafvl": "full_version_list",
    "uamb": "mobile",
    "uam": "model",
    "uap": "platform",
    "uapv": "platform_version",
    "uaw": "wow64",
}

# item segment code -> Item field (d8a columns_items.go, sesamy-go item.go)
ITEM_CODES = {
    "id": "item_id",
    "nm": "item_name",
    "af": "affiliation",
    "cp": "coupon",
    "ds": "discount",
    "lp": "index",
    "br": "item_brand",
    "ca": "item_category",
    "c2": "item_category2",
    "c3": "item_category3",
    "c4": "item_category4",
    "c5": "item_category5",
    "li": "item_list_id",
    "ln": "item_list_name",
    "va": "item_variant",
    "lo": "location_id",
    "pr": "price",
    "qt": "quantity",
    "cn": "creative_name",
    "cs": "creative_slot",
    "pi": "promotion_id",
    "pn": "promotion_name",
}
_ITEM_FLOATS = frozenset({"discount", "price", "quantity"})

# gcd letter -> final state (default/update): l not set, p/q/m/u denied, t/r/n/v granted
GCD_LETTERS: dict[str, bool | None] = {
    "l": None,
    "p": False,
    "q": False,
    "m": False,
    "u": False,
    "t": True,
    "r": True,
    "n": True,
    "v": True,
}
GCD_POSITIONS = (("ad_storage", 2), ("analytics_storage", 4), ("ad_user_data", 6), ("ad_personalization", 8))
CONSENT_RAW_KEYS = ("gcs", "gcd", "npa", "dma", "dma_cps", "gcu", "gcut")

# ep.user_data.<key> -> (UserData field | "address.<field>")
USER_DATA_KEYS = {
    "email": "email",
    "email_address": "email",
    "sha256_email_address": "email",
    "phone": "phone",
    "phone_number": "phone",
    "sha256_phone_number": "phone",
    "first_name": "address.first_name",
    "sha256_first_name": "address.first_name",
    "last_name": "address.last_name",
    "sha256_last_name": "address.last_name",
    "street": "address.street",
    "sha256_street": "address.street",
    "city": "address.city",
    "region": "address.region",
    "postal_code": "address.postal_code",
    "country": "address.country",
    "gender": "gender",
    "date_of_birth": "date_of_birth",
    "external_id": "external_id",
    # Meta-only keys, under Meta's names and ours (the JSON API's): ids sent as given, partial name/birth
    # date keys hashed as Meta's SDK does (destinations/meta.py)
    **{key: key for key in ("lead_id", "subscription_id", "fb_login_id", "page_id", "first_name_prefix",
                            "last_name_prefix", "first_initial", "birth_day", "birth_month", "birth_year")},
    "f5first": "first_name_prefix", "f5last": "last_name_prefix", "fi": "first_initial",
    "dobd": "birth_day", "dobm": "birth_month", "doby": "birth_year",
}  # fmt: skip
# em=tv.1~<key>.<value>: hashed keys and the plain ones (index 0 of the address only)
EM_KEYS = {
    "em": ("email", True),
    "pn": ("phone", True),
    "fn0": ("address.first_name", True),
    "ln0": ("address.last_name", True),
    "sa0": ("address.street", True),  # seen in captures, not in Google's mapper: [unverified]
    "pc0": ("address.postal_code", False),
    "co0": ("address.country", False),
}

# ep.<name> consumed into Event fields instead of params
_EP_CONSUMED = frozenset(
    {"event_id", "debug_mode", "test_event_code", "transaction_id", "coupon", "currency"}
)


# --------------------------------------------------------------------------- decoding


def _unquote(s: str) -> str:
    """%XX -> UTF-8 (no '+' rule), via the C escape decoder; falls back to urllib for malformed input."""
    try:
        return codecs.escape_decode(s.replace("\\", "\\\\").replace("%", "\\x").encode())[0].decode()
    except ValueError as e:
        if isinstance(e, UnicodeDecodeError):
            raise
        return unquote(s, errors="strict")


def percent_decode(s: str) -> str:
    """Form-decode one value: '+' is a space, %XX are UTF-8 bytes (UnicodeDecodeError if not UTF-8).

    Same result as urllib.parse.unquote_plus(s, errors="strict") (a malformed escape like '%zz' stays
    as it is, like browsers' URLSearchParams), ~6x faster: the %XX -> byte step runs in C.
    """
    if "+" in s:
        s = s.replace("+", " ")
    return _unquote(s) if "%" in s else s


def _decode(s: str, key: str, where: str) -> str:
    try:
        return percent_decode(s)
    except UnicodeDecodeError:
        what = f"a parameter name in the {where}" if not key else f"parameter {short(key)} in the {where}"
        raise fail("invalid_utf8", f"{what} is not valid UTF-8 after percent-decoding") from None


def parse_params(text: str, where: str) -> dict[str, str]:
    """'a=1&b=x%20y' -> {'a': '1', 'b': 'x y'}; first occurrence of a key wins."""
    out: dict[str, str] = {}
    small = len(text) <= SAFE_CHARS  # then no key or value can be too large (decoding never lengthens)
    for part in text.split("&"):
        key, _, value = part.partition("=")
        if "%" in part or "+" in part:
            if "%" in key or "+" in key:
                key = _decode(key, "", where)
            if not key or key in out:
                continue
            if "%" in value or "+" in value:
                value = _decode(value, key, where)
        elif not key or key in out:
            continue
        if not small and (len(value) > SAFE_CHARS or len(key) > SAFE_CHARS):
            check_size(f"parameter {short(key)} in the {where}", key)
            check_size(f"parameter {short(key)} in the {where}", value)
        out[key] = value
    if len(out) > MAX_PARAMS_PER_EVENT:
        raise fail(
            "too_many_params",
            f"the {where} has {len(out)} parameters; at most {MAX_PARAMS_PER_EVENT} are accepted",
            STATUS_TOO_LARGE,
        )
    return out


# --------------------------------------------------------------------------- pieces


_HEX = frozenset("0123456789abcdefABCDEF")
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _b64_or_hex_sha256(value: str) -> str | None:
    """A SHA-256 sent as base64url (43 chars, or 44 with '=') or hex (64) -> lowercase hex, else None."""
    if len(value) == 64:
        return value.lower() if _HEX.issuperset(value) else None
    if len(value) == 44 and value[-1] == "=":
        value = value[:-1]
    if len(value) == 43 and _B64URL.issuperset(value):
        try:
            raw = base64.urlsafe_b64decode(value + "=")
        except (binascii.Error, ValueError):
            return None
        return raw.hex() if len(raw) == 32 else None
    return None


def _em_user_data(em: str, into: dict[str, Any]) -> None:
    tokens = em.split("~")
    if not tokens or tokens[0] != "tv.1":
        return  # Google's own mapper refuses any other tag version
    for token in tokens[1:]:
        key, dot, value = token.partition(".")
        spec = EM_KEYS.get(key)
        if not dot or not value or spec is None or "." in value:
            continue
        field, hashed = spec
        if value[0] == "e" and value[1:].isdigit():
            continue  # an error code (e.g. e2): the tag could not read the field
        if hashed:
            value = _b64_or_hex_sha256(value)
            if value is None:
                continue
        into.setdefault(field, value)  # the first of repeated keys wins


def _set_user_field(user: dict[str, Any], field: str, value: str) -> None:
    if field.startswith("address."):
        user.setdefault("address", {}).setdefault(field[8:], value)
    else:
        user.setdefault(field, value)


def _user_data_param(key: str, value: str, user: dict[str, Any]) -> None:
    """ep.user_data.<key>: email, phone_number, address.first_name, address.0.first_name, sha256_..."""
    if not value:
        return
    if key.startswith("address."):
        rest = key[8:]
        idx, dot, sub = rest.partition(".")
        if dot and idx.isdigit():  # address.<n>.<field>: keep the first address only
            if idx != "0":
                return
            rest = sub
        field = USER_DATA_KEYS.get(rest)
        if field and field.startswith("address."):
            _set_user_field(user, field, value)
        return
    field = USER_DATA_KEYS.get(key)
    if field:
        _set_user_field(user, field, value)


def parse_item(text: str) -> dict[str, Any]:
    """'idSKU~nmTee~pr10.01~qt3~k0color~v0green' -> Item fields + custom."""
    item: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    keys: dict[str, str] = {}  # custom index -> name
    prev_k = ""  # the index of the k<i> segment just before this one
    for seg in text.split("~"):
        if len(seg) < 2:
            prev_k = ""
            continue
        code = seg[:2]
        c0, c1 = seg[0], seg[1]
        if (c0 == "k" or c0 == "v") and c1.isdigit():
            rest = seg[1:]
            if c0 == "k":
                i = 1
                while i < len(rest) and rest[i].isdigit():
                    i += 1
                if rest[i:]:
                    keys[rest[:i]] = rest[i:]
                    prev_k = rest[:i]
                continue
            # v<i><value>: gtag writes k<i>/v<i> as neighbours; otherwise take the longest index
            # still waiting for its value (a value may itself start with digits: v042 after k0)
            if prev_k and rest.startswith(prev_k):
                idx = prev_k
            else:
                idx = next(
                    (
                        k
                        for k in sorted(keys, key=len, reverse=True)
                        if rest.startswith(k) and keys[k] not in custom
                    ),
                    "",
                )
            if idx:
                custom.setdefault(keys[idx], rest[len(idx) :])
            prev_k = ""
            continue
        prev_k = ""
        field = ITEM_CODES.get(code)
        value = seg[2:]
        if field is None:
            custom.setdefault(code, value)  # an unknown code is kept, never dropped
        elif field in _ITEM_FLOATS:
            num = _float(value)
            if num is not None:
                item.setdefault(field, num)
        elif field == "index":
            idx_num = parse_int(value)
            if idx_num is not None:
                item.setdefault(field, idx_num)
        elif value:
            item.setdefault(field, value)
    if custom:
        item["custom"] = custom
    return item


def _float(value: str) -> float | None:
    num = parse_number(value)
    return None if num is None else finite_float(num)


def _uafvl(value: str) -> str:
    """uafvl (after the query decode) -> the Sec-CH-UA-Full-Version-List header syntax.

    gtag sends encodeURIComponent(brand) + ';' + version, joined by '|', then encodes the whole again;
    after one decode a brand like 'Not)A%3BBrand' still hides its own ';'. Split first, then decode
    each brand: 'Google%20Chrome;149.0|Not)A%3BBrand;24.0' -> '"Google Chrome";v="149.0", "Not)A;Brand";v="24.0"'.
    """
    out = []
    for entry in value.split("|"):
        brand, sep, version = entry.rpartition(";")
        if not sep:
            brand, version = entry, ""
        if "%" in brand:
            try:
                brand = _unquote(brand)
            except UnicodeDecodeError:
                pass  # keep it as sent
        brand = brand.replace("\\", "\\\\").replace('"', '\\"')
        version = version.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'"{brand}";v="{version}"' if version else f'"{brand}"')
    return ", ".join(out)


def _consent(p: dict[str, str]) -> dict[str, Any]:
    consent: dict[str, Any] = {}
    raw = {k: p[k] for k in CONSENT_RAW_KEYS if k in p}
    if not raw:
        return consent
    consent["raw"] = raw
    gcd = p.get("gcd", "")
    if len(gcd) >= 9:
        for purpose, pos in GCD_POSITIONS:
            state = GCD_LETTERS.get(gcd[pos])
            if state is not None:
                consent[purpose] = state
    gcs = p.get("gcs", "")
    if len(gcs) == 4 and gcs.startswith("G1"):
        for purpose, ch in (("ad_storage", gcs[2]), ("analytics_storage", gcs[3])):
            state = True if ch == "1" else False if ch == "0" else None
            if state is not None:
                # the most restrictive of gcs and gcd wins
                consent[purpose] = state and consent.get(purpose, True)
    if p.get("npa") == "1":
        consent["non_personalized_ads"] = True
        consent.setdefault("ad_personalization", False)
    dma = p.get("dma")
    if dma in ("0", "1"):
        consent["dma"] = dma == "1"
    return consent


# --------------------------------------------------------------------------- events


def _is_item_key(key: str) -> bool:
    return key[:2] == "pr" and 2 < len(key) <= 6 and key[2:].isdigit()


def _check(p: dict[str, str], where: str) -> tuple[str, str | None]:
    """Every refusal of one event's params, in the order _build met them: (event name, _uip).
    validate() runs exactly this, so a hit it accepts builds without error."""
    version = p.get("v")
    if version != SUPPORTED_VERSION:
        got = "missing" if version is None else f"v={version[:10]}"
        raise fail(
            "unsupported_version", f"{where}: protocol version is {got}; only v=2 (gtag.js GA4) is accepted"
        )
    name = p.get("en", "").strip()
    if not name:
        raise fail("missing_event_name", f"{where} has no event name (the 'en' parameter)")
    # items are params: with at most MAX_ITEMS_PER_EVENT params there is nothing to count
    n_items = sum(1 for key, value in p.items() if value and _is_item_key(key)) if len(p) > MAX_ITEMS_PER_EVENT else 0
    if n_items > MAX_ITEMS_PER_EVENT:
        raise fail(
            "too_many_items",
            f"{where} has {n_items} items (pr1, pr2, ...); at most {MAX_ITEMS_PER_EVENT} are accepted",
            STATUS_TOO_LARGE,
        )
    ip_override = p.get("_uip") or p.get("uip")
    if ip_override:
        ip_override = check_ip(f"{where}: parameter '_uip'", ip_override)
    currency = p.get("cu") or p.get("ep.currency")
    if currency:
        currency = parse_currency(f"{where}: parameter '{'cu' if p.get('cu') else 'ep.currency'}'", currency)
    return name, ip_override, currency


def _build(raw: RawHit, ctx: HitContext, index: int, p: dict[str, str], where: str) -> Event:
    name, ip_override, currency = _check(p, where)

    params: dict[str, Any] = {}
    user_props: dict[str, Any] = {}
    ecommerce: dict[str, Any] = {}
    user: dict[str, Any] = {}
    hints: dict[str, str] = {}
    items: list[tuple[int, str]] = []
    ep_special: dict[str, str] = {}

    for key, value in p.items():
        head, dot, k = key.partition(".")
        if dot:
            if not k:
                continue
            if head == "ep":
                if k in _EP_CONSUMED:
                    ep_special[k] = value
                elif k in ECOMMERCE_NUMBERS:
                    num = _float(value)
                    if num is None:
                        params[k] = value
                    else:
                        ecommerce[k] = num
                elif k.startswith("user_data."):
                    _user_data_param(k[10:], value, user)
                else:
                    params[k] = value
            elif head == "epn":
                if k in ECOMMERCE_NUMBERS and (f := _float(value)) is not None:
                    ecommerce[k] = f
                elif k == "debug_mode":
                    ep_special.setdefault(k, value)
                else:
                    num = parse_number(value)
                    params[k] = value if num is None else num  # a non-numeric epn stays a string
            elif head == "up":
                user_props[k] = value
            elif head == "upn":
                num = parse_number(value)
                user_props[k] = value if num is None else num
            # sst.*, gap.* ...: server-container and tag plumbing, not params
        elif key in CLIENT_HINTS:
            if value:
                hints[CLIENT_HINTS[key]] = _uafvl(value) if key == "uafvl" else value
        elif _is_item_key(key):
            if value:
                items.append((int(key[2:]), value))
        # everything else (gtm, _p, _s, tfd, tag_exp, _eu, ...) is protocol plumbing: not a param

    if items:
        items.sort(key=lambda t: t[0])
        ecommerce["items"] = [parse_item(text) for _, text in items]
    for k in ("transaction_id", "coupon"):
        if ep_special.get(k):
            ecommerce[k] = ep_special[k]
    if currency:
        ecommerce["currency"] = currency

    experiments: dict[str, str] = {}
    take_experiments(params, experiments)

    if "em" in p:
        em_data: dict[str, Any] = {}
        _em_user_data(p["em"], em_data)
        for field, value in em_data.items():
            _set_user_field(user, field, value)

    client: dict[str, Any] = {
        "client_id": p.get("cid") or ctx.ga_client_id,
        "user_id": p.get("uid") or None,
        "session_id": p.get("sid") or None,
        "session_count": parse_int(p.get("sct")),
        "engagement_time_msec": parse_int(p.get("_et")),
        "ip": ctx.ip,
        "user_agent": ctx.user_agent,
        "language": p.get("ul") or None,
        "screen_resolution": p.get("sr") or None,
        "client_hints": hints,
        "geo": ctx.geo,
    }
    if ip_override:
        client["ip"] = ip_override

    url = p.get("dl") or None
    page = {
        "url": url,
        "referrer": p.get("dr") or None,
        "title": p.get("dt") or None,
        "hostname": p.get("dh") or (hostname_of(url) if url else None),
    }

    debug = ctx.debug or p.get("_dbg") == "1" or truthy(ep_special.get("debug_mode"))
    event = event_base(raw, ctx, index, ep_special.get("event_id"), name, raw.received_at)
    event.update(
        measurement_id=p.get("tid") or None,
        page=page,
        client=client,
        user_data=user,
        click_ids=click_ids(ctx, url),
        consent=_consent(p),
        ecommerce=ecommerce,
        params=params,
        user_properties=user_props,
        experiments=experiments,
        debug=debug,
        test_event_code=ep_special.get("test_event_code") or None,
    )
    return Event.model_validate(event)


def _event_params(raw: RawHit) -> Iterator[tuple[dict[str, str], str]]:
    """Each event's merged params (URL + its body line) and where it came from, with every refusal
    of the request and of each line's params, line by line."""
    ensure_text("query string", raw.query)
    ensure_text("body", raw.body)
    shared = parse_params(raw.query.lstrip("?"), "URL query") if raw.query else {}
    body = raw.body
    lines = [line for line in (s.strip() for s in body.split("\n")) if line] if body.strip() else []
    if len(lines) > MAX_GTAG_EVENTS:
        raise fail(
            "too_many_events",
            f"the body has {len(lines)} event lines; at most {MAX_GTAG_EVENTS} are accepted per request",
            STATUS_TOO_LARGE,
        )
    if not lines:
        yield shared, "the request (URL query, empty body)"
        return
    for i, line in enumerate(lines):
        where = f"body line {i + 1}"
        own = parse_params(line, where)
        merged = {**shared, **own} if shared else own
        if len(merged) > MAX_PARAMS_PER_EVENT:
            raise fail(
                "too_many_params",
                f"{where} has {len(merged)} parameters with the URL's; at most {MAX_PARAMS_PER_EVENT} are accepted",
                STATUS_TOO_LARGE,
            )
        yield merged, where


def parse(raw: RawHit, ctx: HitContext) -> list[Event]:
    return [_build(raw, ctx, i, p, where) for i, (p, where) in enumerate(_event_params(raw))]


def validate(raw: RawHit) -> list[EventSketch]:
    """What parse_hit refuses, refused the same way (same code, message and status, same order),
    without building events: collect's check. For each event, only what collect's cookie plan
    reads. tests/unit/test_gtag_validate_equivalence.py holds it to parse_hit."""
    check_request_text(raw)  # HitContext's own refusal, made first as parse_hit makes it
    ga_client_id = ga_cookie_client_id(raw.cookies)
    out = []
    for p, where in _event_params(raw):
        _check(p, where)
        out.append(EventSketch(
            page_url=p.get("dl") or None,
            consent=Consent.model_validate(_consent(p)),
            client_id=p.get("cid") or ga_client_id,
        ))  # fmt: skip
    return out
