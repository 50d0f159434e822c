from __future__ import annotations

from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import ValidationError

from tagpipe.destinations.base import VendorRequest, Verdict
from tagpipe.destinations.google_ads import GoogleAds, GoogleAdsSettings, conversion_date_time
from tagpipe.errors import InvalidInput, PermanentDelivery, RetryableDelivery
from tagpipe.models import ClickIds, Consent, UserData
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors

ACTION = "customers/1234567890/conversionActions/987654321"
SECRETS = {"client_id": "cid", "client_secret": "csecret", "refresh_token": "rtoken", "developer_token": "DEV-TOKEN"}


def ads(secrets: dict | None = None, now: float | None = NOW, **settings) -> GoogleAds:
    base = {"customer_id": "123-456-7890", "conversion_actions": {"purchase": ACTION}, "time_zone": "America/Los_Angeles"}
    dest = GoogleAds("ads", GoogleAdsSettings(**{**base, **settings}), secrets or SECRETS)
    if now is not None:
        dest.now = lambda: now  # type: ignore[method-assign]
    return dest


def with_token(dest: GoogleAds) -> GoogleAds:
    dest.oauth.access_token, dest.oauth.expires_at = "ya29.TEST", dest.now() + 3600
    return dest


def test_click_conversion_golden():
    prepared = ads().prepare(make_event())
    assert prepared.payload == {
        "conversionAction": ACTION,
        "gclid": "Cj0KCQ-test-gclid",
        "conversionDateTime": "2025-12-31 15:59:00-08:00",  # NOW-60 s in the account's zone, with the offset
        "conversionValue": 72.05,
        "currencyCode": "USD",
        "orderId": "T-0",
        "userIdentifiers": [
            {"hashedEmail": sha("jane.doe@example.com"), "userIdentifierSource": "FIRST_PARTY"},
            {"hashedPhoneNumber": sha("+16505551234"), "userIdentifierSource": "FIRST_PARTY"},
            {"addressInfo": {"hashedFirstName": sha("jane"), "hashedLastName": sha("doe"), "hashedStreetAddress": sha("1 main st"),
                             "city": "san francisco", "state": "ca", "postalCode": "94107", "countryCode": "US"},
             "userIdentifierSource": "FIRST_PARTY"},
        ],
        "consent": {"adUserData": "GRANTED"},  # never adPersonalization on uploads
    }
    assert prepared.identifiers == ["gclid", "em", "ph", "fn", "ln"]


def test_unmapped_events_are_not_taken():
    assert ads().prepare(make_event(name="page_view")) is None


@pytest.mark.parametrize(
    ("clicks", "sent", "note"),
    [
        ({"gclid": "G", "gbraid": "B", "wbraid": "W"}, "gclid", "google_ads:extra_click_ids_dropped:gbraid,wbraid"),
        ({"gbraid": "B", "wbraid": "W"}, "gbraid", "google_ads:extra_click_ids_dropped:wbraid"),
        ({"wbraid": "W"}, "wbraid", None),
    ],
)
def test_exactly_one_click_id_gclid_first(clicks, sent, note):
    prepared = ads().prepare(make_event(click_ids=ClickIds(**clicks)))
    assert [k for k in ("gclid", "gbraid", "wbraid") if k in prepared.payload] == [sent]
    assert prepared.notes == ([note] if note else [])


def test_needs_a_click_id_or_user_identifiers():
    with pytest.raises(InvalidInput) as exc:
        ads().prepare(make_event(click_ids=ClickIds(), user_data=UserData()))
    assert exc.value.code == "google_ads:no_match_key"
    leads = ads().prepare(make_event(click_ids=ClickIds()))  # enhanced conversions for leads: identifiers only
    assert "gclid" not in leads.payload and len(leads.payload["userIdentifiers"]) == 3


def test_no_identifiers_without_ad_user_data_consent():
    prepared = ads().prepare(make_event(consent=Consent(ad_user_data=False)))
    assert "userIdentifiers" not in prepared.payload and prepared.payload["consent"] == {"adUserData": "DENIED"}
    assert "google_ads:user_identifiers_withheld_no_consent" in prepared.notes
    with pytest.raises(InvalidInput):
        ads().prepare(make_event(click_ids=ClickIds(), consent=Consent(ad_user_data=False)))


def test_an_incomplete_address_is_not_sent():
    event = make_event()
    event.user_data = event.user_data.model_copy(update={"address": event.user_data.address.model_copy(update={"postal_code": None})})
    prepared = ads().prepare(event)
    assert [list(i)[0] for i in prepared.payload["userIdentifiers"]] == ["hashedEmail", "hashedPhoneNumber"]
    assert "google_ads:address_incomplete" in prepared.notes


@pytest.mark.parametrize(
    ("zone", "expected"),
    [("UTC", "2025-12-31 23:59:00+00:00"), ("Europe/Berlin", "2026-01-01 00:59:00+01:00"),
     ("Asia/Kolkata", "2026-01-01 05:29:00+05:30"), ("America/St_Johns", "2025-12-31 20:29:00-03:30")],
)
def test_conversion_date_time_format(zone, expected):
    assert conversion_date_time(NOW - 60, ZoneInfo(zone)) == expected


