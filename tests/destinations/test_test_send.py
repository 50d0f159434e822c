"""`tagpipe test-send`: one sample event per destination through the real path, in each vendor's test mode,
against FakeVendors (which check the protocol as the vendors do); the answer in words."""

from __future__ import annotations

import json

import pytest

from tagpipe.config import Config
from tagpipe.ops.test_send import SampleNotSent, send_test_event
from tagpipe.runtime import Runtime
from tests.fakes import FakeVendors
from tests.fakes.service_account import service_account_key


def runtime_for(fakes: FakeVendors, tmp_path, env: dict[str, str]) -> Runtime:
    url = fakes.url
    config = Config(storage={"dir": str(tmp_path)}, destinations={
        "meta": {"type": "meta", "pixel_id": "123456789012345", "endpoint": url},
        "ga4": {"type": "ga4", "measurement_id": "G-TEST123", "endpoint": url},
        "ads": {"type": "google_ads", "customer_id": "123-456-7890", "endpoint": url, "token_endpoint": f"{url}/token",
                "conversion_actions": {"purchase": "customers/1234567890/conversionActions/987654321"}},
        "google": {"type": "data_manager", "operating_account_id": "1234567890", "endpoint": url,
                   "conversion_actions": {"purchase": "987654321"}},
        "tiktok": {"type": "tiktok", "pixel_code": "CTEST123", "endpoint": url},
    })  # fmt: skip
    return Runtime(config, bus=None, store=None, secrets_from=env)  # type: ignore[arg-type]


@pytest.fixture
def env(fakes: FakeVendors):
    ads = fakes.secrets("google_ads")
    return {"META_ACCESS_TOKEN": fakes.meta_token, "GA4_API_SECRET": fakes.ga4_api_secret,
            "GOOGLE_ADS_DEVELOPER_TOKEN": ads["developer_token"], "GOOGLE_ADS_CLIENT_ID": ads["client_id"],
            "GOOGLE_ADS_CLIENT_SECRET": ads["client_secret"], "GOOGLE_ADS_REFRESH_TOKEN": ads["refresh_token"],
            "GOOGLE_DATAMANAGER_CREDENTIALS": service_account_key(fakes), "TIKTOK_ACCESS_TOKEN": fakes.tiktok_token}  # fmt: skip


def test_every_vendor_accepts_the_sample_in_its_test_mode_and_records_nothing_real(fakes, env, tmp_path, client):
    rt = runtime_for(fakes, tmp_path, env)
    reports = {d: send_test_event(rt, d, test_event_code="TEST4242", client=client) for d in ("meta", "ga4", "ads", "google", "tiktok")}
    assert {d: r["ok"] for d, r in reports.items()} == dict.fromkeys(reports, True), reports
    assert reports["ga4"]["request"]["url"].split("?")[0].endswith("/debug/mp/collect")
    assert reports["ads"]["request"]["body"]["validateOnly"] is True
    assert reports["google"]["request"]["body"]["validateOnly"] is True
    assert fakes.meta.count == 1 and fakes.tiktok.count == 1  # in Test Events only, by their codes
    meta_body = reports["meta"]["request"]["body"]
    assert meta_body["test_event_code"] == "TEST4242" and reports["tiktok"]["request"]["body"]["test_event_code"] == "TEST4242"
    assert (fakes.ga4.count, fakes.google_ads.count, fakes.data_manager.count) == (0, 0, 0)  # validated only
    text = json.dumps(reports)
    for secret in (fakes.meta_token, fakes.ga4_api_secret, fakes.tiktok_token, env["GOOGLE_ADS_DEVELOPER_TOKEN"]):
        assert secret not in text


def test_a_wrong_token_is_said_in_words(fakes, env, tmp_path, client):
    fakes.meta.expect_refusal("token")
    rt = runtime_for(fakes, tmp_path, {**env, "META_ACCESS_TOKEN": "not-the-token"})
    report = send_test_event(rt, "meta", test_event_code="TEST1", client=client)
    assert not report["ok"] and report["reason"] == "meta:190" and report["text"] == "the access token expired"
    assert report["response"]["status"] == 400 and "not-the-token" not in json.dumps(report)


def test_meta_needs_a_test_event_code_and_unknown_destinations_are_named(fakes, env, tmp_path):
    rt = runtime_for(fakes, tmp_path, env)
    with pytest.raises(SampleNotSent, match="test event code"):
        send_test_event(rt, "meta")
    with pytest.raises(SampleNotSent, match="no destination 'nope'"):
        send_test_event(rt, "nope")
    assert fakes.meta.count == 0
