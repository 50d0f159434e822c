from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest

from tagpipe.destinations.base import REQUEST_KEY, Verdict
from tagpipe.destinations.meta import MetaCapi, MetaSettings
from tagpipe.errors import InvalidInput
from tagpipe.models import Consent
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors


def meta(now: float | None = NOW, secrets: dict | None = None, **settings) -> MetaCapi:
    dest = MetaCapi("meta", MetaSettings(pixel_id="1234567890", **settings), secrets or {"access_token": "TOKEN-XYZ"})
    if now is not None:
        dest.now = lambda: now  # type: ignore[method-assign]
    return dest


# --------------------------------------------------------------------------- prepare: golden cases
def test_purchase_golden():
    prepared = meta().prepare(make_event())
    assert prepared.event_name == "Purchase"
    assert prepared.payload == {
        "event_name": "Purchase",
        "event_time": int(NOW - 60),
        "event_id": "evt-0",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout?step=3",
        "referrer_url": "https://shop.example.com/cart",
        "user_data": {
            "em": [sha("jane.doe@example.com")],  # trimmed + lowercased, dots and case kept (no gmail rule)
            "ph": [sha("16505551234")],  # digits with country code, no "+"
            "fn": [sha("jane")],
            "ln": [sha("doe")],
            "ct": [sha("sanfrancisco")],
            "st": [sha("ca")],
            "zp": [sha("94107")],
            "country": [sha("us")],
            "external_id": [sha("cust-42"), sha("user-42")],  # user_data.external_id, then the hit's user id
            "client_ip_address": "203.0.113.7",  # never hashed
            "client_user_agent": "Mozilla/5.0 (X11; Linux)",
            "fbc": "fb.1.1767225000000.AbCdEfGh",  # byte for byte
            "fbp": "fb.1.1767225000000.1098115397",
        },
        "custom_data": {
            "value": 72.05,
            "currency": "usd",
            "content_ids": ["SKU-1", "SKU-2"],
            "contents": [
                {"id": "SKU-1", "quantity": 2, "item_price": 30.0, "title": "Shirt", "brand": "Acme", "category": "Apparel"},
                {"id": "SKU-2", "quantity": 1, "item_price": 12.05, "title": "Socks"},
            ],
            "content_type": "product",
            "num_items": 3,
            "order_id": "T-0",
            "coupon_code": "SUMMER",
        },
    }
    assert prepared.identifiers == ["em", "ph", "fn", "ln", "external_id", "fbp", "fbc", "ip_ua"]
    assert prepared.notes == []


def test_event_time_is_int_seconds_not_ms():
    payload = meta().prepare(make_event(timestamp=NOW - 0.987)).payload
    assert payload["event_time"] == int(NOW - 1) and len(str(payload["event_time"])) == 10


def test_event_names_map_override_unmapped_and_explicit():
    assert meta().prepare(make_event(name="view_item")).event_name == "ViewContent"
    assert meta().prepare(make_event(name="begin_checkout")).event_name == "InitiateCheckout"
    assert meta().prepare(make_event(name="my_custom")) is None  # not Meta's: filtered, not rejected
    assert meta(send_unmapped=True).prepare(make_event(name="my_custom")).event_name == "my_custom"
    assert meta(event_map={"purchase": "Subscribe"}).prepare(make_event()).event_name == "Subscribe"
    assert meta().prepare(make_event(name="my_custom", vendor_event_name="Schedule")).event_name == "Schedule"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"page": {"url": None}}, "meta:missing_event_source_url"),
        ({"client": {"user_agent": None}}, "meta:missing_client_user_agent"),
    ],
)
def test_website_events_need_url_and_user_agent(change, code):
    event = make_event()
    for part, values in change.items():
        setattr(event, part, getattr(event, part).model_copy(update=values))
    with pytest.raises(InvalidInput) as exc:
        meta().prepare(event)
    assert exc.value.code == code


def test_non_website_events_need_neither():
    event = make_event(action_source="system_generated")
    event.page = event.page.model_copy(update={"url": None})
    event.client = event.client.model_copy(update={"user_agent": None})
    payload = meta().prepare(event).payload
    assert payload["action_source"] == "system_generated" and "event_source_url" not in payload


