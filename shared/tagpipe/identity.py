"""Server-set first-party identity cookies (the sGTM FPID / Stape Cookie Keeper idea).

collect answers every browser hit with Set-Cookie headers for:

    client id     `_fpcid`  HttpOnly, GA-format "<random>.<unix seconds>"        needs analytics_storage
    Meta browser  `_fbp`    fb.<subdomainIndex>.<creationTimeMs>.<random>        needs ad_storage
    Meta click    `_fbc`    fb.<subdomainIndex>.<creationTimeMs>.<fbclid>        needs ad_storage
    Google click  `_gcl_aw` GCL.<unix seconds>.<gclid>  (`_gcl_gb` gbraid, `_wbraid` wbraid)   ad_storage
    TikTok click  `ttclid`  the ttclid as it came                                needs ad_storage
    Pinterest     `_epik`   the epik as it came                                  needs ad_storage
    Snapchat      `_scclid` the ScCid as it came                                 needs ad_storage
    Reddit        `_rdt_cid` the rdt_cid as it came                              needs ad_storage
    LinkedIn      `li_fat_id` the li_fat_id as it came                           needs ad_storage
    Microsoft     `_uetmsclkid` "_uet" + the msclkid, as the UET tag writes it   needs ad_storage

Server-set cookies are not capped at 7 days by Safari's ITP the way `document.cookie` writes are, and
every hit re-sends them with a fresh Max-Age (the refresh), so a returning visitor keeps the same ids.
Meta's and Google's cookies are NOT HttpOnly: the Meta pixel and gtag.js read and write the same
cookies, and must keep seeing one value. The client id cookie is HttpOnly (only collect reads it).

Values the browser did not send yet (a minted `_fbp`, a new `_fbc`) are added to the RawHit's cookies
before collect publishes it, so the first hit already carries them: transform parses the same cookie
the browser will send on the next hit. Formats follow Meta's parameter builder (VENDORS.md §1.4):
subdomainIndex is the number of labels of the cookie's domain minus one (`example.co.uk` -> 2, an IP
or `localhost` -> 0) from the Public Suffix List shipped in the `publicsuffixlist` package (no
download); the fbclid is kept byte for byte (decoded once); a new fbclid replaces an older `_fbc`
with a new timestamp. The 5th segment (Meta's appendix) is written as the builder writes it: a cookie
collect mints or replaces gets one, a valid 4-segment cookie gets the builder's "no change" appendix on
its refresh, and a 5-segment cookie is kept as it is.

Nothing is set, refreshed or minted for a purpose whose consent is not granted; an explicit denial
also expires the cookies of that purpose (clear_on_denial).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tagpipe.models import Consent, Event

MAX_COOKIE_DAYS = 400  # Chrome caps Max-Age/Expires at 400 days (RFC 6265bis)
DAY = 86_400

# --------------------------------------------------------------------------- config


class ClickIdCookies(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gclid: str = "_gcl_aw"
    gbraid: str = "_gcl_gb"
    wbraid: str = "_wbraid"
    ttclid: str = "ttclid"
    # the names the vendors' own tags read (stape-io/pinterest-tag, snapchat-tag, reddit-tag, linkedin-tag,
    # microsoft-capi-tag template.js), so the browser tag and the server see one value
    epik: str = "_epik"
    sc_click_id: str = "_scclid"
    rdt_cid: str = "_rdt_cid"
    li_fat_id: str = "li_fat_id"
    msclkid: str = "_uetmsclkid"

    def model_post_init(self, context: Any) -> None:
        # per hit, plan_cookies walks these: named once here (the config is read once)
        self._plain = tuple((kind, getattr(self, kind)) for kind in PLAIN_CLICK_ID_COOKIES)
        self._ad_names = ("_fbp", "_fbc", self.gclid, self.gbraid, self.wbraid, *(n for _, n in self._plain), self.msclkid)


# click ids kept as cookies byte for byte (field of ClickIds, ClickIdCookies attribute); msclkid has its own format
PLAIN_CLICK_ID_COOKIES = ("ttclid", "epik", "sc_click_id", "rdt_cid", "li_fat_id")
UET_PREFIX = "_uet"  # _uetmsclkid = "_uet" + msclkid (stape-io/microsoft-capi-tag getClickId strips it)


DEFAULT_FORWARD_COOKIES = [
    "_ga", "_ga_*", "_gcl_*", "_fbp", "_fbc", "_fbi", "_ttp", "ttclid", "_wbraid", "FPID", "FPLC",
    "_scid", "_rdt_uuid", "_uetvid",  # browser ids the Snap, Reddit and UET tags mint (read, never written here)
]  # fmt: skip


class IdentityConfig(BaseModel):
    """`[identity]`: the first-party cookies collect sets. Every lifetime is capped at 400 days."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="set first-party cookies from collect at all")
    cookie_domain: str = Field(
        "auto", description='"auto" = eTLD+1 of the request host; "" = host-only; or a domain such as shop.example'
    )
    cookie_path: str = "/"
    secure: bool = True
    same_site: Literal["Lax", "Strict", "None"] = "Lax"
    client_id_cookie: str = Field("_fpcid", description='the HttpOnly client id cookie; "" = do not set one')
    client_id_days: int = Field(400, ge=1, le=MAX_COOKIE_DAYS)
    client_id_mode: Literal["server", "javascript"] = Field(
        "server", description="server: the cookie's id wins over the hit's cid (ITP-proof); javascript: cid wins"
    )
    fbp: bool = Field(True, description="mint _fbp when the browser has none")
    fbc: bool = Field(True, description="build _fbc from the page URL's fbclid")
    click_ids: bool = Field(
        True, description="keep gclid/gbraid/wbraid/ttclid/epik/ScCid/rdt_cid/li_fat_id/msclkid from the page URL as cookies"
    )
    click_id_cookies: ClickIdCookies = Field(default_factory=ClickIdCookies)
    ad_cookie_days: int = Field(90, ge=1, le=MAX_COOKIE_DAYS, description="_fbp, _fbc and the click id cookies")
    refresh: bool = Field(True, description="re-send existing cookies with a fresh lifetime on every hit")
    clear_on_denial: bool = Field(True, description="an explicit denial expires the cookies of that purpose")
    forward_cookies: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FORWARD_COOKIES),
        description="request cookies kept in the raw hit (names, * wildcards); others (the shop's session!) are dropped",
    )

    @field_validator("cookie_domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        v = v.strip().lower().lstrip(".")
        if v not in ("", "auto") and not re.fullmatch(r"[a-z0-9.-]+", v):
            raise ValueError("must be auto, empty (host-only) or a domain name such as shop.example")
        return v


def identity_config(config: object) -> IdentityConfig:
    """The `[identity]` section of a Config (defaults until config.py carries it)."""
    section = getattr(config, "identity", None)
    return section if isinstance(section, IdentityConfig) else IdentityConfig()


# --------------------------------------------------------------------------- domains


@lru_cache(maxsize=1)
def _psl():
    try:
        from publicsuffixlist import PublicSuffixList
    except ImportError:  # without the list no domain is safe to guess: host-only cookies, said once
        import logging

        logging.getLogger("tagpipe.identity").error(
            "cookie_domain = auto needs the publicsuffixlist package (pip install publicsuffixlist): "
            "cookies are host-only until it is installed")
        return None
    return PublicSuffixList()  # the list shipped inside the package: no network


@lru_cache(maxsize=1024)  # hosts repeat: the request's Host header, the site's own domain
def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def host_of(value: str | None) -> str:
    """'https://Shop.Example:8443/x' or 'shop.example:8443' or '[::1]:80' -> 'shop.example' / '::1'."""
    if not value:
        return ""
    v = value.strip()
    if "://" in v:
        v = v.split("://", 1)[1]
    v = v.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    if v.startswith("["):
        return v[1 : v.find("]")].lower() if "]" in v else v.lower()
    if v.count(":") == 1:
        v = v.split(":", 1)[0]
    return v.lower().rstrip(".")


@lru_cache(maxsize=4096)
def registrable_domain(host: str) -> str | None:
    """eTLD+1 ('shop.example.co.uk' -> 'example.co.uk'); None for IPs, single labels and bare suffixes."""
    host = host_of(host)
    if not host or is_ip(host) or "." not in host:
        return None
    psl = _psl()
    return psl.privatesuffix(host) if psl is not None else None


_HOSTNAME = re.compile(r"(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")


def is_hostname(host: str) -> bool:
    """RFC 1123 letters-digits-hyphen labels (IDNs arrive as punycode): nothing that could end a
    Set-Cookie attribute (';', ',', spaces) or name another domain gets into Domain=."""
    return bool(_HOSTNAME.fullmatch(host))


def cookie_domain_for(host: str, setting: str) -> str | None:
    """The Domain attribute to send, or None for a host-only cookie (also when the host is not a host name)."""
    host = host_of(host)
    if not setting or not host or is_ip(host) or not is_hostname(host):
        return None
    if setting == "auto":
        return registrable_domain(host)
    # a configured domain only applies when the request host is inside it (else the browser drops the cookie)
    if host == setting or host.endswith("." + setting):
        return setting
    return None


@lru_cache(maxsize=1024)
def subdomain_index(host: str, domain: str | None) -> int:
    """Meta's subdomainIndex: labels of the domain the cookie lives on, minus one (IP -> 0)."""
    target = domain or host_of(host)
    if not target or is_ip(target) or not is_hostname(target):
        return 0
    return len(target.split(".")) - 1


# --------------------------------------------------------------------------- cookie formats

_FB_APPENDIX_V1 = frozenset({"AQ", "Ag", "Aw", "BA", "BQ", "Bg"})  # Meta's legacy 2-char language tokens


class FbAppendix(NamedTuple):
    """The 5th segment Meta's parameter builder writes: base64url of (format, language, type, version)
    bytes. net_new = a cookie it created, modified_new = one it replaced (a new fbclid), no_change = a
    4-segment cookie it only tagged (capi_param_builder/param_builder.py _get_appendix, APPENDIX_*)."""

    net_new: str
    modified_new: str
    no_change: str


@lru_cache(maxsize=1)
def fb_appendix() -> FbAppendix | None:
    """The appendix strings of the installed capi-param-builder-python (Meta's reference: its version
    bytes say which builder wrote the cookie), or None without it: cookies then stay 4-segment, which
    Meta's builder and pixel also accept."""
    try:
        from capi_param_builder import ParamBuilder
    except ImportError:
        return None
    builder = ParamBuilder()
    return FbAppendix(builder.appendix_net_new, builder.appendix_modified_new, builder.appendix_no_change)


def with_appendix(value: str, kind: str) -> str:
    """`value` + '.' + the builder's appendix of `kind` (a field of FbAppendix), when it has 4 segments."""
    appendix = fb_appendix()
    if appendix is None or value.count(".") != 3:
        return value
    return f"{value}.{getattr(appendix, kind)}"


def parse_fb_cookie(value: str | None) -> list[str] | None:
    """The segments of a valid _fbp/_fbc value (4, or 5 with Meta's appendix), else None."""
    if not value:
        return None
    parts = value.split(".")
    if len(parts) not in (4, 5) or parts[0] != "fb" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    if not parts[3]:
        return None
    if len(parts) == 5:
        appendix = parts[4]
        if not (appendix in _FB_APPENDIX_V1 or len(appendix) == 8):
            return None
    return parts


def make_fbp(index: int, now_ms: int, rand: int | None = None) -> str:
    if rand is None:
        rand = secrets.randbelow(2_147_483_648)  # Meta: randint(0, 2147483647)
    return with_appendix(f"fb.{index}.{now_ms}.{rand}", "net_new")


def make_fbc(index: int, now_ms: int, fbclid: str, replaces: bool = False) -> str:
    return with_appendix(f"fb.{index}.{now_ms}.{fbclid}", "modified_new" if replaces else "net_new")


def make_gcl(now_s: int, click_id: str) -> str:
    return f"GCL.{now_s}.{click_id}"


def gcl_value(cookie: str | None) -> str | None:
    """The click id in 'GCL.<seconds>.<id>' (or a bare id)."""
    if not cookie:
        return None
    parts = cookie.split(".", 2)
    if len(parts) == 3 and parts[0] == "GCL":
        return parts[2] or None
    return None if "." in cookie else cookie


_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")


def valid_client_id(value: str | None) -> bool:
    return bool(value) and _CLIENT_ID_RE.fullmatch(value) is not None


def new_client_id(now_s: int) -> str:
    """GA's client id format: <random 31-bit>.<first-visit unix seconds>."""
    return f"{secrets.randbelow(2_147_483_648)}.{now_s}"


def ga_cookie_client_id(cookie: str | None) -> str | None:
    """_ga = GA1.1.<random>.<seconds> -> '<random>.<seconds>'."""
    if not cookie:
        return None
    parts = cookie.split(".")
    if len(parts) >= 4 and parts[0].startswith("GA") and parts[-2] and parts[-1]:
        return ".".join(parts[-2:])
    return None


# --------------------------------------------------------------------------- Set-Cookie


class SetCookie(NamedTuple):  # a tuple: one is built per cookie per hit, and tuples are the cheapest to build
    name: str
    value: str
    max_age: int  # seconds; 0 expires the cookie
    domain: str | None = None
    path: str = "/"
    secure: bool = True
    http_only: bool = False
    same_site: str = "Lax"

    def header(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        return f"{self.name}={self.value}" + _cookie_attributes(
            self.max_age, int(now), self.domain, self.path, self.secure, self.http_only, self.same_site)


@lru_cache(maxsize=256)  # the same few lifetimes and domains every hit: formatted once per second each
def _cookie_attributes(max_age: int, now_s: int, domain: str | None, path: str, secure: bool, http_only: bool,
                       same_site: str) -> str:
    parts = ["", f"Max-Age={max_age}", f"Expires={http_date(now_s + max_age if max_age else 0)}"]
    if domain:
        parts.append(f"Domain={domain}")
    parts.append(f"Path={path}")
    if secure or same_site == "None":
        parts.append("Secure")
    if http_only:
        parts.append("HttpOnly")
    parts.append(f"SameSite={same_site}")
    return "; ".join(parts)


@lru_cache(maxsize=64)  # a few lifetimes per second: formatted once per second each
def http_date(seconds: int) -> str:
    """'Wed, 25 Nov 2026 09:30:46 GMT' (RFC 7231 IMF-fixdate) for a whole unix second."""
    return formatdate(seconds, usegmt=True)


_COOKIE_VALUE_OK = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*")  # RFC 6265 cookie-octet


def cookie_safe(value: str) -> bool:
    return _COOKIE_VALUE_OK.fullmatch(value) is not None


# --------------------------------------------------------------------------- the plan for one hit


def hit_consent(consents: Iterable[Consent]) -> Consent:
    """One consent state for a hit: a purpose is denied if any event denies it, granted if any grants it."""
    merged: dict[str, bool | None] = {}
    npa = False
    for c in consents:
        npa = npa or c.non_personalized_ads
        for p in ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization"):
            v = getattr(c, p)
            if v is False or (v is True and merged.get(p) is None):
                merged[p] = v
    return Consent(**merged, non_personalized_ads=npa)


@dataclass
class CookiePlan:
    set_cookies: list[SetCookie] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # what the browser holds after this response
    minted: list[str] = field(default_factory=list)  # names whose value is new (for tests and traces)

    def headers(self, now: float | None = None) -> list[str]:
        return [c.header(now) for c in self.set_cookies]


def _click_ids_from_url(url: str | None) -> dict[str, str]:
    global _click_ids_from_url
    # imported on first use (the parsers are not needed where only the config is), then bound here
    from tagpipe.parsing._common import click_ids_from_url

    _click_ids_from_url = click_ids_from_url
    return click_ids_from_url(url)


def plan_cookies(
    cfg: IdentityConfig,
    *,
    host: str,
    cookies: dict[str, str],
    consent: Consent,
    consent_default: bool = True,
    page_url: str | None = None,
    referer: str | None = None,
    hit_client_id: str | None = None,
    now: float | None = None,
) -> CookiePlan:
    """The Set-Cookie headers for one browser hit, and the cookie values the hit should carry."""
    plan = CookiePlan()
    if not cfg.enabled:
        return plan
    now = time.time() if now is None else now
    now_ms, now_s = int(now * 1000), int(now)
    domain = cookie_domain_for(host, cfg.cookie_domain)
    index = subdomain_index(host, domain)
    path, secure, same_site = cfg.cookie_path, cfg.secure, cfg.same_site
    ad_age = cfg.ad_cookie_days * DAY

    def put(name: str, value: str, max_age: int, *, http_only: bool = False, new: bool) -> None:
        if not name or not cookie_safe(value):
            return
        if new or cfg.refresh:
            plan.set_cookies.append(SetCookie(name, value, max_age, domain, path, secure, http_only, same_site))
        plan.values[name] = value
        if new:
            plan.minted.append(name)

    def clear(names: Iterable[str], purpose: str) -> None:
        if cfg.clear_on_denial and getattr(consent, purpose) is False:
            for name in names:
                if name and name in cookies:
                    plan.set_cookies.append(SetCookie(name, "", 0, domain, path, secure, False, same_site))

    # -- client id: analytics_storage
    cid_name = cfg.client_id_cookie
    if cid_name:
        if consent.granted("analytics_storage", consent_default):
            current = cookies.get(cid_name)
            if valid_client_id(current):
                put(cid_name, current, cfg.client_id_days * DAY, http_only=True, new=False)
            else:
                # migrate: keep the id gtag already uses, so GA4 sees one user
                seed = ga_cookie_client_id(cookies.get("_ga")) or hit_client_id
                value = seed if valid_client_id(seed) else new_client_id(now_s)
                put(cid_name, value, cfg.client_id_days * DAY, http_only=True, new=True)
        else:
            clear([cid_name], "analytics_storage")

    # -- advertising cookies: ad_storage
    names = cfg.click_id_cookies
    if not consent.granted("ad_storage", consent_default):
        clear(names._ad_names, "ad_storage")
        return plan

    url_ids = _click_ids_from_url(page_url)
    if "fbclid" not in url_ids and referer:
        ref_ids = _click_ids_from_url(referer)
        if "fbclid" in ref_ids:
            url_ids["fbclid"] = ref_ids["fbclid"]

    if cfg.fbp:
        current = cookies.get("_fbp")
        if parse_fb_cookie(current):
            tagged = with_appendix(current, "no_change") if cfg.refresh else current
            put("_fbp", tagged, ad_age, new=tagged != current)
        else:
            put("_fbp", make_fbp(index, now_ms), ad_age, new=True)

    if cfg.fbc:
        current = cookies.get("_fbc")
        parts = parse_fb_cookie(current)
        fbclid = url_ids.get("fbclid")
        if fbclid and "." in fbclid:
            fbclid = None  # cannot round-trip through the dot-separated format: not a real fbclid anyway
        if fbclid and (parts is None or parts[3] != fbclid):
            put("_fbc", make_fbc(index, now_ms, fbclid, replaces=parts is not None), ad_age, new=True)
        elif parts:
            tagged = with_appendix(current, "no_change") if cfg.refresh else current
            put("_fbc", tagged, ad_age, new=tagged != current)

    if cfg.click_ids:
        for kind, name in (("gclid", names.gclid), ("gbraid", names.gbraid), ("wbraid", names.wbraid)):
            current = cookies.get(name)
            fresh = url_ids.get(kind)
            if fresh and gcl_value(current) != fresh:
                put(name, make_gcl(now_s, fresh), ad_age, new=True)
            elif current and gcl_value(current):
                put(name, current, ad_age, new=False)
        for kind, name in names._plain:
            current = cookies.get(name)
            fresh = url_ids.get(kind)
            if fresh and fresh != current:
                put(name, fresh, ad_age, new=True)
            elif current:
                put(name, current, ad_age, new=False)
        current = cookies.get(names.msclkid)
        fresh = url_ids.get("msclkid")
        if fresh and current != UET_PREFIX + fresh:
            put(names.msclkid, UET_PREFIX + fresh, ad_age, new=True)
        elif current:
            put(names.msclkid, current, ad_age, new=False)
    return plan


# --------------------------------------------------------------------------- request cookies


_COOKIE_REF = re.compile(r"\bcookie\.([A-Za-z0-9_.\-]+?)(?=\}\}|$|[^A-Za-z0-9_.\-])")


def referenced_cookies(config: object) -> set[str]:
    """Cookie names the config's [variables] / [triggers] / [tags] read ('cookie.<name>' references and
    `type = "cookie"` variables), so collect keeps them in the raw hit."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.update(_COOKIE_REF.findall(value))
        elif isinstance(value, dict):
            if value.get("type") == "cookie" and isinstance(value.get("name"), str):
                found.add(value["name"])
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    for section in ("variables", "triggers", "tags"):
        walk(getattr(config, section, None))
    return found


def forward_cookies(cookies: dict[str, str], cfg: IdentityConfig, extra: Iterable[str] = ()) -> dict[str, str]:
    """The request cookies a raw hit keeps: vendor and identity cookies, and those the config's tags
    read (`extra`), never the shop's session."""
    return CookieFilter(cfg, extra).keep(cookies)


class CookieFilter:
    """forward_cookies for one config, built once: the per-name verdicts are remembered (names
    repeat from hit to hit; the memo is bounded, a flood of random names only stops the caching)."""

    MAX_NAMES = 4096

    def __init__(self, cfg: IdentityConfig, extra: Iterable[str] = ()) -> None:
        self.cfg = cfg
        self.patterns = [p for p in cfg.forward_cookies if p]
        self.own = {cfg.client_id_cookie, *cfg.click_id_cookies.model_dump().values(), *extra}
        self._verdicts: dict[str, bool] = {}

    def wanted(self, name: str) -> bool:
        verdict = self._verdicts.get(name)
        if verdict is None:
            verdict = name in self.own or any(fnmatch.fnmatchcase(name, p) for p in self.patterns)
            if len(self._verdicts) < self.MAX_NAMES:
                self._verdicts[name] = verdict
        return verdict

    def keep(self, cookies: dict[str, str]) -> dict[str, str]:
        return {name: value for name, value in cookies.items() if self.wanted(name)}


# --------------------------------------------------------------------------- transform side


def enrich_event(event: Event, cfg: IdentityConfig, consent_default: bool = True) -> Event:
    """Fill the event from the server-set cookies: client id (analytics_storage) and the click ids
    the parsers do not read themselves (gbraid/wbraid, renamed cookies). Returns the same object when
    nothing changes."""
    if not cfg.enabled or not event.cookies:
        return event
    update: dict = {}
    cookies = event.cookies
    cid = cookies.get(cfg.client_id_cookie) if cfg.client_id_cookie else None
    if (
        valid_client_id(cid)
        and event.consent.granted("analytics_storage", consent_default)
        and (cfg.client_id_mode == "server" or not event.client.client_id)
        and event.client.client_id != cid
    ):
        update["client"] = event.client.model_copy(update={"client_id": cid})
    clicks: dict[str, str] = {}
    names = cfg.click_id_cookies
    for kind, name in (("gclid", names.gclid), ("gbraid", names.gbraid), ("wbraid", names.wbraid)):
        if getattr(event.click_ids, kind) is None and (value := gcl_value(cookies.get(name))):
            clicks[kind] = value
    for kind in PLAIN_CLICK_ID_COOKIES:
        if getattr(event.click_ids, kind) is None and (value := cookies.get(getattr(names, kind))):
            clicks[kind] = value
    if event.click_ids.msclkid is None and (value := cookies.get(names.msclkid)):
        clicks["msclkid"] = value.removeprefix(UET_PREFIX)
    if clicks:
        update["click_ids"] = event.click_ids.model_copy(update=clicks)
    return event.model_copy(update=update) if update else event
