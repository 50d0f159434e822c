"""Issue 20: one purchase through the real local stack reaches Pinterest, Snapchat, Reddit, LinkedIn and Microsoft
(fakes on 127.0.0.1 that check each protocol), once each, with the landing page's click ids; a resend of the same
event_id is filtered as a duplicate and reaches none of them again."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.fakes.vendors import FakeVendors

AD_PLATFORMS = ("pinterest", "snapchat", "reddit", "linkedin", "microsoft_ads")


def config(endpoint: str) -> str:
    return f"""
[delivery]
min_backoff = 0.05
max_backoff = 0.2
linger_ms = 20

[destinations.pinterest]
type = "pinterest"
ad_account_id = "549755885175"
endpoint = "{endpoint}"

[destinations.snapchat]
type = "snapchat"
pixel_id = "0a1b2c3d-pixel"
endpoint = "{endpoint}"

[destinations.reddit]
type = "reddit"
pixel_id = "a2_fake123"
endpoint = "{endpoint}"

[destinations.linkedin]
type = "linkedin"
endpoint = "{endpoint}"
conversion_rules = {{ purchase = "104012" }}

[destinations.microsoft_ads]
type = "microsoft_ads"
uet_tag_id = "343210987"
endpoint = "{endpoint}"
"""


@pytest.fixture
def fakes():
    with FakeVendors() as f:
        yield f


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def test_one_purchase_reaches_each_ad_platform_once(tmp_path, fakes):
    env = {"PINTEREST_ACCESS_TOKEN": fakes.ad_tokens["pinterest"], "SNAPCHAT_ACCESS_TOKEN": fakes.ad_tokens["snapchat"],
           "REDDIT_ACCESS_TOKEN": fakes.ad_tokens["reddit"], "LINKEDIN_ACCESS_TOKEN": fakes.ad_tokens["linkedin"],
           "MICROSOFT_ADS_CAPI_TOKEN": fakes.ad_tokens["microsoft_ads"]}  # fmt: skip
    ua = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"}
    landing = ("https://shop.example/thanks?epik=dj0yJnU9Pin-1&ScCid=6f1a-snap-2&rdt_cid=1234_rdt-3"
               "&li_fat_id=7c1b-li-4&msclkid=ms0cl1k5")  # fmt: skip
    with LocalStack(tmp_path / "s", config(fakes.url), env) as stack:
        q = (f"v=2&tid=G-TEST123&cid=555.666&en=purchase&dl={quote(landing, safe='')}&ep.event_id=T-2001"
             "&ep.transaction_id=T-2001&epn.value=129.90&cu=EUR&pr1=idSKU-1~nmShirt~pr64.95~qt2"
             f"&ep.user_data.email_address={quote(' Jane.Doe@Example.com ')}")
        cookies = {"cookie": "_scid=2c7e-scid; _rdt_uuid=1767225000000.8f0b-uuid; _uetvid=a1b2c3d4"}
        r = httpx.post(f"{stack.url}/g/collect?{q}", headers={**ua, **cookies})
        assert r.status_code == 204, r.text
        set_cookie = " ".join(r.headers.get_list("set-cookie"))
        for name in ("_epik=", "_scclid=", "_rdt_cid=", "li_fat_id=", "_uetmsclkid=_uetms0cl1k5"):
            assert name in set_cookie  # the landing page's click ids, kept for the next pages

        wait_until(lambda: all(fakes.vendors[v].count >= 1 for v in AD_PLATFORMS), what="the purchase at all five")
        pin, snap, rdt, li, ms = (fakes.vendors[v].events[0] for v in AD_PLATFORMS)
        assert pin["event_name"] == "checkout" and pin["user_data"]["click_id"] == "dj0yJnU9Pin-1"
        assert pin["user_data"]["em"] == [sha("jane.doe@example.com")] and pin["custom_data"]["value"] == "129.9"
        assert snap["event_name"] == "PURCHASE" and snap["user_data"]["sc_click_id"] == "6f1a-snap-2"
        assert snap["user_data"]["sc_cookie1"] == "2c7e-scid"
        assert rdt["type"] == {"tracking_type": "PURCHASE"} and rdt["click_id"] == "1234_rdt-3"
        assert rdt["user"]["uuid"] == "8f0b-uuid" and rdt["metadata"]["conversion_id"] == "T-2001"
        assert li["conversion"] == "urn:lla:llaPartnerConversion:104012"
        assert {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": "7c1b-li-4"} in li["user"]["userIds"]
        assert ms["userData"]["msclkid"] == "ms0cl1k5" and ms["userData"]["anonymousId"] == "a1b2c3d4"
        assert [fakes.vendors[v].event_ids() for v in AD_PLATFORMS] == [["T-2001"]] * 5  # event_id: the dedup key

        def delivered():
            rows = [o for o in stack.outcomes() if o[2] in AD_PLATFORMS]
            return rows if len(rows) >= 5 else None

        assert sorted((o[2], o[3]) for o in wait_until(delivered, what="five outcomes")) == sorted(
            (v, "delivered") for v in AD_PLATFORMS)
        # the browser sends the same purchase again: one duplicate outcome per destination, nothing re-sent
        r = httpx.post(f"{stack.url}/g/collect?{q}", headers={**ua, **cookies})
        assert r.status_code == 204
        wait_until(lambda: len([o for o in stack.outcomes() if o[2] in AD_PLATFORMS and o[3:] == ("filtered", "duplicate")]) >= 5,
                   what="duplicate outcomes")  # fmt: skip
        assert all(fakes.vendors[v].count == 1 for v in AD_PLATFORMS)
        logs = stack.logs().lower()
        assert "jane.doe" not in logs