def test_ldu_opt_out_and_test_event_code():
    event = make_event(consent=Consent(ad_user_data=True, ad_personalization=False, limited_data_use=True),
                       test_event_code="TEST123")
    payload = meta().prepare(event).payload
    assert payload["data_processing_options"] == ["LDU"]
    assert payload["data_processing_options_country"] == 0 and payload["data_processing_options_state"] == 0
    assert payload["opt_out"] is True
    assert payload[REQUEST_KEY] == {"test_event_code": "TEST123"}


@pytest.mark.parametrize(
    ("geo", "ldu_region", "location"),
    [
        ({"country": "US", "region": "CA"}, None, (1, 1000)),  # [doc] 1 = USA, 1000 = California
        ({"country": "US", "region": "US-CA"}, None, (1, 1000)),
        ({"country": "us", "region": "ca"}, "US-TX", (1, 1000)),  # the visitor's geo wins over config
        ({}, "US-CA", (1, 1000)),  # unknown geo: the configured region
        ({"country": "US"}, "US-CA", (1, 1000)),  # a country without its state is not a region
        ({"country": "US", "region": "CO"}, None, (0, 0)),  # LDU state without a documented number: Meta geolocates
        ({"country": "DE", "region": "BY"}, None, (0, 0)),
        ({}, None, (0, 0)),  # unknown: Meta geolocates
    ],
)
def test_ldu_sends_the_region_when_known(geo, ldu_region, location):
    event = make_event(consent=Consent(ad_user_data=True, limited_data_use=True))
    event.client = event.client.model_copy(update={"geo": geo})
    payload = meta(ldu_region=ldu_region).prepare(event).payload
    assert payload["data_processing_options"] == ["LDU"]
    assert (payload["data_processing_options_country"], payload["data_processing_options_state"]) == location
    assert "data_processing_options" not in meta(ldu_region="US-CA").prepare(make_event()).payload


def test_contents_carry_what_the_items_carry_and_match_the_sdk():
    from facebook_business.adobjects.serverside.content import Content
    from facebook_business.adobjects.serverside.delivery_category import DeliveryCategory

    event = make_event()
    items = [
        event.ecommerce.items[0].model_copy(
            update={"custom": {"delivery_category": "curbside", "description": "Blue, cotton"}}
        ),
        event.ecommerce.items[1].model_copy(update={"item_id": None, "quantity": 1.5, "custom": {"delivery_category": "drone"}}),
    ]
    event.ecommerce = event.ecommerce.model_copy(update={"items": items})
    contents = meta().prepare(event).payload["custom_data"]["contents"]
    theirs = [
        Content(product_id="SKU-1", quantity=2, item_price=30.0, title="Shirt", description="Blue, cotton",
                brand="Acme", category="Apparel", delivery_category=DeliveryCategory.CURBSIDE).normalize(),
        # no item_id: the name is the id (Meta's sGTM template); an unknown delivery_category is left out
        Content(product_id="Socks", quantity=1.5, item_price=12.05, title="Socks").normalize(),
    ]
    assert contents == theirs
    assert list(contents[0]) == list(theirs[0])  # the SDK's key order too


def test_explicit_num_items_and_standard_params_win_over_derived_ones():
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.delivery_category import DeliveryCategory

    params = {"num_items": 7, "delivery_category": "home_delivery", "predicted_ltv": "120.5", "status": "new"}
    prepared = meta().prepare(make_event(params=params))
    custom = prepared.payload["custom_data"]
    assert custom["num_items"] == 7  # not 3, the count of the items
    sdk = CustomData(num_items=7, delivery_category=DeliveryCategory.HOME_DELIVERY, predicted_ltv=120.5,
                     status="new").normalize()
    assert {k: custom[k] for k in sdk} == sdk
    assert not [n for n in prepared.notes if "collides" in n]
    bad = meta().prepare(make_event(params={"num_items": 2.5, "delivery_category": "drone", "predicted_ltv": True}))
    assert bad.payload["custom_data"]["num_items"] == 3  # an unusable explicit value: the derived one, on record
    assert "delivery_category" not in bad.payload["custom_data"] and "predicted_ltv" not in bad.payload["custom_data"]
    assert {"meta:invalid_num_items", "meta:invalid_delivery_category", "meta:invalid_predicted_ltv"} <= set(bad.notes)