@pytest.mark.parametrize(
    "bad",
    [{"customer_id": "12345"}, {"conversion_actions": {"purchase": "987654321"}}, {"time_zone": "Mars/Base"}],
)
def test_settings_are_checked_at_start_up(bad):
    with pytest.raises(ValidationError):
        ads(**bad)


# --------------------------------------------------------------------------- requests
def test_request_shape_and_batches_of_2000():
    dest = with_token(ads(login_customer_id="999-888-7777"))
    batch = dest.build_requests([task_for(dest, make_event(i)) for i in range(2001)])
    assert [len(r.json["conversions"]) for r in batch.requests] == [2000, 1]
    request = batch.requests[0]
    assert request.url == "https://googleads.googleapis.com/v26/customers/1234567890:uploadClickConversions"
    assert request.json["partialFailure"] is True
    assert request.headers == {"Authorization": "Bearer ya29.TEST", "developer-token": "DEV-TOKEN", "login-customer-id": "9998887777"}
    assert "ya29" not in request.masked_url


def test_build_requires_before_send():
    dest = ads()
    with pytest.raises(RetryableDelivery):
        dest.build_requests([task_for(dest, make_event())])


# --------------------------------------------------------------------------- classify
def google_error(http: int, status: str, category: str = "authenticationError", code: str = "NOT_ADS_USER", **details):
    error = {"errorCode": {category: code}, "message": "m", **({"details": details} if details else {})}
    return response(http, {"error": {"code": http, "status": status, "message": "m", "details": [{"errors": [error]}]}})


