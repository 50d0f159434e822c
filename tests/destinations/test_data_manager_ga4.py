"""GA4 events through the Data Manager API: the ga4 destination's mapping moved onto a Data Manager Event by
Google's Measurement Protocol upgrade field mappings, parsed by Google's own client library
(google-ads-datamanager, the API's protos) and delivered to a fake that checks GA4's rules."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from tagpipe.destinations.base import REQUEST_KEY, Verdict
from tagpipe.destinations.data_manager import DataManager, DataManagerSettings
from tagpipe.destinations.ga4 import Ga4MeasurementProtocol, Ga4Settings
from tagpipe.errors import InvalidInput
from tagpipe.models import Consent
from tests.destinations.conftest import NOW, deliver, make_event, sha, task_for
from tests.fakes import FakeVendors
from tests.fakes.service_account import service_account_key

PROPERTY, STREAM = "351234567", "G-TEST123"
GEO = {"country": "US", "region": "CA", "city": "San Francisco"}
HINTS = {"mobile": "?0", "platform": "Linux", "platform_version": "6.5.0",
         "full_version_list": '"Google Chrome";v="140.0.7339.128", "Chromium";v="140.0.7339.128"'}  # fmt: skip


def ga4_dm(secrets: dict | None = None, now: float | None = NOW, **settings) -> DataManager:
    settings = {"operating_account_id": PROPERTY, "operating_account_type": "GOOGLE_ANALYTICS_PROPERTY",
                "measurement_id": STREAM, **settings}  # fmt: skip
    destination = DataManager("dm-ga4", DataManagerSettings(**settings), secrets or {})
    if now is not None:
        destination.now = lambda: now  # type: ignore[method-assign]
    return destination


def browser_event(n: int = 0, **overrides):
    client = make_event().client.model_copy(update={"geo": GEO, "client_hints": HINTS, "language": "en-us",
                                                    "screen_resolution": "1280x800"})  # fmt: skip
    event = make_event(n, **{"client": client, **overrides})
    event.user_properties = {"customer_tier": "gold"}
    return event


def dm_library():
    return pytest.importorskip("google.ads.datamanager_v1")


def request_body(destination: DataManager, events) -> dict:
    refs = [destination.settings.measurement_id]
    return {"destinations": [destination._destination(r) for r in refs],
            "events": [destination.prepare(e).payload for e in events], "encoding": "HEX"}  # fmt: skip


# --------------------------------------------------------------------------- the mapping
def test_a_purchase_as_the_upgrade_guide_maps_it():
    prepared = ga4_dm().prepare(browser_event())
    p = prepared.payload
    assert (p["eventName"], p["clientId"], p["userId"], p["eventSource"]) == ("purchase", "1234567.7654321", "user-42", "WEB")
    assert p["destinationReferences"] == [STREAM]
    assert (p["transactionId"], p["currency"], p["conversionValue"]) == ("T-0", "USD", 72.05)
    assert p["cartData"]["items"][0] == {
        "itemId": "SKU-1", "unitPrice": 30.0, "quantity": 2,
        "additionalItemParameters": [{"parameterName": "item_name", "value": "Shirt"},
                                     {"parameterName": "item_brand", "value": "Acme"},
                                     {"parameterName": "item_category", "value": "Apparel"}]}  # fmt: skip
    params = {x["parameterName"]: x["value"] for x in p["additionalEventParameters"]}
    # sessions and engagement stay with the event (else GA4 reports it "Unassigned"), all values strings
    assert params["session_id"] == "1767225000" and params["engagement_time_msec"] == "1200"
    assert params["page_location"] == "https://shop.example.com/checkout?step=3" and params["coupon_code"] == "SUMMER"
    assert not {"transaction_id", "currency", "value", "items"} & params.keys()  # structured fields, not repeated
    assert p["userProperties"] == {"additionalUserProperties": [{"propertyName": "customer_tier", "value": "gold"}]}
    assert p["consent"] == {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"}
    assert p["userData"]["userIdentifiers"][:2] == [{"emailAddress": sha("jane.doe@example.com")},
                                                    {"phoneNumber": sha("+16505551234")}]  # fmt: skip
    assert p["eventLocation"] == {"city": "San Francisco", "regionCode": "US", "subdivisionCode": "US-CA"}
    assert p["eventDeviceInfo"] == {
        "userAgent": "Mozilla/5.0 (X11; Linux)", "ipAddress": "203.0.113.7", "category": "desktop",
        "operatingSystem": "Linux", "operatingSystemVersion": "6.5.0", "browser": "Google Chrome",
        "browserVersion": "140.0.7339.128", "languageCode": "en", "screenWidth": 1280, "screenHeight": 800}  # fmt: skip
    assert prepared.identifiers == ["client_id", "user_id", "em", "ph", "fn", "ln"]


def test_every_event_is_sent_not_only_conversions():
    destination = ga4_dm()
    assert destination.conversions_only is False  # [delivery] dedup "conversions" does not guard them all
    view = destination.prepare(make_event(name="page_view", ecommerce=make_event().ecommerce.model_copy(
        update={"items": [], "value": None, "currency": None, "transaction_id": None})))  # fmt: skip
    assert view.payload["eventName"] == "page_view" and "cartData" not in view.payload
    assert DataManager("ads", DataManagerSettings(operating_account_id="1234567890"), {}).conversions_only is True


def test_nothing_the_measurement_protocol_would_carry_is_lost():
    """Every param, item field, user property and request field of the ga4 destination's MP event reaches
    the Data Manager Event, in its structured field or as a string parameter."""
    event = browser_event()
    ga4 = Ga4MeasurementProtocol("ga4", Ga4Settings(measurement_id=STREAM), {})
    ga4.now = lambda: NOW  # type: ignore[method-assign]
    mp = ga4.prepare(event).payload
    p = ga4_dm().prepare(event).payload
    structured = {"transaction_id": p["transactionId"], "currency": p["currency"], "value": p["conversionValue"]}
    params = {x["parameterName"]: x["value"] for x in p["additionalEventParameters"]}
    for key, value in mp["params"].items():
        if key == "items":
            continue
        got = structured.get(key, params.get(key))
        assert got is not None and str(got) in (str(value), str(value).lower()), key
    for mp_item, dm_item in zip(mp["params"]["items"], p["cartData"]["items"], strict=True):
        extra = {x["parameterName"]: x["value"] for x in dm_item.get("additionalItemParameters", [])}
        for key, value in mp_item.items():
            got = {"item_id": dm_item.get("itemId"), "price": dm_item.get("unitPrice"),
                   "quantity": dm_item.get("quantity")}.get(key, extra.get(key))  # fmt: skip
            assert got is not None and str(got) == str(value), key
    request = mp[REQUEST_KEY]
    assert p["clientId"] == request["client_id"] and p["userId"] == request["user_id"]
    assert p["eventDeviceInfo"]["ipAddress"] == request["ip_override"]
    assert {x["propertyName"] for x in p["userProperties"]["additionalUserProperties"]} == set(request["user_properties"])


def test_google_client_library_parses_the_request_field_for_field():
    dm = dm_library()
    destination = ga4_dm()
    body = request_body(destination, [browser_event(0), browser_event(1, name="add_to_cart")])
    parsed = dm.IngestEventsRequest.from_json(json.dumps(body), ignore_unknown_fields=False)  # an unknown field raises
    assert parsed.destinations[0].operating_account.account_type == dm.ProductAccount.AccountType.GOOGLE_ANALYTICS_PROPERTY
    assert parsed.destinations[0].product_destination_id == STREAM
    first = parsed.events[0]
    assert (first.event_name, first.client_id, first.user_id, first.transaction_id) == ("purchase", "1234567.7654321", "user-42", "T-0")
    assert first.cart_data.items[0].item_id == "SKU-1" and first.cart_data.items[0].quantity == 2
    assert first.event_device_info.screen_width == 1280 and first.event_location.subdivision_code == "US-CA"
    assert first.consent.ad_user_data == dm.ConsentStatus.CONSENT_GRANTED
    assert first.user_properties.additional_user_properties[0].property_name == "customer_tier"
    assert parsed.events[1].event_name == "add_to_cart"


def test_google_client_library_parses_the_google_ads_request_too():
    dm = dm_library()
    ads = DataManager("ads", DataManagerSettings(operating_account_id="1234567890",
                                                 conversion_actions={"purchase": "987"}), {})  # fmt: skip
    event = make_event(client=make_event().client.model_copy(update={"geo": {"country": "US"}}))
    body = {"destinations": [ads._destination("987")], "events": [ads.prepare(event).payload], "encoding": "HEX"}
    parsed = dm.IngestEventsRequest.from_json(json.dumps(body), ignore_unknown_fields=False)
    assert parsed.events[0].ad_identifiers.gclid == "Cj0KCQ-test-gclid"
    assert parsed.events[0].cart_data.items[0].merchant_product_id == "SKU-1"


def test_consent_and_ga4_rules_still_apply():
    denied = ga4_dm().prepare(browser_event(consent=Consent(ad_user_data=False, ad_personalization=False)))
    assert "userData" not in denied.payload and "ga4:user_data_withheld_no_consent" in denied.notes
    assert denied.payload["consent"] == {"adUserData": "CONSENT_DENIED", "adPersonalization": "CONSENT_DENIED"}
    no_client = browser_event(client=make_event().client.model_copy(update={"client_id": None}))
    with pytest.raises(InvalidInput) as refused:
        ga4_dm().prepare(no_client)
    assert refused.value.code == "ga4:client_id_missing"
    with pytest.raises(InvalidInput):
        ga4_dm(event_map={"purchase": "first_visit"}).prepare(browser_event())  # a name GA4 reserves
    eea = browser_event(client=browser_event().client.model_copy(update={"geo": {"country": "DE"}}))
    assert ga4_dm().prepare(eea).payload["eventDeviceInfo"]["ipAddress"] == "203.0.113.7"  # geo for GA4, not Ads matching


def test_settings_say_which_product():
    with pytest.raises(ValueError, match="measurement_id"):
        ga4_dm(measurement_id=None)
    with pytest.raises(ValueError, match="conversion_actions"):
        ga4_dm(conversion_actions={"purchase": "987"})
    with pytest.raises(ValueError, match="GOOGLE_ANALYTICS_PROPERTY"):
        DataManagerSettings(operating_account_id="1234567890", measurement_id=STREAM)


# --------------------------------------------------------------------------- against the fake
def test_delivers_ga4_events_to_the_property(fakes: FakeVendors, client, real_now):
    destination = ga4_dm({"credentials": service_account_key(fakes)}, now=None, endpoint=fakes.url)
    tasks = [task_for(destination, browser_event(i, timestamp=real_now - 60, name=name))
             for i, name in enumerate(("page_view", "add_to_cart", "purchase"))]  # fmt: skip
    batch, [(request, result)] = deliver(destination, tasks, client)
    assert result.verdict is Verdict.OK, result
    assert request.json["destinations"] == [{
        "reference": STREAM, "operatingAccount": {"accountId": PROPERTY, "accountType": "GOOGLE_ANALYTICS_PROPERTY"},
        "productDestinationId": STREAM}]  # fmt: skip
    assert [e["eventName"] for e in fakes.data_manager.events] == ["page_view", "add_to_cart", "purchase"]


def test_the_fake_refuses_what_google_refuses_for_ga4(fakes: FakeVendors, client, real_now):
    destination = ga4_dm({"credentials": service_account_key(fakes)}, now=None, endpoint=fakes.url)
    good = task_for(destination, browser_event(0, timestamp=real_now - 60))
    cases = {
        "RESERVED_NAME_USED": {**good.payload, "eventName": "session_start"},
        "BOTH_CLIENT_ID_AND_APP_INSTANCE_ID_NOT_ALLOWED": {**good.payload, "appInstanceId": "a" * 32},
        "INVALID_ARGUMENT": {**good.payload, "additionalEventParameters": [{"parameterName": "n", "value": 1}]},
    }
    for reason, payload in cases.items():
        fakes.data_manager.expect_refusal(reason)
        bad = good.model_copy(update={"event_uid": f"bad-{reason}", "payload": payload})
        _, [(_, result)] = deliver(destination, [good, bad], client)
        assert result.per_event[f"bad-{reason}"][1] == f"data_manager:{reason.lower()}", reason
    assert fakes.data_manager.count == 0  # fail fast: nothing of a refused request is taken


def test_the_documented_configuration_loads():
    doc = (Path(__file__).parents[2] / "docs" / "destinations.md").read_text()
    section = doc[doc.index("### GA4 events through Data Manager"):]
    block = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    [(_, settings)] = tomllib.loads(block)["destinations"].items()
    settings.pop("type")
    assert DataManagerSettings(**settings).ga4