def test_custom_params_never_overwrite_standard_keys_and_experiments_are_kept():
    event = make_event(params={"value": 1, "content_type": "x", "search_term": "red shoes", "plan": "pro"},
                       experiments={"exp1": "B"})
    prepared = meta().prepare(event)
    custom = prepared.payload["custom_data"]
    assert custom["value"] == 72.05 and custom["content_type"] == "product"
    assert custom["search_string"] == "red shoes" and custom["plan"] == "pro" and custom["experiment_exp1"] == "B"
    assert "meta:custom_key_collides:value" in prepared.notes


def test_unusable_user_data_is_dropped_with_a_note():
    event = make_event()
    event.user_data = event.user_data.model_copy(update={"email": "not-an-email"})
    prepared = meta().prepare(event)
    assert "em" not in prepared.payload["user_data"] and "em" not in prepared.identifiers
    assert prepared.notes == ["meta:unusable_em"]


# --------------------------------------------------------------------------- batching and time windows
def test_1001_events_make_two_requests_and_the_token_is_masked():
    dest = meta()
    batch = dest.build_requests([task_for(dest, make_event(i)) for i in range(1001)])
    assert [len(r.json["data"]) for r in batch.requests] == [1000, 1]
    first = batch.requests[0]
    assert first.url.startswith("https://graph.facebook.com/v26.0/1234567890/events?access_token=TOKEN-XYZ")
    assert "TOKEN-XYZ" not in first.masked_url and "access_token=***" in first.masked_url
    assert first.json["partner_agent"] == "tagpipe" and "test_event_code" not in first.json
    assert all(REQUEST_KEY not in e for e in first.json["data"])


def test_appsecret_proof_is_the_sdk_hmac():
    dest = meta(secrets={"access_token": "TOKEN-XYZ", "app_secret": "s3cret"})
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    proof = hmac.new(b"s3cret", b"TOKEN-XYZ", hashlib.sha256).hexdigest()
    assert f"appsecret_proof={proof}" in request.url and proof not in request.masked_url


def test_test_event_codes_never_share_a_request():
    dest = meta()
    tasks = [task_for(dest, make_event(0)), task_for(dest, make_event(1, test_event_code="TEST1"))]
    batch = dest.build_requests(tasks)
    assert sorted(r.json.get("test_event_code", "") for r in batch.requests) == ["", "TEST1"]


def test_seven_day_window_checked_in_prepare_and_again_at_send_time():
    with pytest.raises(InvalidInput) as exc:
        meta().prepare(make_event(timestamp=NOW - 7 * 86400 - 1))
    assert exc.value.code == "meta:event_too_old"

    dest = meta()
    old = task_for(dest, make_event(0, timestamp=NOW - 6 * 86400))  # fine when prepared...
    fresh = task_for(dest, make_event(1, timestamp=NOW - 60))
    future = task_for(dest, make_event(2, timestamp=NOW + 2 * 86400))
    dest.now = lambda: NOW + 86400  # ...but a day in the queue later it would fail Meta's whole request
    batch = dest.build_requests([old, fresh, future])
    assert {(r.event_uid, r.reason) for r in batch.rejected} == {("hit0:0", "meta:event_too_old"), ("hit2:0", "meta:event_in_future")}
    assert batch.requests[0].event_uids == ["hit1:0"]


# --------------------------------------------------------------------------- classify: the error table
def meta_error(code, subcode=None, status=400, **extra):
    error = {"message": "secret detail about jane@example.com", "type": "OAuthException", "code": code,
             "fbtrace_id": "AbC123", **extra}
    if subcode:
        error["error_subcode"] = subcode
    return response(status, {"error": error})


