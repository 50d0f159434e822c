"""Helpers: compile a TOML snippet into a Tagging, and build canonical events the way parsers do."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tagpipe.models import ClickIds, ClientContext, Consent, Ecommerce, Event, Item, PageContext
from tagpipe.tagging import Source, Tagging, compile_tagging

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def make_event(name: str = "purchase", **overrides: Any) -> Event:
    fields: dict[str, Any] = dict(
        event_uid="hit1:0", hit_id="hit1", event_id="evt-1", name=name, timestamp=NOW - 60, source="json",
        page=PageContext(url="https://shop.example.com/products/trail-runner?utm_source=news&utm_source=x#reviews",
                         referrer="https://www.google.com/", title="Trail runner", hostname="shop.example.com"),
        client=ClientContext(client_id="111.222", user_id="u-1", user_agent="Mozilla/5.0 (X11; Linux)",
                             ip="203.0.113.9", language="de-de", geo={"country": "DE", "city": "Berlin"}),
        consent=Consent(ad_storage=True, analytics_storage=True, ad_user_data=True, ad_personalization=False),
        click_ids=ClickIds(gclid="G-CLICK"),
        ecommerce=Ecommerce(value=250.0, currency="EUR", transaction_id="T-1", items=[
            Item(item_id="SKU-1", item_category="Shoes", price=200.0, quantity=1, custom={"size": "42"}),
            Item(item_id="SKU-2", item_category="Socks", price=25.0, quantity=2),
            Item(item_id="SKU-3", item_category="Socks", price=0.5, quantity=None),
        ]),
        params={"coupon_code": "SUMMER", "form": "Contact", "score": "7.5"},
        user_properties={"tier": "gold"},
        experiments={"checkout_v2": "B", "banner": "A"},
        cookies={"internal_user": "1", "_ga": "GA1.1.111.222"},
        headers={"x-client-geo-country": "DE", "accept-language": "de-DE"},
    )  # fmt: skip
    fields.update(overrides)
    return Event(**fields)


def compile_toml(text: str, destinations: dict[str, str] | None = None, consent_default: bool = True,
                 path: str = "test.toml") -> Tagging:  # fmt: skip
    data = tomllib.loads(text)
    return compile_tagging(
        data.get("variables", {}), data.get("triggers", {}), data.get("tags", {}),
        destinations if destinations is not None else {"meta": "meta", "ga4": "ga4", "ads": "google_ads"},
        Source(path, text), consent_default,
    )  # fmt: skip


def value(text: str, name: str, event: Event | None = None) -> Any:
    """The value of variable `name` declared in `text` (a [variables] snippet) for the event."""
    tagging = compile_toml(text)
    ev = tagging.evaluate(event or make_event())
    if name not in tagging.variables:  # a built-in: compile a reference to it
        tagging = compile_toml(text + f'\n[triggers.t]\nvar = "{name}"\nexists = true\n')
        ev = tagging.evaluate(event or make_event())
    return tagging.value_of(name, ev)


def fires(conditions: str, event: Event | None = None, variables: str = "") -> bool:
    """Whether a trigger with these condition lines matches the event."""
    tagging = compile_toml(f"{variables}\n[triggers.t]\n{conditions}\n")
    return tagging.triggers["t"].matches(tagging.evaluate(event or make_event()))


@pytest.fixture
def event() -> Event:
    return make_event()
