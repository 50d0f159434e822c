"""Bot filtering by user agent, with the maintained pattern list of the `crawlerdetect` package.

crawlerdetect (PyPI) ports JayBizzle's Crawler-Detect list (thousands of crawler, scraper, monitor and
headless-browser patterns, updated with each release); we compile its regexes once and cache the verdict
per user-agent string in a bounded LRU, so a repeated UA costs a dict lookup (see `bench()`).

Which user agent is checked: a browser's. Server-to-server senders (your backend posting to the JSON
API, a Measurement Protocol client) present their HTTP library as user agent, which is not a bot
hitting your site, so a JSON/MP request is checked only when it came from a browser (it carries an
Origin header, as every browser POST does) or names the browser's UA explicitly (`user_agent`).
Bots get the outcome `filtered` with reason `bot`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tagpipe.models import Event


class BotConfig(BaseModel):
    """`[bots]`"""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    allow: list[str] = Field(
        default_factory=list,
        description="regexes (case-insensitive) of user agents never treated as bots, e.g. your uptime monitor",
    )
    deny: list[str] = Field(default_factory=list, description="extra regexes treated as bots")
    empty_user_agent_is_bot: bool = Field(True, description="a browser hit without a User-Agent")
    check_server_requests: bool = Field(False, description="also check the UA of server-to-server JSON/MP requests")
    cache_size: int = Field(10_000, ge=0, le=1_000_000)

    @field_validator("allow", "deny")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"{p!r} is not a valid regular expression: {exc}") from None
        return v


def bot_config(config: object) -> BotConfig:
    section = getattr(config, "bots", None)
    return section if isinstance(section, BotConfig) else BotConfig()


_SPECIAL = frozenset("\\[](){}.*+?^$|")


def _literal(pattern: str) -> str | None:
    """The text a pattern matches when its only regex syntax is escaped punctuation ('axios\\/')."""
    if frozenset(re.sub(r"\\[^A-Za-z0-9]", "", pattern)) & _SPECIAL:
        return None
    return re.sub(r"\\([^A-Za-z0-9])", r"\1", pattern)


def _trie_regex(words: list[str]) -> str:
    """One regex for many literals, factored by common prefix: 'ab|ac' -> 'a(?:b|c)'."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


@lru_cache(maxsize=1)
def library_patterns() -> tuple[re.Pattern, re.Pattern, re.Pattern, re.Pattern]:
    """crawlerdetect's list, compiled for speed: (exclusions, anchored, literals, other regexes).

    The library joins ~1,500 patterns into one alternation, which costs ~150 µs per new user agent.
    Most of them are literals, so they become one prefix trie; `^`-anchored ones are tried only at the
    start. Same verdicts (tests/privacy/test_bots.py compares with the library), ~10x faster.
    """
    from crawlerdetect.providers.crawlers import data as crawlers
    from crawlerdetect.providers.exclusions import data as exclusions

    literals = sorted({lit.lower() for p in crawlers if (lit := _literal(p)) is not None})
    anchored = [p for p in crawlers if _literal(p) is None and p.startswith("^")]
    other = [p for p in crawlers if _literal(p) is None and not p.startswith("^")]

    def alternation(patterns: list[str]) -> re.Pattern:
        return re.compile("|".join(f"(?:{p})" for p in patterns) or "(?!)", re.I)

    return (alternation(exclusions), alternation(anchored), re.compile(_trie_regex(literals), re.I),
            alternation(other))  # fmt: skip


@lru_cache(maxsize=1)
def _warn_missing() -> None:
    import logging

    logging.getLogger("tagpipe.bots").error(
        "bot filtering needs the crawlerdetect package (pip install crawlerdetect): only [bots] allow/deny apply")


class BotFilter:
    def __init__(self, cfg: BotConfig | None = None) -> None:
        self.cfg = cfg = cfg or BotConfig()
        self._library = False
        if cfg.enabled:
            try:
                self._exclusions, self._anchored, self._literals, self._other = library_patterns()
                self._library = True
            except ImportError:  # the dependency is missing: allow/deny lists only, said loudly once
                _warn_missing()
        self._allow = re.compile("|".join(f"(?:{p})" for p in cfg.allow), re.I) if cfg.allow else None
        self._deny = re.compile("|".join(f"(?:{p})" for p in cfg.deny), re.I) if cfg.deny else None
        self.match: Callable[[str], str | None] = (
            lru_cache(maxsize=cfg.cache_size)(self._match) if cfg.cache_size else self._match
        )

    @classmethod
    def from_config(cls, config: object) -> BotFilter:
        return cls(bot_config(config))

    def _match(self, ua: str) -> str | None:
        """The pattern that makes `ua` a bot, or None."""
        ua = ua.strip()
        if not ua:
            return "empty user agent" if self.cfg.empty_user_agent_is_bot else None
        if self._allow is not None and self._allow.search(ua):
            return None
        if self._deny is not None and (m := self._deny.search(ua)):
            return m.group(0)
        if not self._library:
            return None
        agent = self._exclusions.sub("", ua)
        if not agent.strip():
            return None
        m = self._anchored.match(agent) or self._literals.search(agent) or self._other.search(agent)
        return m.group(0) if m else None

    def is_bot(self, user_agent: str | None) -> bool:
        return self.cfg.enabled and self.match(user_agent or "") is not None

    def user_agent_to_check(self, source: str, headers: dict[str, str], user_agent: str | None) -> str | None:
        """The browser UA of a hit, or None when the hit is server-to-server (nothing to check)."""
        header_ua = headers.get("user-agent")
        if (
            source == "gtag"
            or "origin" in headers
            or "sec-fetch-mode" in headers
            or (user_agent is not None and user_agent != header_ua)
            or self.cfg.check_server_requests
        ):
            return user_agent or ""
        return None

    def check_event(self, event: Event) -> str | None:
        """None for a human (or a server sender); else a short detail for the `bot` outcome."""
        if not self.cfg.enabled:
            return None
        ua = self.user_agent_to_check(event.source, event.headers, event.client.user_agent)
        if ua is None:
            return None
        matched = self.match(ua)
        if matched is None:
            return None
        if matched == "empty user agent":
            return "no user agent"
        return f"user agent matches the bot pattern {matched[:40]!r}"


def bench(n: int = 20_000) -> dict[str, float]:
    """µs per call: a cached UA, and uncached (distinct) UAs. `python -m tagpipe.bots` prints it."""
    f = BotFilter(BotConfig(cache_size=100_000))
    chrome = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/140.0.0.0 Safari/537.36")  # fmt: skip
    f.match(chrome)
    t = time.perf_counter()
    for _ in range(n):
        f.match(chrome)
    cached = (time.perf_counter() - t) / n * 1e6
    m = max(1, n // 10)
    uas = [f"{chrome} build/{i}" for i in range(m)]
    t = time.perf_counter()
    for ua in uas:
        f.match(ua)
    uncached = (time.perf_counter() - t) / m * 1e6
    return {"cached_us": round(cached, 3), "uncached_us": round(uncached, 1)}


if __name__ == "__main__":
    print(bench())