@pytest.mark.parametrize(
    ("code", "subcode", "status", "verdict"),
    [
        (1, None, 500, Verdict.RETRY),
        (2, None, 503, Verdict.RETRY),
        (368, None, 400, Verdict.RETRY),
        (4, None, 400, Verdict.THROTTLE),
        (17, 2446079, 400, Verdict.THROTTLE),
        (32, None, 400, Verdict.THROTTLE),
        (341, None, 400, Verdict.THROTTLE),
        (613, 1487742, 400, Verdict.THROTTLE),
        (80004, None, 400, Verdict.THROTTLE),
        (3, None, 400, Verdict.PERMANENT),
        (10, None, 403, Verdict.PERMANENT),
        (100, None, 400, Verdict.PERMANENT),
        (100, 2804003, 400, Verdict.PERMANENT),
        (102, None, 400, Verdict.PERMANENT),
        (190, 463, 400, Verdict.PERMANENT),
        (200, None, 403, Verdict.PERMANENT),
        (299, None, 403, Verdict.PERMANENT),
        (506, None, 400, Verdict.PERMANENT),
        (99999, None, 400, Verdict.PERMANENT),  # unknown 4xx: fix the request
        (99999, None, 500, Verdict.RETRY),  # unknown 5xx: transient
    ],
)
def test_error_table(code, subcode, status, verdict):
    dest = meta()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    result = dest.classify(request, meta_error(code, subcode, status), None)
    assert (result.verdict, result.reason) == (verdict, f"meta:{code}")
    assert "jane@example.com" not in result.detail and "TOKEN-XYZ" not in result.detail


def test_190_says_what_to_fix():
    dest = meta()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    result = dest.classify(request, meta_error(190, 463), None)
    assert result.reason == "meta:190" and result.detail.startswith("access token expired or invalid")
    assert "fbtrace_id AbC123" in result.detail


def test_is_transient_unknown_code_retries_and_network_errors_retry():
    dest = meta()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    assert dest.classify(request, meta_error(12345, is_transient=True), None).verdict is Verdict.RETRY
    assert dest.classify(request, None, httpx.ConnectTimeout("timed out")).verdict is Verdict.RETRY
    assert dest.classify(request, response(502, None), None).verdict is Verdict.RETRY
    ok = dest.classify(request, response(200, {"events_received": 1, "messages": [], "fbtrace_id": "x"}), None)
    assert ok.verdict is Verdict.OK


# --------------------------------------------------------------------------- integration with the fake
def test_delivers_to_the_fake_meta(fakes: FakeVendors, client, real_now):
    dest = meta(now=None, endpoint=fakes.url, secrets=fakes.secrets("meta"), test_event_code="TEST42")
    tasks = [task_for(dest, make_event(i, timestamp=real_now - 30)) for i in range(3)]
    batch, results = deliver(dest, tasks, client)
    assert [r.verdict for _, r in results] == [Verdict.OK]
    assert fakes.meta.count == 3 and not fakes.meta.duplicates()
    assert fakes.meta.event_ids() == ["evt-0", "evt-1", "evt-2"]
    assert fakes.meta.events[0]["_meta"]["test_event_code"] == "TEST42"


def test_fake_meta_refuses_what_meta_refuses(fakes: FakeVendors, client, real_now):
    fakes.meta.expect_refusal("*")  # every request below but the good one is one Meta refuses
    dest = meta(now=None, endpoint=fakes.url, secrets=fakes.secrets("meta"))
    good = task_for(dest, make_event(0, timestamp=real_now - 30))
    unhashed = good.model_copy(update={"event_uid": "u1", "payload": {
        **good.payload, "user_data": {**good.payload["user_data"], "em": ["jane@example.com"]}}})
    _, results = deliver(dest, [good, unhashed], client)
    (_, result), = results
    assert (result.verdict, result.reason) == (Verdict.PERMANENT, "meta:100")  # one bad event fails the request
    assert fakes.meta.count == 0

    stale = good.model_copy(update={"payload": {**good.payload, "event_time": int(real_now - 8 * 86400)}})
    dest.now = lambda: real_now - 2 * 86400  # a destination clock that lags: the fake still says no
    _, results = deliver(dest, [stale], client)
    assert results[0][1].reason == "meta:100" and "2804003" in results[0][1].detail

    fakes.meta.reject_token()
    dest.now = lambda: real_now
    _, results = deliver(dest, [good], client)
    assert (results[0][1].verdict, results[0][1].reason) == (Verdict.PERMANENT, "meta:190")