@pytest.mark.parametrize(
    ("answer", "verdict", "reason"),
    [
        (google_error(401, "UNAUTHENTICATED"), Verdict.PERMANENT, "google_ads:unauthenticated"),
        (google_error(401, "UNAUTHENTICATED", code="OAUTH_TOKEN_EXPIRED"), Verdict.RETRY, "google_ads:oauth_token_expired"),
        (google_error(403, "PERMISSION_DENIED", "authorizationError", "USER_PERMISSION_DENIED"), Verdict.PERMANENT, "google_ads:permission_denied"),
        (google_error(400, "INVALID_ARGUMENT", "partialFailureError", "PARTIAL_FAILURE_MODE_REQUIRED"), Verdict.PERMANENT, "google_ads:invalid_argument"),
        (google_error(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", quotaErrorDetails={"retryDelay": "30s"}), Verdict.THROTTLE, "google_ads:resource_exhausted"),
        (google_error(500, "INTERNAL", "internalError", "INTERNAL_ERROR"), Verdict.RETRY, "google_ads:internal"),
        (response(503, None), Verdict.RETRY, "google_ads:unavailable"),
        (response(502, None), Verdict.RETRY, "http:502"),
    ],
)
def test_error_table(answer, verdict, reason):
    dest = with_token(ads())
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    result = dest.classify(request, answer, None)
    assert (result.verdict, result.reason) == (verdict, reason)
    if verdict is Verdict.THROTTLE:
        assert result.retry_after == 30
    if result.reason.startswith("google_ads:oauth") or result.reason == "google_ads:unauthenticated":
        assert not dest.oauth.valid()  # the next before_send fetches a new token


def test_partial_failure_rows_become_per_event_verdicts():
    dest = with_token(ads())
    request = dest.build_requests([task_for(dest, make_event(i)) for i in range(3)]).requests[0]
    answer = response(200, {"results": [{"gclid": "a"}, {}, {}], "partialFailureError": {"code": 3, "message": "2 failed", "details": [{
        "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
        "errors": [
            {"errorCode": {"conversionUploadError": "UNPARSEABLE_GCLID"}, "message": "x",
             "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 1}, {"fieldName": "gclid"}]}},
            {"errorCode": {"conversionUploadError": "EXPIRED_EVENT"}, "message": "x",
             "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 2}]}},
        ]}]}})
    result = dest.classify(request, answer, None)
    assert result.verdict is Verdict.OK  # row 0 was accepted
    assert result.per_event == {
        "hit1:0": (Verdict.PERMANENT, "google_ads:UNPARSEABLE_GCLID", "conversionUploadError.UNPARSEABLE_GCLID"),
        "hit2:0": (Verdict.PERMANENT, "google_ads:EXPIRED_EVENT", "conversionUploadError.EXPIRED_EVENT"),
    }


# --------------------------------------------------------------------------- OAuth + integration with the fake
def fake_ads(fakes: FakeVendors, now: float | None = None, **settings) -> GoogleAds:
    return ads(secrets=fakes.secrets("google_ads"), now=now, endpoint=fakes.url, token_endpoint=f"{fakes.url}/token",
               conversion_actions={"purchase": ACTION}, **settings)


def test_oauth_token_is_fetched_once_and_refreshed_before_expiry(fakes: FakeVendors, client, real_now):
    dest = fake_ads(fakes, now=real_now)
    dest.before_send(client)
    dest.before_send(client)
    assert fakes.google_ads.token_requests == 1 and dest.oauth.access_token.startswith("fake-access-")
    dest.now = lambda: real_now + 3599 - 30  # inside the refresh margin
    dest.before_send(client)
    assert fakes.google_ads.token_requests == 2


def test_oauth_failures(fakes: FakeVendors, client):
    revoked = ads(secrets={**fakes.secrets("google_ads"), "refresh_token": "revoked"}, now=None, token_endpoint=f"{fakes.url}/token")
    with pytest.raises(PermanentDelivery) as exc:
        revoked.before_send(client)
    assert exc.value.reason == "google_ads:oauth_invalid_grant"
    down = ads(secrets=fakes.secrets("google_ads"), now=None, token_endpoint=f"{fakes.url}/token")
    with pytest.raises(RetryableDelivery):  # token endpoint unreachable: retry later
        ads(secrets=fakes.secrets("google_ads"), now=None, token_endpoint="http://127.0.0.1:9/token").before_send(client)
    down.before_send(client)
    assert down.oauth.valid()


def test_delivers_to_the_fake_with_a_partial_failure(fakes: FakeVendors, client, real_now):
    fakes.google_ads.expect_refusal("UNPARSEABLE_GCLID")  # the bad row, on purpose
    dest = fake_ads(fakes)
    events = [make_event(i, timestamp=real_now - 60) for i in range(3)]
    events[1].click_ids = ClickIds(gclid="GCLID-BAD")
    fakes.google_ads.mark_bad("GCLID-BAD", code="UNPARSEABLE_GCLID")
    _, results = deliver(dest, [task_for(dest, e) for e in events], client)
    (_, result), = results
    assert result.verdict is Verdict.OK
    assert result.per_event == {"hit1:0": (Verdict.PERMANENT, "google_ads:UNPARSEABLE_GCLID", "conversionUploadError.UNPARSEABLE_GCLID")}
    assert fakes.google_ads.count == 2 and fakes.google_ads.token_requests == 1


def test_fake_refuses_what_google_refuses(fakes: FakeVendors, client, real_now):
    fakes.google_ads.expect_refusal("*")  # every request below is one Google refuses
    dest = fake_ads(fakes)
    dest.before_send(client)
    task = task_for(dest, make_event(timestamp=real_now - 60))
    url = f"{fakes.url}/v26/customers/1234567890:uploadClickConversions"
    headers = dest.build_requests([task]).requests[0].headers

    def send(body):
        uids = [f"row{i}" for i in range(len(body["conversions"]))]
        request = VendorRequest("POST", url, uids, headers=headers, json=body)
        return dest.classify(request, client.post(url, headers=headers, json=body), None)

    assert send({"conversions": [task.payload]}).reason == "google_ads:invalid_argument"  # no partialFailure
    two_clicks = {**task.payload, "gbraid": "B"}
    bad_time = {**task.payload, "conversionDateTime": "2026-01-01T00:00:00Z"}
    two_in_one = {**task.payload, "userIdentifiers": [{"hashedEmail": "a" * 64, "hashedPhoneNumber": "b" * 64}]}
    personalization = {**task.payload, "consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}}
    result = send({"conversions": [two_clicks, bad_time, two_in_one, personalization, task.payload], "partialFailure": True})
    assert result.verdict is Verdict.OK  # row 4 went through
    assert "row4" not in result.per_event
    assert sorted(detail for _, _, detail in result.per_event.values()) == [
        "conversionUploadError.MORE_THAN_ONE_CLICK_ID", "dateError.INVALID_FIELD_VALUES_IN_DATE_TIME",
        "fieldError.FIELD_NOT_ALLOWED_FOR_CONVERSION_UPLOADS", "fieldError.ONEOF_FIELD_ALREADY_SET"]
    assert fakes.google_ads.count == 1

    fakes.google_ads.reject_token()
    _, results = deliver(dest, [task], client)
    assert (results[0][1].verdict, results[0][1].reason) == (Verdict.PERMANENT, "google_ads:unauthenticated")


def test_expired_access_token_is_retried_with_a_fresh_one(fakes: FakeVendors, client, real_now):
    fakes.google_ads.expect_refusal("token_expired")
    dest = fake_ads(fakes)
    task = task_for(dest, make_event(timestamp=real_now - 60))
    dest.before_send(client)
    fakes.google_ads.expire_tokens()  # revoked or expired on Google's side before our cache noticed
    _, results = deliver(dest, [task], client)
    assert (results[0][1].verdict, results[0][1].reason) == (Verdict.RETRY, "google_ads:oauth_token_expired")
    _, results = deliver(dest, [task], client)
    assert results[0][1].verdict is Verdict.OK and fakes.google_ads.token_requests == 2


def test_network_error_is_a_retry():
    dest = with_token(ads())
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    assert dest.classify(request, None, httpx.ReadTimeout("slow")).verdict is Verdict.RETRY
