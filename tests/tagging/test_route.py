"""Transformer.route with tags: which destination gets which task, and exactly one record per key."""

from __future__ import annotations

import re
import tomllib

import pytest

from tagpipe.config import Config
from tagpipe.models import Consent, Event, OutcomeKind
from tagpipe.ops.preview import PreviewRuntime
from tagpipe.pipeline.transform import Transformer

from .conftest import make_event

DESTS = """
[destinations.crm]
type = "webhook"
endpoint = "https://crm.example.com/hook"

[destinations.backup]
type = "webhook"
endpoint = "https://backup.example.com/hook"

[destinations.meta]
type = "meta"
pixel_id = "1234567890"

[triggers.purchase]
event = "purchase"

[triggers.big]
event = "purchase"
var = "value"
gt = 200

[triggers.internal]
var = "cookie.internal_user"
equals = "1"
"""


@pytest.fixture(autouse=True)
def secrets(monkeypatch):
    monkeypatch.setenv("TAGPIPE_WEBHOOK_SECRET", "s3cret-webhook")
    monkeypatch.setenv("META_ACCESS_TOKEN", "meta-token")


def transformer(text: str, **config) -> Transformer:
    data = tomllib.loads(DESTS + text)
    t = Transformer(PreviewRuntime(Config(**data, **config)))  # type: ignore[arg-type]
    for destination in t.rt.destinations.values():
        destination.now = lambda: make_event().timestamp + 60
    return t


def route(text: str, event: Event | None = None, **config):
    tasks, outcomes = transformer(text, **config).route(event or make_event(cookies={}))
    return tasks, outcomes


def keys(tasks, outcomes) -> list[tuple[str, str]]:
    return [(t.event_uid, t.destination) for t in tasks] + [(o.event_uid, o.destination) for o in outcomes]


def test_no_tags_every_destination_gets_the_default_mapping():
    tasks, outcomes = route("")
    assert [(t.destination, t.event_uid, t.event_name) for t in tasks] == [
        ("crm", "hit1:0", "purchase"), ("backup", "hit1:0", "purchase"), ("meta", "hit1:0", "Purchase")]
    assert outcomes == []


def test_a_tagged_destination_gets_one_task_per_firing_tag_others_unchanged():
    tasks, outcomes = route("""
[tags.crm_purchase]
destination = "crm"
triggers = ["purchase"]
[tags.crm_big]
destination = "crm"
triggers = ["big"]
event_name = "big_purchase"
params = { tier = "high" }
""")
    crm = [(t.event_uid, t.event_name, t.payload["params"].get("tier")) for t in tasks if t.destination == "crm"]
    assert crm == [("hit1:0#crm_purchase", "purchase", None), ("hit1:0#crm_big", "big_purchase", "high")]
    assert [(t.event_uid, t.event_name) for t in tasks if t.destination == "backup"] == [("hit1:0", "purchase")]
    assert outcomes == []


def test_no_tag_fired_is_one_filtered_outcome_for_the_destination():
    text = """
[tags.crm_big]
destination = "crm"
triggers = ["big"]
blocking_triggers = ["internal"]
[tags.crm_never]
destination = "crm"
triggers = ["big"]
enabled = false
"""
    tasks, outcomes = route(text, make_event(cookies={"internal_user": "1"}))
    assert [t.destination for t in tasks] == ["backup", "meta"]
    [o] = outcomes
    assert (o.event_uid, o.destination, o.outcome, o.reason) == ("hit1:0", "crm", OutcomeKind.FILTERED, "no_tag_fired")
    assert o.detail == "no tag for crm fired; crm_big (blocked by internal)"
    tasks, outcomes = route(text, make_event("add_to_cart", cookies={}))
    assert [(o.destination, o.reason, o.detail) for o in outcomes] == [("crm", "no_tag_fired", "no tag for crm fired")]


def test_a_destination_whose_only_tag_is_disabled_gets_nothing():
    _, outcomes = route('[tags.off]\ndestination = "meta"\ntriggers = ["purchase"]\nenabled = false\n')
    assert [(o.destination, o.reason) for o in outcomes] == [("meta", "no_tag_fired")]


def test_consent_and_disabled_come_before_tags():
    text = '[tags.m]\ndestination = "meta"\ntriggers = ["purchase"]\nevent_name = "X"\n'
    denied = make_event(cookies={}, consent=Consent(ad_storage=False, ad_user_data=True))
    tasks, outcomes = route(text, denied)
    assert [(o.event_uid, o.destination, o.reason) for o in outcomes] == [("hit1:0", "meta", "consent")]
    data = DESTS.replace('pixel_id = "1234567890"', 'pixel_id = "1234567890"\nenabled = false')
    t = Transformer(PreviewRuntime(Config(**tomllib.loads(data + text))))  # type: ignore[arg-type]
    _, outcomes = t.route(make_event(cookies={}))
    assert [(o.destination, o.reason) for o in outcomes] == [("meta", "disabled")]