def test_fake_meta_checks_appsecret_proof(client, real_now):
    with FakeVendors(meta_app_secret="s3cret") as fakes:
        fakes.meta.expect_refusal("appsecret_proof")  # the wrong proof, on purpose
        right = meta(now=None, endpoint=fakes.url, secrets=fakes.secrets("meta"))
        wrong = meta(now=None, endpoint=fakes.url, secrets={**fakes.secrets("meta"), "app_secret": "other"})
        event = make_event(timestamp=real_now - 5)
        assert deliver(right, [task_for(right, event)], client)[1][0][1].verdict is Verdict.OK
        assert deliver(wrong, [task_for(wrong, event)], client)[1][0][1].verdict is Verdict.PERMANENT


# --------------------------------------------------------------------------- cross-check with Meta's own SDK
def test_payload_matches_facebook_business_sdk():
    """Meta's official SDK (facebook-business 26.0.3) builds the same server event from the same data."""
    sdk = pytest.importorskip("facebook_business.adobjects.serverside.event")
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.content import Content
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.user_data import UserData as SdkUser

    event = make_event(params={"coupon_code": "SUMMER"})
    event.ecommerce = event.ecommerce.model_copy(update={"items": event.ecommerce.items[:1]})
    ours = meta().prepare(event).payload
    user, address = event.user_data, event.user_data.address
    theirs = sdk.Event(
        event_name="Purchase", event_time=int(NOW - 60), event_id="evt-0", action_source=ActionSource.WEBSITE,
        event_source_url=event.page.url, referrer_url=event.page.referrer,
        user_data=SdkUser(
            emails=[user.email], phones=[user.phone], first_names=[address.first_name], last_names=[address.last_name],
            cities=[address.city], states=[address.region], zip_codes=[address.postal_code], country_codes=[address.country],
            client_ip_address=event.client.ip, client_user_agent=event.client.user_agent,
            fbc=event.click_ids.fbc, fbp=event.click_ids.fbp,
        ),
        custom_data=CustomData(
            value=72.05, currency="USD",
            contents=[Content(product_id="SKU-1", quantity=2, item_price=30.0, title="Shirt", brand="Acme", category="Apparel")],
            content_ids=["SKU-1"], content_type="product", order_id="T-0", num_items=2,
            custom_properties={"coupon_code": "SUMMER"},
        ),
    ).normalize()
    ours["user_data"].pop("external_id")  # the SDK sends external_id unhashed; tagpipe hashes it (VENDORS §6.4)
    assert ours == theirs


def test_new_user_data_fields_and_several_emails_and_phones_match_the_sdk():
    """lead_id, subscription_id, fb_login_id, page_id, ctwa_clid as given; f5first/f5last/fi/dobd/dobm/doby
    hashed as single strings; every email and phone hashed into the lists, as facebook-business builds them."""
    from facebook_business.adobjects.serverside.user_data import UserData as SdkUser

    event = make_event(action_source="business_messaging")
    event.user_data = event.user_data.model_copy(update={
        "other_emails": ["jane@work.example", " Jane.Doe@Example.com"], "other_phones": ["+44 20 7946 0958"],
        "first_name_prefix": "Jonat", "last_name_prefix": "Smith", "first_initial": "J",
        "birth_day": "5", "birth_month": "11", "birth_year": "1990",
        "lead_id": "1234567890123456", "subscription_id": "sub-9", "fb_login_id": "10987", "page_id": "555",
    })  # fmt: skip
    event.click_ids = event.click_ids.model_copy(update={"ctwa_clid": "ARAkLkA8rmlFeiCktEJQ"})
    ours = meta().prepare(event).payload["user_data"]
    u = event.user_data
    theirs = SdkUser(
        emails=[u.email, *u.other_emails], phones=[u.phone, *u.other_phones], f5first=u.first_name_prefix,
        f5last=u.last_name_prefix, fi=u.first_initial, dobd=u.birth_day, dobm=u.birth_month, doby=u.birth_year,
        lead_id=u.lead_id, subscription_id=u.subscription_id, fb_login_id=u.fb_login_id, page_id=u.page_id,
        ctwa_clid=event.click_ids.ctwa_clid,
    ).normalize()
    for key, value in theirs.items():
        # the SDK de-duplicates lists through set(): same members, unstable order; ours keeps first-seen order
        assert (sorted(ours[key]) == sorted(value)) if isinstance(value, list) else ours[key] == value, key
    assert ours["em"] == [sha("jane.doe@example.com"), sha("jane@work.example")]  # the repeat once
    assert len(ours["ph"]) == 2


