"""Bot detection with crawlerdetect's maintained list: verdicts, configuration, speed."""

from __future__ import annotations

import random
import re

import pytest
from pydantic import ValidationError

from tagpipe.bots import BotConfig, BotFilter, bench, library_patterns
from tagpipe.models import ClientContext, Event

# the issue-6 runtime dependencies (pyproject.toml); skipped with this message where they are missing
pytest.importorskip("crawlerdetect", reason="crawlerdetect is not installed (add it to pyproject.toml's dependencies)")
pytest.importorskip("publicsuffixlist", reason="publicsuffixlist is not installed (add it to pyproject.toml's dependencies)")

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/140.0.0.0 Safari/537.36")  # fmt: skip
HUMANS = [
    CHROME,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Mobile Safari/537.36",
    f"{CHROME} Edg/140.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.101]",
]
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Mozilla/5.0 (compatible; GPTBot/1.1; +https://openai.com/gptbot)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "UptimeRobot/2.0 (http://www.uptimerobot.com/)",
]


@pytest.mark.parametrize("ua", HUMANS)
def test_browsers_are_not_bots(ua):
    assert not BotFilter().is_bot(ua)


@pytest.mark.parametrize("ua", BOTS)
def test_known_bots(ua):
    assert BotFilter().is_bot(ua)


def test_same_verdicts_as_the_library():
    """Our faster compilation of crawlerdetect's list gives the library's own answers."""
    from crawlerdetect import CrawlerDetect
    from crawlerdetect.providers.crawlers import data as patterns

    ours, theirs = BotFilter(BotConfig(empty_user_agent_is_bot=False, cache_size=0)), CrawlerDetect()
    samples = list(HUMANS) + list(BOTS)
    for p in patterns:  # each pattern's own text, embedded in a browser UA and alone
        text = re.sub(r"\\(.)", r"\1", p).strip("^$")
        samples += [text, f"{CHROME} {text}", text.upper()]
    rnd = random.Random(6)
    alphabet = "abcdefghijklmnopqrstuvwxyz/ .-_0123456789()"
    samples += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(3, 60))) for _ in range(3000)]
    diff = [s for s in samples if ours.is_bot(s) != theirs.is_crawler(s)]
    assert diff == []


def test_allow_and_deny_lists():
    f = BotFilter(BotConfig(allow=[r"UptimeRobot"], deny=[r"MyInternalQA/\d"]))
    assert not f.is_bot("UptimeRobot/2.0 (http://www.uptimerobot.com/)")
    assert f.is_bot(f"{CHROME} MyInternalQA/3")
    with pytest.raises(ValidationError):
        BotConfig(allow=["(unclosed"])


def test_disabled_and_empty_user_agents():
    assert not BotFilter(BotConfig(enabled=False)).is_bot(BOTS[0])
    assert BotFilter().is_bot("") and BotFilter().is_bot(None)
    assert not BotFilter(BotConfig(empty_user_agent_is_bot=False)).is_bot("")


def _event(source: str, headers: dict, ua: str | None) -> Event:
    return Event(event_uid="h:0", hit_id="h", event_id="e", name="page_view", timestamp=1.7e9, source=source,
                 headers=headers, client=ClientContext(user_agent=ua))  # fmt: skip


def test_which_user_agent_is_checked():
    f = BotFilter()
    # a browser hit: checked
    assert f.check_event(_event("gtag", {"user-agent": BOTS[0]}, BOTS[0])).startswith("user agent matches")
    assert f.check_event(_event("gtag", {}, None)) == "no user agent"
    assert f.check_event(_event("json", {"origin": "https://a", "user-agent": BOTS[3]}, BOTS[3]))
    assert f.check_event(_event("json", {"origin": "https://a", "user-agent": CHROME}, CHROME)) is None
    # a backend posting JSON with its HTTP library's UA: not a bot hitting the site
    assert f.check_event(_event("json", {"user-agent": "python-httpx/0.28.1"}, "python-httpx/0.28.1")) is None
    assert f.check_event(_event("mp", {"user-agent": "Go-http-client/2.0"}, "Go-http-client/2.0")) is None
    # ...unless it forwards the browser's UA, which is then checked
    assert f.check_event(_event("json", {"user-agent": "python-httpx/0.28.1"}, BOTS[0]))
    assert BotFilter(BotConfig(check_server_requests=True)).check_event(
        _event("json", {"user-agent": "python-httpx/0.28.1"}, "python-httpx/0.28.1"))


def test_cache_is_bounded_and_fast():
    f = BotFilter(BotConfig(cache_size=100))
    for i in range(500):
        f.match(f"{CHROME} build/{i}")
    assert f.match.cache_info().currsize == 100
    figures = bench(5_000)
    print(f"\nbot check: {figures['cached_us']} µs/call cached, {figures['uncached_us']} µs/call for a new UA")
    assert figures["cached_us"] < 20  # a dict lookup; generous for a noisy CI machine
    assert figures["uncached_us"] < 2_000


def test_patterns_compile_once():
    assert library_patterns() is library_patterns()
