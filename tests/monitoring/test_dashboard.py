"""The JSON behind the dashboard and the debug view: exact numbers, token, no PII, and the local stack serving it."""

from __future__ import annotations

import hashlib
import json
import os
import warnings

import httpx
import pytest

from tagpipe.monitoring.alerts import AlertEvaluator
from tagpipe.monitoring.config import DeadLetterRule, MonitoringConfig
from tagpipe.monitoring.dashboard import create_dashboard_app
from tagpipe.monitoring.redact import body_for_display, for_display, raw_hit_for_display
from tests.fakes.vendors import FakeVendors
from tests.monitoring.conftest import NOW, Clock
from tests.monitoring.scenario import (
    PII_EMAIL,
    PII_PHONE,
    PII_PHONE_DIGITS,
    PIXEL,
    add,
    add_hits,
    traced_pipeline,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TYPES = {"meta": "meta", "ga4": "ga4"}

def local_client(app, **kwargs):
    """A client that calls the dashboard by the name it answers to (any other Host gets 421)."""
    return TestClient(app, base_url="http://127.0.0.1:8081", **kwargs)



def pii_free(text: str) -> None:
    lowered = text.lower()
    for needle in (PII_EMAIL, PII_EMAIL.split("@")[0], PII_PHONE, PII_PHONE_DIGITS, "555-0199", "5550199",
                   hashlib.sha256(PII_EMAIL.encode()).hexdigest()):
        assert needle.lower() not in lowered, f"{needle!r} is shown"


@pytest.fixture
def client(store, tmp_path):
    clock = Clock(NOW)
    add_hits(store, NOW - 600, 120)
    add(store, "meta", "delivered", NOW - 500, 80, identifiers=["em", "fbp"])
    add(store, "meta", "delivered", NOW - 500, 20, identifiers=["fbp"])
    add(store, "meta", "dead_lettered", NOW - 400, 12, "meta:190", detail="access token expired or invalid")
    add(store, "meta", "filtered", NOW - 400, 7, "duplicate")
    add(store, "ga4", "delivered", NOW - 300, 90, identifiers=["client_id"])
    add(store, "ga4", "filtered", NOW - 300, 10, "consent")
    add(store, "*", "rejected", NOW - 200, 4, "invalid_json", detail="body is not valid JSON")
    add(store, "meta", "delivered", NOW - 7200, 999)  # outside the hour
    app = create_dashboard_app(store=store, bus=None, destination_types=TYPES, state_dir=tmp_path / "data",
                               clock=clock, token="")
    return local_client(app)


def test_summary_numbers(client):
    s = client.get("/api/summary?window=1h").json()
    t = s["totals"]
    assert (t["hits"], t["delivered"], t["dead_lettered"], t["filtered"]) == (120, 190, 12, 17)
    assert (t["duplicate"], t["consent"], t["collect_rejected"]) == (7, 10, 4)
    assert t["failure_rate"] == round(12 / 202, 4)
    meta = next(d for d in s["destinations"] if d["id"] == "meta")
    assert (meta["label"], meta["delivered"], meta["dead_lettered"], meta["duplicate"]) == ("Meta", 100, 12, 7)
    assert {q["key"]: q["share"] for q in meta["match_quality"]} == {"em": 0.8, "fbp": 1.0}
    assert s["reasons"] == [{"destination": "meta", "label": "Meta", "outcome": "dead_lettered", "reason": "meta:190",
                             "count": 12, "text": "the access token expired"}]
    assert s["collect_rejections"] == [{"reason": "invalid_json", "count": 4, "text": "the body was not valid JSON"}]
    assert len(s["series"]["t"]) == 60 and sum(s["series"]["delivered"]) == 190
    assert client.get("/api/summary?window=24h").json()["totals"]["delivered"] == 190 + 999


def test_alerts_firing_show_on_the_dashboard(client, store, tmp_path):
    AlertEvaluator(store, [DeadLetterRule()], [], tmp_path / "data", clock=Clock(NOW), destination_types=TYPES).evaluate()
    alerts = client.get("/api/summary").json()["alerts"]
    assert [a["title"] for a in alerts] == ["Meta: 12 purchases were dead-lettered in the last 15 minutes"]


def test_token_guards_everything_but_health(store, tmp_path):
    app = create_dashboard_app(store=store, token="let-me-in", state_dir=tmp_path)
    c = local_client(app, follow_redirects=False)
    assert c.get("/healthz").status_code == 200
    assert c.get("/api/summary").status_code == 401
    assert c.get("/").status_code == 401 and "TAGPIPE_DASHBOARD_TOKEN" in c.get("/").text
    assert c.get("/api/summary", headers={"authorization": "Bearer nope"}).status_code == 401
    assert c.get("/api/summary", headers={"authorization": "Bearer let-me-in"}).status_code == 200
    r = c.get("/?token=let-me-in")
    assert r.status_code == 303 and r.headers["location"] == "/" and "httponly" in r.headers["set-cookie"].lower()
    assert c.get("/api/summary").status_code == 200  # the cookie now
    assert c.get("/?token=wrong").status_code == 401


def test_token_from_the_environment_and_security_headers(store, tmp_path, monkeypatch):
    monkeypatch.setenv("TAGPIPE_DASHBOARD_TOKEN", "from-env")
    c = local_client(create_dashboard_app(store=store, state_dir=tmp_path, monitoring=MonitoringConfig()))
    assert c.get("/api/alerts").status_code == 401
    r = c.get("/api/alerts", headers={"authorization": "Bearer from-env"})
    assert r.status_code == 200 and r.headers["x-frame-options"] == "DENY" and "default-src 'self'" in r.headers["content-security-policy"]


def test_display_scrubbing():
    hashed = hashlib.sha256(b"x@y.example").hexdigest()
    doc = {"user_data": {"email": PII_EMAIL, "phone": PII_PHONE, "em": [hashed], "address": {"city": "Berlin"}},
           "client": {"ip": "203.0.113.77", "client_id": "1234567890.1700000000"},
           "note": f"call {PII_PHONE} or mail {PII_EMAIL}", "event_time": "1700000000", "name": "purchase"}
    out = for_display(doc)
    assert out["user_data"]["email"] == "[redacted]" and out["user_data"]["em"] == [f"sha256:{hashed[:8]}…"]
    assert out["client"] == {"ip": "203.0.113.0", "client_id": "123456…"}
    assert out["note"] == "call [redacted] or mail [redacted]"
    assert out["event_time"] == "1700000000" and out["name"] == "purchase"
    gtag = body_for_display(f"en=purchase&ep.user_data.email={PII_EMAIL}\nen=page_view&cid=1.2")
    assert gtag == [[["en", "purchase"], ["ep.user_data.email", "[redacted]"]], [["en", "page_view"], ["cid", "•••"]]]
    raw = raw_hit_for_display({"query": f"em={PII_EMAIL}", "cookies": {"_fbp": "fb.1.1700000000.99"},
                               "client_ip": "198.51.100.9", "headers": {"cookie": "_ga=1", "user-agent": "UA"}})
    assert raw["query"] == [["em", "[redacted]"]] and raw["cookies"] == {"_fbp": "fb.1.1…"}
    assert raw["client_ip"] == "198.51.100.0" and raw["headers"] == {"user-agent": "UA"}


def test_debug_api_traces_a_real_hit_without_pii(tmp_path, monkeypatch):
    hits = [{"path": "/events", "headers": {"x-tagpipe-debug": "qa-1"},
             "json": {"event_name": "purchase", "event_id": "order-77", "value": 10, "currency": "EUR",
                      "page_location": "https://shop.example/thanks",
                      "user_data": {"email": PII_EMAIL, "phone": PII_PHONE}}},
            {"path": "/events", "json": {"event_name": "purchase", "event_id": "order-78",
                                          "page_location": "https://shop.example/thanks"}}]  # not traced
    with FakeVendors() as fakes:
        rt = traced_pipeline(tmp_path, fakes, monkeypatch, hits)
    c = local_client(create_dashboard_app(store=rt.store, bus=rt.bus, destination_types={"meta": "meta", "dry_run": "log"},
                                        state_dir=tmp_path, token=""))
    assert [t["token"] for t in c.get("/api/debug/tokens").json()["tokens"]] == ["qa-1"]
    r = c.get("/api/debug/qa-1")
    pii_free(r.text)
    (hit,) = r.json()["hits"]
    assert hit["raw"]["body"]["user_data"] == {"email": "[redacted]", "phone": "[redacted]"}
    (event,) = hit["events"]
    assert event["event_id"] == "order-77"
    meta = next(d for d in event["destinations"] if d["destination"] == "meta")
    assert meta["task"]["event_name"] == "Purchase" and "em" in meta["task"]["identifiers"]
    assert meta["outcome"]["outcome"] == "delivered"
    (sent,) = [d for d in hit["deliveries"] if d["destination"] == "meta"]
    assert sent["request"]["url"].endswith("/events?access_token=***") and fakes.meta_token not in r.text
    assert sent["response"]["status"] == 200 and sent["verdict"] == "ok"
    assert [e["event_id"] for e in sent["request"]["body"]["data"]] == ["order-77"]  # the batch's other event hidden
    assert c.get("/api/debug/unknown").json() == {"token": "unknown", "hits": []}


def test_lookup_finds_any_hit_by_its_ids_traced_or_not(tmp_path, monkeypatch):
    hits = [{"path": "/events", "headers": {"user-agent": "Mozilla/5.0"},
             "json": {"event_name": "purchase", "event_id": "evt-501", "transaction_id": "T-501", "client_id": "77.88",
                      "value": 10, "currency": "EUR", "page_location": "https://shop.example/thanks",
                      "user_data": {"email": PII_EMAIL}}},
            {"path": "/events", "json": {"event_name": "purchase", "value": "ten"}}]  # refused at collect
    with FakeVendors() as fakes:
        rt = traced_pipeline(tmp_path, fakes, monkeypatch, hits)
    c = local_client(create_dashboard_app(store=rt.store, destination_types={"meta": "meta", "dry_run": "log"},
                                        state_dir=tmp_path, token=""))
    found = {q: c.get("/api/lookup", params={"q": q}).json()["hits"] for q in ("evt-501", "T-501", "77.88")}
    (hit,) = found["evt-501"]
    assert found["T-501"] == found["77.88"] == [hit]  # the order id and the client id name the same hit
    assert c.get("/api/lookup", params={"q": hit["hit_id"]}).json()["hits"] == [hit]
    assert hit["traced"] is False and hit["deliveries"] == []  # no debug token: no request bodies kept
    meta = next(d for d in hit["events"][0]["destinations"] if d["destination"] == "meta")
    assert meta["outcome"]["outcome"] == "delivered" and "em" in meta["outcome"]["identifiers"]
    assert meta["outcome"]["at"] >= hit["received_at"]
    pii_free(json.dumps(found))

    refused = rt.store.query("SELECT hit_id FROM failed_events WHERE stage = 'collect'")
    (refused_hit,) = c.get("/api/lookup", params={"q": refused[0][0]}).json()["hits"]
    assert refused_hit["events"] == [] and refused_hit["failures"][0]["stage"] == "collect"
    assert c.get("/api/lookup", params={"q": "nothing-like-it"}).json()["hits"] == []


def test_tagpipe_trace_prints_each_stage_and_destination(tmp_path, monkeypatch, capsys):
    from tagpipe.ops.cli import main

    hits = [{"path": "/events", "headers": {"x-tagpipe-debug": "t1", "user-agent": "Mozilla/5.0"},
             "json": {"event_name": "purchase", "event_id": "evt-601", "transaction_id": "T-601",
                      "page_location": "https://shop.example/thanks", "user_data": {"email": PII_EMAIL}}}]
    with FakeVendors() as fakes:
        traced_pipeline(tmp_path, fakes, monkeypatch, hits)
    config = tmp_path / "tagpipe.toml"
    config.write_text(f'[storage]\ndir = "{tmp_path / "data"}"\n\n[destinations.meta]\ntype = "meta"\n'
                      f'pixel_id = "{PIXEL}"\n\n[destinations.dry_run]\ntype = "log"\n')
    assert main(["--config", str(config), "trace", "T-601"]) == 0
    out = capsys.readouterr().out
    assert "event purchase  event_id evt-601" in out
    meta_line = next(line for line in out.splitlines() if line.strip().startswith("Meta"))
    assert "delivered" in meta_line and "match keys em" in meta_line
    assert "attempt 1 " in out and "-> 200 (ok)" in out and "access_token=***" in out
    assert PII_EMAIL not in out and fakes.meta_token not in out
    assert main(["--config", str(config), "trace", "unknown-id"]) == 1


def test_a_tags_delivery_is_a_row_of_its_event_not_an_unlabelled_hit_line(tmp_path, monkeypatch):
    tagging = {"triggers": {"purchases": {"event": ["purchase"]}},
               "tags": {"meta_purchase": {"destination": "meta", "triggers": ["purchases"], "event_name": "Purchase"}}}
    hits = [{"path": "/events", "headers": {"x-tagpipe-debug": "tagged", "user-agent": "Mozilla/5.0"},
             "json": {"event_name": "purchase", "event_id": "o-31", "page_location": "https://shop.example/thanks"}}]
    with FakeVendors() as fakes:
        rt = traced_pipeline(tmp_path, fakes, monkeypatch, hits, tagging=tagging)
    c = local_client(create_dashboard_app(store=rt.store, destination_types={"meta": "meta", "dry_run": "log"},
                                        state_dir=tmp_path, token=""))
    (hit,) = c.get("/api/debug/tagged").json()["hits"]
    rows = {(d["destination"], d["tag"]): d for d in hit["events"][0]["destinations"]}
    meta = rows[("meta", "meta_purchase")]
    assert meta["label"] == "Meta · tag meta_purchase" and meta["task"]["event_name"] == "Purchase"
    assert meta["outcome"]["outcome"] == "delivered"
    assert "hit_outcomes" not in hit  # was: "delivered ok" at hit level, beside "No destination took this event"


def test_debug_api_shows_the_vendor_refusal(tmp_path, monkeypatch):
    hits = [{"path": "/events", "query": "tp_debug=expired", "json": {"event_name": "purchase", "event_id": "o-1",
                                                                         "page_location": "https://shop.example/"}}]
    with FakeVendors() as fakes:
        rt = traced_pipeline(tmp_path, fakes, monkeypatch, hits, break_meta=True)
    c = local_client(create_dashboard_app(store=rt.store, destination_types={"meta": "meta"}, state_dir=tmp_path, token=""))
    (hit,) = c.get("/api/debug/expired").json()["hits"]
    meta = next(d for d in hit["events"][0]["destinations"] if d["destination"] == "meta")
    assert (meta["outcome"]["outcome"], meta["outcome"]["reason"]) == ("dead_lettered", "meta:190")
    assert meta["outcome"]["text"] == "the access token expired"
    (sent,) = [d for d in hit["deliveries"] if d["destination"] == "meta"]
    assert sent["response"]["status"] == 400 and sent["verdict"] == "permanent"
    assert "wrong-token" not in json.dumps(hit)


# --------------------------------------------------------------------------- the real local stack


def test_local_stack_serves_the_dashboard_and_runs_the_rules(tmp_path):
    from tests.e2e.stack import LocalStack, free_port, wait_until

    port = free_port()
    env = {"TAGPIPE_DASHBOARD_PORT": str(port)}
    env.pop("TAGPIPE_DASHBOARD_TOKEN", None)
    if os.environ.get("TAGPIPE_DASHBOARD_TOKEN"):
        pytest.skip("TAGPIPE_DASHBOARD_TOKEN is set in this environment")
    config = '[monitoring.alerts]\ninterval_seconds = 1\n\n[destinations.dry_run]\ntype = "log"\n'
    with LocalStack(tmp_path / "stack", config, env) as stack:
        r = httpx.post(f"{stack.url}/events", headers={"x-tagpipe-debug": "e2e"},
                       json={"event_name": "purchase", "event_id": "e2e-1", "user_data": {"email": PII_EMAIL}})
        assert r.status_code == 200
        base = f"http://127.0.0.1:{port}"
        summary = wait_until(lambda: (lambda s: s if s["totals"]["delivered"] == 1 else None)(
            httpx.get(f"{base}/api/summary").json()), what="the dashboard to count the delivery")
        assert summary["destinations"][0]["label"] == "Dry run (dry_run)"
        assert {b["subscription"] for b in summary["backlog"]} == {"transform", "deliver", "dead-letter-archive"}
        trace = wait_until(lambda: httpx.get(f"{base}/api/debug/e2e").json()["hits"], what="the trace")
        pii_free(json.dumps(trace))
        wait_until(lambda: (stack.data_dir / "alert_state.json").exists(), what="the evaluator to run")