def test_an_unusable_second_email_is_dropped_with_a_note_and_the_first_kept():
    event = make_event()
    event.user_data = event.user_data.model_copy(update={"other_emails": ["not-an-email"], "birth_day": "32"})
    prepared = meta().prepare(event)
    assert prepared.payload["user_data"]["em"] == [sha("jane.doe@example.com")]
    assert "dobd" not in prepared.payload["user_data"]
    assert {"meta:unusable_em", "meta:unusable_dobd"} <= set(prepared.notes)


# --------------------------------------------------------------------------- settings: hashing, external_id
def test_docs_style_hashing_is_a_destination_setting():
    event = make_event()
    event.user_data = event.user_data.model_copy(update={"gender": "Male", "date_of_birth": "1990-11-05"})
    sdk_style = meta().prepare(event).payload["user_data"]
    docs_style = meta(hashing="docs").prepare(event).payload["user_data"]
    assert (sdk_style["ge"], sdk_style["db"]) == ([sha("male")], [sha("1990-11-05")])  # the SDK: lower+strip only
    assert (docs_style["ge"], docs_style["db"]) == ([sha("m")], [sha("19901105")])  # Meta's page: f/m, YYYYMMDD
    assert docs_style["em"] == sdk_style["em"]  # where the two agree they hash alike
    with pytest.raises(ValueError):
        MetaSettings(pixel_id="1", hashing="pixel")


def test_the_hits_user_id_is_an_external_id_unless_turned_off():
    event = make_event(user_data=make_event().user_data.model_copy(update={"external_id": None}))
    assert meta().prepare(event).payload["user_data"]["external_id"] == [sha("user-42")]
    assert "external_id" not in meta(external_id_from_user_id=False).prepare(event).payload["user_data"]


def test_external_id_as_given_matches_the_sdk_when_hashing_is_off():
    from facebook_business.adobjects.serverside.user_data import UserData as SdkUser

    event = make_event()
    ours = meta(hash_external_id=False).prepare(event).payload["user_data"]["external_id"]
    theirs = SdkUser(external_ids=["cust-42", "user-42"]).normalize()["external_id"]
    assert ours == ["cust-42", "user-42"] and sorted(theirs) == sorted(ours)
    assert meta().prepare(event).payload["user_data"]["external_id"] == [sha("cust-42"), sha("user-42")]


def test_a_gtag_hits_meta_only_user_data_reaches_meta_as_the_sdk_sends_it():
    from facebook_business.adobjects.serverside.user_data import UserData as SdkUser

    from tagpipe.models import RawHit
    from tagpipe.parsing import parse_hit

    query = ("v=2&tid=G-X&cid=1.2&en=generate_lead&dl=https%3A%2F%2Fshop.example%2Fcontact&ep.user_data.lead_id=5551"
             "&ep.user_data.f5first=Jonathan&ep.user_data.fi=J&ep.user_data.dobm=3&ep.user_data.doby=1990"
             "&ep.user_data.page_id=777&ep.user_data.subscription_id=sub-1")  # fmt: skip
    [event] = parse_hit(RawHit(source="gtag", method="GET", path="/g/collect", query=query,
                               headers={"user-agent": "Mozilla/5.0"}))  # fmt: skip
    ours = meta().prepare(event).payload["user_data"]
    theirs = SdkUser(lead_id="5551", f5first="Jonathan", fi="J", dobm="3", doby="1990", page_id="777",
                     subscription_id="sub-1").normalize()  # fmt: skip
    assert {k: ours.get(k) for k in theirs} == theirs
