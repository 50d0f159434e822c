"""`tagpipe test-send` for the issue-20 destinations: each vendor's test mode against the fakes."""

from __future__ import annotations

import json

import pytest

from tagpipe.config import Config
from tagpipe.ops.test_send import SampleNotSent, send_test_event
from tagpipe.runtime import Runtime
from tests.fakes import FakeVendors


def test_each_ad_platform_in_its_test_mode(fakes: FakeVendors, tmp_path, client):
    url = fakes.url
    config = Config(storage={"dir": str(tmp_path)}, destinations={
        "pinterest": {"type": "pinterest", "ad_account_id": "549755885175", "endpoint": url},
        "snapchat": {"type": "snapchat", "pixel_id": "0a1b2c3d-pixel", "endpoint": url},
        "reddit": {"type": "reddit", "pixel_id": "a2_fake123", "endpoint": url},
        "linkedin": {"type": "linkedin", "conversion_rules": {"purchase": "104012"}, "endpoint": url},
        "microsoft_ads": {"type": "microsoft_ads", "uet_tag_id": "343210987", "endpoint": url},
    })  # fmt: skip
    env = {"PINTEREST_ACCESS_TOKEN": fakes.ad_tokens["pinterest"], "SNAPCHAT_ACCESS_TOKEN": fakes.ad_tokens["snapchat"],
           "REDDIT_ACCESS_TOKEN": fakes.ad_tokens["reddit"], "LINKEDIN_ACCESS_TOKEN": fakes.ad_tokens["linkedin"],
           "MICROSOFT_ADS_CAPI_TOKEN": fakes.ad_tokens["microsoft_ads"]}  # fmt: skip
    rt = Runtime(config, bus=None, store=None, secrets_from=env)  # type: ignore[arg-type]
    # LinkedIn and Microsoft have no test mode: nothing is sent until the user says live
    for dest in ("linkedin", "microsoft_ads"):
        with pytest.raises(SampleNotSent, match="no test mode") as refused:
            send_test_event(rt, dest, client=client)
        assert refused.value.needs_live
    assert (fakes.linkedin.count, fakes.microsoft_ads.count) == (0, 0)
    reports = {d: send_test_event(rt, d, test_event_code="t2_test42", live=d in ("linkedin", "microsoft_ads"),
                                  client=client) for d in config.destinations}  # fmt: skip
    assert {d: r["ok"] for d, r in reports.items()} == dict.fromkeys(reports, True), reports
    assert reports["pinterest"]["request"]["url"].endswith("?test=true")
    assert reports["reddit"]["request"]["body"]["data"]["test_id"] == "t2_test42"
    assert "real conversion" in reports["linkedin"]["mode"]
    # validated, nothing recorded; LinkedIn and Microsoft, sent live, recorded
    assert (fakes.pinterest.validated, fakes.snapchat.validated, fakes.reddit.validated) == (1, 1, 1)
    assert (fakes.pinterest.count, fakes.snapchat.count, fakes.reddit.count) == (0, 0, 0)
    assert (fakes.linkedin.count, fakes.microsoft_ads.count) == (1, 1)
    text = json.dumps(reports)
    assert not any(token in text for token in fakes.ad_tokens.values())
