"""tagpipe's match-quality estimate: weights in the order Meta documents its keys, 10 for all of them."""

from __future__ import annotations

from tagpipe.monitoring.match_quality import average_scores, event_score

META_KEYS = ["em", "ph", "external_id", "fbc", "fbp", "ip_ua", "fn", "ln", "ct", "st", "zp", "country"]


def test_every_meta_key_makes_ten_and_none_makes_zero():
    assert event_score(META_KEYS) == 10.0 and event_score([]) == 0.0
    assert event_score(["em"]) > event_score(["ph"]) > event_score(["fbp"])  # Meta's order


def test_a_google_click_id_with_customer_data_makes_ten():
    assert event_score(["gclid", "em", "ph", "fn", "ln"]) == 10.0
    assert event_score(["gclid", "em", "ph", "fn", "ln", "external_id"]) == 10.0  # capped


def test_averages_per_destination_and_event_leave_out_unscored_types():
    rows = [("meta", "purchase", "em,ph", 3), ("meta", "purchase", "", 1), ("ga4", "purchase", "client_id", 9),
            ("ads", "purchase", "gclid", 2)]
    scores = average_scores(rows, {"meta": "meta", "ga4": "ga4", "ads": "google_ads"})
    assert scores == {("meta", "purchase"): (4, 3.75), ("ads", "purchase"): (2, 4.4)}