def test_two_tags_sending_the_same_vendor_event_the_first_wins():
    tasks, outcomes = route("""
[tags.a]
destination = "meta"
triggers = ["purchase"]
[tags.b]
destination = "meta"
triggers = ["big"]
event_name = "Purchase"
[tags.c]
destination = "meta"
triggers = ["big"]
event_name = "HighValuePurchase"
""")
    assert [(t.event_uid, t.event_name) for t in tasks if t.destination == "meta"] == [
        ("hit1:0#a", "Purchase"), ("hit1:0#c", "HighValuePurchase")]
    [o] = outcomes
    assert (o.event_uid, o.destination, o.reason, o.detail) == (
        "hit1:0#b", "meta", "duplicate", "tag a already sends Purchase for this event")


def test_event_name_that_resolves_to_nothing_and_unmapped_events():
    tasks, outcomes = route("""
[variables.name]
type = "lookup"
input = "event_name"
map = { refund = "Refund" }
[tags.dynamic]
destination = "meta"
triggers = ["purchase"]
event_name = "{{name}}"
[tags.unmapped]
destination = "crm"
triggers = ["all"]
[triggers.all]
event = "*"
""", make_event("purchase", cookies={}))
    assert [(o.event_uid, o.destination, o.reason) for o in outcomes] == [("hit1:0#dynamic", "meta", "tag_event_name_empty")]
    tasks, outcomes = route('[tags.m]\ndestination = "meta"\ntriggers = ["all"]\n[triggers.all]\nevent = "*"\n',
                            make_event("refund", cookies={}))
    assert [(o.event_uid, o.reason, o.detail) for o in outcomes] == [("hit1:0#m", "not_mapped", "meta does not take 'refund'")]


def test_rejected_by_the_vendor_is_recorded_per_tag():
    event = make_event(cookies={}, client=make_event().client.model_copy(update={"user_agent": None}))
    _, outcomes = route('[tags.m]\ndestination = "meta"\ntriggers = ["purchase"]\nevent_name = "X"\n', event)
    assert [(o.event_uid, o.outcome, o.reason) for o in outcomes] == [
        ("hit1:0#m", OutcomeKind.REJECTED, "meta:missing_client_user_agent")]


def test_every_event_destination_pair_has_records_and_no_key_twice():
    text = """
[tags.a]
destination = "meta"
triggers = ["purchase"]
[tags.b]
destination = "meta"
triggers = ["big"]
event_name = "Purchase"
[tags.c]
destination = "crm"
triggers = ["big"]
blocking_triggers = ["internal"]
"""
    t = transformer(text)
    for event in (make_event(), make_event(cookies={}), make_event("page_view"), make_event("add_to_cart", cookies={})):
        tasks, outcomes = t.route(event)
        k = keys(tasks, outcomes)
        assert len(k) == len(set(k)), k
        assert {d for _, d in k} == {"crm", "backup", "meta"}
        assert all(uid.split("#")[0] == event.event_uid for uid, _ in k)


def test_params_do_not_leak_between_tags_or_into_the_event():
    event = make_event(cookies={}, params={"keep": "me"})
    before = event.model_dump()
    tasks, _ = route("""
[tags.a]
destination = "crm"
triggers = ["purchase"]
params = { a = 1 }
[tags.b]
destination = "crm"
triggers = ["purchase"]
event_name = "other"
params = { b = "{{currency}}" }
keep_event_params = false
""", event)
    assert [t.payload["params"] for t in tasks if t.destination == "crm"] == [{"keep": "me", "a": 1}, {"b": "EUR"}]
    assert [t.payload["params"] for t in tasks if t.destination == "backup"] == [{"keep": "me"}]
    assert event.model_dump() == before


def test_tag_params_become_meta_custom_data():
    tasks, _ = route("""
[variables.cats]
type = "item"
field = "item_category"
aggregate = "unique"
[tags.m]
destination = "meta"
triggers = ["big"]
event_name = "HighValuePurchase"
params = { product_categories = "{{cats}}", ab_variant = "{{experiment.checkout_v2}}", fixed = 7 }
""")
    [meta] = [t for t in tasks if t.destination == "meta"]
    custom = meta.payload["custom_data"]
    assert meta.event_name == "HighValuePurchase" and meta.payload["event_name"] == "HighValuePurchase"
    assert (custom["product_categories"], custom["ab_variant"], custom["fixed"]) == ("Shoes,Socks", "B", 7)


def test_evaluation_compiles_no_regex_and_validates_no_model(monkeypatch):
    """Everything is compiled at load: the per-event path never compiles a pattern or validates a model."""
    t = transformer("""
[variables.section]
type = "regex"
input = "page_path"
rules = [{ pattern = '^/products/(\\w+)', output = "p-$1" }]
[triggers.r]
var = "user_agent"
regex = 'Linux'
[tags.a]
destination = "crm"
triggers = ["r"]
event_name = "{{section}}"
params = { s = "{{section}}" }
""")
    event = make_event()
    tagging = t.tagging

    def boom(*args, **kwargs):
        raise AssertionError("compiled or validated per event")

    monkeypatch.setattr(re, "compile", boom)
    monkeypatch.setattr(re, "search", boom)
    monkeypatch.setattr(re, "match", boom)
    monkeypatch.setattr(Event, "model_validate", boom)
    monkeypatch.setattr(Event, "__init__", boom)
    ev = tagging.evaluate(event)
    [decision] = tagging.decide(ev, "crm")
    tagged = decision.tag.apply(ev)
    assert tagged.vendor_event_name == "p-trail" and tagged.params["s"] == "p-trail"
