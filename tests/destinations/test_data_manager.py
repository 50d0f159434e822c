"""Data Manager API destination: the event as the protos define it, the service-account JWT flow against a
fake token endpoint that verifies the signature, fail-fast validation, request status, and the hashes
against Google's own google-ads-datamanager-util."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tagpipe.destinations.base import Verdict
from tagpipe.destinations.data_manager import DataManager, DataManagerSettings
from tagpipe.errors import InvalidInput
from tagpipe.models import ClickIds, Consent
from tests.destinations.conftest import NOW, deliver, make_event, sha, task_for
from tests.fakes import FakeVendors
from tests.fakes.service_account import service_account_key

ACTION = "987654321"


def dm(secrets: dict | None = None, **settings) -> DataManager:
    settings = {"operating_account_id": "123-456-7890", "conversion_actions": {"purchase": ACTION}, **settings}
    return DataManager("dm", DataManagerSettings(**settings), secrets or {})


@pytest.fixture
def connected(fakes: FakeVendors):
    key = service_account_key(fakes)

    def make(**settings) -> DataManager:
        return dm({"credentials": key}, endpoint=fakes.url, **settings)

    return make


# --------------------------------------------------------------------------- prepare
def test_purchase_as_the_protos_define_it():
    event = make_event(client=make_event().client.model_copy(update={"geo": {"country": "US", "region": "CA"}}))
    prepared = dm().prepare(event)
    p = prepared.payload
    assert p["destinationReferences"] == [ACTION]
    expected_time = datetime.fromtimestamp(NOW - 60, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert p["eventTimestamp"] == expected_time  # RFC 3339, UTC
    assert (p["transactionId"], p["currency"], p["conversionValue"], p["eventSource"]) == ("T-0", "USD", 72.05, "WEB")
    assert p["adIdentifiers"] == {"gclid": "Cj0KCQ-test-gclid"}
    assert p["userData"]["userIdentifiers"] == [
        {"emailAddress": sha("jane.doe@example.com")},
        {"phoneNumber": sha("+16505551234")},  # E.164 with "+": Google's form, not Meta's
        {"address": {"givenName": sha("jane"), "familyName": sha("doe"), "regionCode": "US", "postalCode": "94107"}},
    ]
    assert p["consent"] == {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"}
    assert p["eventDeviceInfo"] == {"userAgent": "Mozilla/5.0 (X11; Linux)", "ipAddress": "203.0.113.7"}
    assert p["cartData"] == {"items": [{"merchantProductId": "SKU-1", "quantity": 2, "unitPrice": 30.0},
                                       {"merchantProductId": "SKU-2", "quantity": 1, "unitPrice": 12.05}]}  # fmt: skip
    assert prepared.identifiers == ["gclid", "em", "ph", "fn", "ln"]
    assert dm().prepare(make_event(name="page_view")) is None  # only mapped conversions


def test_the_hashes_are_google_ads_datamanager_utils():
    util = pytest.importorskip("google.ads.datamanager_util")
    fmt = util.Formatter()
    event = make_event()
    event.user_data = event.user_data.model_copy(update={"email": "Cloudy.SanFrancisco+shop@GMAIL.com",
                                                         "other_emails": ["second@example.com"]})  # fmt: skip
    ids = dm().prepare(event).payload["userData"]["userIdentifiers"]
    assert ids[0] == {"emailAddress": fmt.process_email_address("Cloudy.SanFrancisco+shop@GMAIL.com", util.Encoding.HEX)}
    assert ids[1] == {"emailAddress": fmt.process_email_address("second@example.com", util.Encoding.HEX)}
    assert ids[2] == {"phoneNumber": fmt.process_phone_number("+1 (650) 555-1234", util.Encoding.HEX)}
    address = ids[3]["address"]
    assert address["givenName"] == fmt.process_given_name("Jane", util.Encoding.HEX)
    assert address["familyName"] == fmt.process_family_name("Doe", util.Encoding.HEX)


def test_exactly_one_click_id_and_a_match_key_is_required():
    event = make_event(click_ids=ClickIds(gbraid="GB-1", wbraid="WB-1"))
    prepared = dm().prepare(event)
    assert prepared.payload["adIdentifiers"] == {"gbraid": "GB-1"}
    assert "data_manager:extra_click_ids_dropped:wbraid" in prepared.notes
    bare = make_event(click_ids=ClickIds(), user_data=make_event().user_data.model_copy(
        update={"email": None, "phone": None, "address": make_event().user_data.address.model_copy(update={"postal_code": None})}))
    with pytest.raises(InvalidInput) as refused:
        dm().prepare(bare)
    assert refused.value.code == "data_manager:no_match_key"


def test_consent_gates_user_data_and_the_ip_stays_out_of_the_eea():
    denied = make_event(consent=Consent(ad_user_data=False, ad_personalization=False))
    p = dm().prepare(denied)
    assert "userData" not in p.payload and p.payload["consent"] == {"adUserData": "CONSENT_DENIED",
                                                                    "adPersonalization": "CONSENT_DENIED"}  # fmt: skip
    assert "data_manager:user_identifiers_withheld_no_consent" in p.notes
    for country, sent in (("DE", False), ("GB", False), ("CH", False), (None, False), ("US", True)):
        client = make_event().client.model_copy(update={"geo": {"country": country} if country else {}})
        device = dm().prepare(make_event(client=client)).payload["eventDeviceInfo"]
        assert ("ipAddress" in device) is sent, country


# --------------------------------------------------------------------------- against the fake
def test_delivers_with_a_service_account_token(fakes: FakeVendors, connected, client, real_now):
    dest = connected()
    tasks = [task_for(dest, make_event(i, timestamp=real_now - 60)) for i in range(3)]
    batch, results = deliver(dest, tasks, client)
    [(request, result)] = results
    assert result.verdict is Verdict.OK and result.detail.startswith("request_id fake-request-")
    assert request.json["encoding"] == "HEX" and request.json["destinations"] == [{
        "reference": ACTION, "operatingAccount": {"accountId": "1234567890", "accountType": "GOOGLE_ADS"},
        "productDestinationId": ACTION}]  # fmt: skip
    assert fakes.data_manager.count == 3
    deliver(dest, tasks[:1], client)
    assert fakes.data_manager.token_requests == 1  # the token is reused until it nears expiry


def test_a_key_google_does_not_trust_is_refused(fakes: FakeVendors, client):
    from tagpipe.errors import PermanentDelivery

    key = service_account_key(fakes, email="stranger@other.iam.gserviceaccount.com", trusted=False)
    dest = dm({"credentials": key}, endpoint=fakes.url)
    with pytest.raises(PermanentDelivery) as refused:
        dest.before_send(client)
    assert refused.value.reason == "data_manager:oauth_refused"


def test_more_than_ten_conversion_actions_split_the_request(fakes: FakeVendors, connected, client, real_now):
    actions = {f"event_{i}": str(1000 + i) for i in range(12)}
    dest = connected(conversion_actions=actions)
    tasks = [task_for(dest, make_event(i, name=f"event_{i}", timestamp=real_now - 60)) for i in range(12)]
    batch, results = deliver(dest, tasks, client)
    assert [len(r.json["destinations"]) for r in batch.requests] == [10, 2]
    assert all(result.verdict is Verdict.OK for _, result in results) and fakes.data_manager.count == 12


def test_fail_fast_validation_refuses_the_bad_event_and_resends_the_rest(fakes: FakeVendors, connected, client, real_now):
    dest = connected()
    good = task_for(dest, make_event(0, timestamp=real_now - 60))
    bad = good.model_copy(update={"event_uid": "bad:0", "payload": {**good.payload, "currency": "us$"}})
    fakes.data_manager.expect_refusal("INVALID_CURRENCY_CODE")
    _, [(request, result)] = deliver(dest, [good, bad], client)
    assert result.verdict is Verdict.RETRY  # the good one goes again...
    assert result.per_event == {"bad:0": (Verdict.PERMANENT, "data_manager:invalid_currency_code",
                                          "events[1].currency: INVALID_CURRENCY_CODE")}  # fmt: skip
    assert fakes.data_manager.count == 0  # ...because Google took nothing of that request
    _, [(_, again)] = deliver(dest, [good], client)
    assert again.verdict is Verdict.OK and fakes.data_manager.count == 1


def test_validate_only_records_nothing(fakes: FakeVendors, connected, client, real_now):
    dest = connected(validate_only=True)
    _, [(request, result)] = deliver(dest, [task_for(dest, make_event(timestamp=real_now - 60))], client)
    assert request.json["validateOnly"] is True and result.verdict is Verdict.OK and fakes.data_manager.count == 0


def test_request_status_shows_the_asynchronous_errors(fakes: FakeVendors, connected, client, real_now):
    dest = connected()
    fakes.data_manager.mark_fails_later("T-1")
    tasks = [task_for(dest, make_event(i, timestamp=real_now - 60)) for i in range(2)]
    _, [(_, result)] = deliver(dest, tasks, client)
    request_id = result.detail.removeprefix("request_id ")
    status = dest.request_status(client, request_id)
    [per_destination] = status["requestStatusPerDestination"]
    assert per_destination["requestStatus"] == "PARTIAL_SUCCESS"
    assert per_destination["errorInfo"]["errorCounts"] == [
        {"recordCount": "1", "reason": "PROCESSING_ERROR_REASON_DUPLICATE_GCLID"}]
    assert dest.request_status(client, "no-such-request")["error"] == "INVALID_ARGUMENT"


def test_an_expired_token_is_refreshed_on_the_next_attempt(fakes: FakeVendors, connected, client, real_now):
    dest = connected()
    task = task_for(dest, make_event(timestamp=real_now - 60))
    deliver(dest, [task], client)
    with fakes.data_manager.lock:
        fakes.data_manager.tokens = {t: 0.0 for t in fakes.data_manager.tokens}
    fakes.data_manager.expect_refusal("token_invalid")
    _, [(_, result)] = deliver(dest, [task], client)
    assert result.verdict is Verdict.RETRY and result.reason == "data_manager:unauthenticated"
    _, [(_, result)] = deliver(dest, [task], client)
    assert result.verdict is Verdict.OK and fakes.data_manager.token_requests == 2


def test_settings_are_checked():
    with pytest.raises(ValueError):
        dm(conversion_actions={"purchase": "customers/1/conversionActions/2"})
    with pytest.raises(ValueError):
        dm(operating_account_id="acct-x")
