"""Every variable type, the built-ins and prefixed references, default, format, and references between variables."""

from __future__ import annotations

import pytest

from tagpipe.models import Ecommerce, Item

from .conftest import compile_toml, make_event, value


# --------------------------------------------------------------------------- built-ins
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("event_name", "purchase"),
        ("event_id", "evt-1"),
        ("source", "json"),
        ("action_source", "website"),
        ("value", 250.0),
        ("currency", "EUR"),
        ("transaction_id", "T-1"),
        ("items_count", 3),
        ("client_id", "111.222"),
        ("user_id", "u-1"),
        ("user_agent", "Mozilla/5.0 (X11; Linux)"),
        ("ip", "203.0.113.9"),
        ("language", "de-de"),
        ("country", "DE"),
        ("city", "Berlin"),
        ("region", None),
        ("page_url", "https://shop.example.com/products/trail-runner?utm_source=news&utm_source=x#reviews"),
        ("page_hostname", "shop.example.com"),
        ("page_path", "/products/trail-runner"),
        ("page_referrer", "https://www.google.com/"),
        ("page_title", "Trail runner"),
        ("has_email", False),
        ("debug", False),
        ("param.coupon_code", "SUMMER"),
        ("param.absent", None),
        ("user_property.tier", "gold"),
        ("cookie.internal_user", "1"),
        ("header.x-client-geo-country", "DE"),
        ("header.Accept-Language", "de-DE"),  # header names are case-insensitive
        ("query.utm_source", "news"),  # the first occurrence wins
        ("consent.ad_storage", "granted"),
        ("consent.ad_personalization", "denied"),
        ("experiment.checkout_v2", "B"),
        ("click_id.gclid", "G-CLICK"),
        ("click_id.fbc", None),
        ("item.item_id", "SKU-1"),
        ("item.custom.size", "42"),
    ],
)
def test_builtin(name, expected):
    assert value("", name) == expected


def test_page_hostname_from_url_when_the_parser_gave_none():
    event = make_event(page=make_event().page.model_copy(update={"hostname": None}))
    assert value("", "page_hostname", event) == "shop.example.com"


def test_consent_absent_follows_the_configured_default():
    event = make_event(consent=make_event().consent.model_copy(update={"ad_storage": None}))
    granted = compile_toml('[triggers.t]\nvar = "consent.ad_storage"\nexists = true\n', consent_default=True)
    denied = compile_toml('[triggers.t]\nvar = "consent.ad_storage"\nexists = true\n', consent_default=False)
    assert granted.value_of("consent.ad_storage", granted.evaluate(event)) == "granted"
    assert denied.value_of("consent.ad_storage", denied.evaluate(event)) == "denied"


# --------------------------------------------------------------------------- declared types
def test_param_user_property_cookie_header_click_id_consent():
    text = """
[variables.coupon_param]
type = "param"
name = "coupon_code"
[variables.tier]
type = "user_property"
name = "tier"
[variables.ga]
type = "cookie"
name = "_ga"
[variables.geo_header]
type = "header"
name = "CF-IPCountry"
default = "??"
[variables.lb_country]
type = "header"
name = "X-Client-Geo-Country"
[variables.gclid]
type = "click_id"
name = "gclid"
[variables.ads]
type = "consent"
purpose = "ad_user_data"
"""
    assert value(text, "coupon_param") == "SUMMER"
    assert value(text, "tier") == "gold"
    assert value(text, "ga") == "GA1.1.111.222"
    assert value(text, "geo_header") == "??"  # absent header: the default
    assert value(text, "lb_country") == "DE"
    assert value(text, "gclid") == "G-CLICK"
    assert value(text, "ads") == "granted"


@pytest.mark.parametrize(("field", "expected"), [("value", 250.0), ("currency", "EUR"), ("transaction_id", "T-1"),
                                                 ("client_id", "111.222"), ("event_name", "purchase")])  # fmt: skip
def test_event_field(field, expected):
    assert value(f'[variables.v]\ntype = "event"\nfield = "{field}"\n', "v") == expected


def test_geo():
    assert value('[variables.v]\ntype = "geo"\nfield = "country"\n', "v") == "DE"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ('field = "item_category"', "Shoes"),  # first by default
        ('field = "item_category"\naggregate = "last"', "Socks"),
        ('field = "item_id"\naggregate = "all"', ["SKU-1", "SKU-2", "SKU-3"]),
        ('field = "item_id"\naggregate = "all"\njoin = ","', "SKU-1,SKU-2,SKU-3"),
        ('field = "item_category"\naggregate = "unique"\njoin = "|"', "Shoes|Socks"),
        ('aggregate = "count"', 3),
        ('field = "quantity"\naggregate = "count"', 2),  # items that have the field
        ('field = "quantity"\naggregate = "sum"', 3),
        ('field = "price"\naggregate = "sum"', 225.5),
        ('field = "price"\naggregate = "min"', 0.5),
        ('field = "price"\naggregate = "max"', 200),
        ('field = "custom.size"', "42"),
        ('field = "item_brand"\ndefault = "unbranded"', "unbranded"),
    ],
)
def test_item(keys, expected):
    assert value(f'[variables.v]\ntype = "item"\n{keys}\n', "v") == expected


def test_item_without_items():
    event = make_event(ecommerce=Ecommerce(value=1.0))
    assert value('[variables.v]\ntype = "item"\naggregate = "count"\n', "v", event) == 0
    assert value('[variables.v]\ntype = "item"\nfield = "item_id"\naggregate = "all"\n', "v", event) is None
    assert value('[variables.v]\ntype = "item"\nfield = "price"\naggregate = "sum"\n', "v", event) is None


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("", "https://shop.example.com/products/trail-runner?utm_source=news&utm_source=x#reviews"),
        ('part = "host"', "shop.example.com"),
        ('part = "scheme"', "https"),
        ('part = "path"', "/products/trail-runner"),
        ('part = "query"', "utm_source=news&utm_source=x"),
        ('part = "fragment"', "reviews"),
        ('part = "port"', None),
        ('part = "query_param"\nname = "utm_source"', "news"),
        ('part = "query_param"\nname = "utm_medium"\ndefault = "(none)"', "(none)"),
        ('part = "host"\ninput = "page_referrer"', "www.google.com"),
        ('part = "path"\ninput = "{{page_referrer}}"', "/"),
    ],
)
def test_url(keys, expected):
    assert value(f'[variables.v]\ntype = "url"\n{keys}\n', "v") == expected


def test_experiment():
    text = """
[variables.first_id]
type = "experiment"
field = "id"
[variables.first_variant]
type = "experiment"
[variables.banner]
type = "experiment"
id = "banner"
[variables.banner_id]
type = "experiment"
id = "banner"
field = "id"
[variables.absent]
type = "experiment"
id = "nope"
default = "control"
"""
    assert value(text, "first_id") == "checkout_v2"
    assert value(text, "first_variant") == "B"
    assert value(text, "banner") == "A"
    assert value(text, "banner_id") == "banner"
    assert value(text, "absent") == "control"


def test_constant_and_template():
    text = """
[variables.shop]
type = "constant"
value = "acme"
[variables.label]
type = "template"
template = "{{shop}}:{{experiment.checkout_v2}}/{{value}}"
[variables.partial]
type = "template"
template = "{{shop}}-{{param.absent}}"
default = "n/a"
"""
    assert value(text, "shop") == "acme"
    assert value(text, "label") == "acme:B/250"  # 250.0 prints as 250
    assert value(text, "partial") == "n/a"  # a missing reference makes the template missing


def test_lookup():
    text = """
[variables.meta_event]
type = "lookup"
input = "event_name"
map = { purchase = "Purchase", add_to_cart = "AddToCart" }
[variables.form]
type = "lookup"
input = "param.form"
map = { contact = "ContactForm" }
ignore_case = true
[variables.strict]
type = "lookup"
input = "param.form"
map = { contact = "ContactForm" }
default = "Other"
[variables.by_number]
type = "lookup"
input = "value"
map = { "250" = "exactly 250" }
"""
    assert value(text, "meta_event") == "Purchase"
    assert value(text, "meta_event", make_event("page_view")) is None
    assert value(text, "form") == "ContactForm"
    assert value(text, "strict") == "Other"
    assert value(text, "by_number") == "exactly 250"


def test_regex_table_first_match_and_capture_groups():
    text = r"""
[variables.section]
type = "regex"
input = "page_path"
rules = [
  { pattern = '^/products/(?P<slug>[a-z-]+)', output = "product:${slug}" },
  { pattern = '^/products', output = "catalog" },
  { pattern = '^/(\w+)/(\w+)', output = "$2 in $1, $$5" },
]
default = "other"
[variables.full]
type = "regex"
input = "page_path"
full_match = true
rules = [{ pattern = '/products', output = "exact" }]
default = "no"
[variables.ci]
type = "regex"
input = "param.form"
ignore_case = true
rules = [{ pattern = '^contact$', output = 1 }]
"""
    assert value(text, "section") == "product:trail-runner"
    event = make_event(page=make_event().page.model_copy(update={"url": "https://x.example/blog/post"}))
    assert value(text, "section", event) == "post in blog, $5"
    event = make_event(page=make_event().page.model_copy(update={"url": "https://x.example/"}))
    assert value(text, "section", event) == "other"
    assert value(text, "full") == "no"  # full_match: /products/trail-runner is not /products
    assert value(text, "ci") == 1


def test_regex_table_on_a_number_uses_its_text():
    text = r"""
[variables.band]
type = "regex"
input = "value"
rules = [{ pattern = '^\d{1,2}(\.\d+)?$', output = "under-100" }, { pattern = '^(\d)\d{2}(\.\d+)?$', output = "${1}00s" }]
default = "1000-plus"
"""
    assert value(text, "band") == "200s"
    assert value(text, "band", make_event(ecommerce=Ecommerce(value=42.5))) == "under-100"
    assert value(text, "band", make_event(ecommerce=Ecommerce(value=4200))) == "1000-plus"


@pytest.mark.parametrize(("amount", "tier"), [(0, "low"), (49.99, "low"), (50, "mid"), (149, "mid"), (150, "high"),
                                              (1e6, "high"), (None, "none")])  # fmt: skip
def test_range(amount, tier):
    text = """
[variables.tier]
type = "range"
input = "value"
rules = [{ below = 50, output = "low" }, { below = 150, output = "mid" }]
default = "high"
[variables.v]
type = "template"
template = "{{tier}}"
"""
    event = make_event(ecommerce=Ecommerce(value=amount))
    expected = "high" if amount is None else tier  # a missing input gives the default too
    assert value(text, "tier", event) == expected


def test_range_reads_numeric_text():
    text = '[variables.t]\ntype = "range"\ninput = "param.score"\nrules = [{ below = 5, output = "lo" }, { below = 10, output = "hi" }]\n'
    assert value(text, "t") == "hi"


@pytest.mark.parametrize(("fmt", "expected"), [("lower", "summer"), ("upper", "SUMMER"), ("string", "SUMMER"),
                                               ("trim", "SUMMER")])  # fmt: skip
def test_format(fmt, expected):
    assert value(f'[variables.v]\ntype = "param"\nname = "coupon_code"\nformat = "{fmt}"\n', "v") == expected


def test_format_number_and_lists():
    assert value('[variables.v]\ntype = "param"\nname = "score"\nformat = "number"\n', "v") == 7.5
    assert value('[variables.v]\ntype = "param"\nname = "coupon_code"\nformat = "number"\ndefault = 0\n', "v") == 0
    text = '[variables.v]\ntype = "item"\nfield = "item_id"\naggregate = "all"\nformat = "lower"\n'
    assert value(text, "v") == ["sku-1", "sku-2", "sku-3"]


def test_empty_string_is_missing():
    event = make_event(params={"empty": ""})
    assert value('[variables.v]\ntype = "param"\nname = "empty"\ndefault = "d"\n', "v", event) == "d"


def test_variables_chain_and_each_is_computed_once_per_event():
    text = """
[variables.a]
type = "lookup"
input = "b"
map = { gold = "VIP" }
[variables.b]
type = "user_property"
name = "tier"
"""
    tagging = compile_toml(text)
    ev = tagging.evaluate(make_event())
    calls = []
    b = tagging.variables["b"]
    original = b.fn
    b.fn = lambda e: calls.append(1) or original(e)
    assert tagging.value_of("a", ev) == "VIP"
    assert tagging.value_of("a", ev) == "VIP"
    assert tagging.value_of("b", ev) == "gold"
    assert calls == [1]
    assert tagging.value_of("a", tagging.evaluate(make_event(user_properties={}))) is None


def test_item_list_values_in_a_template_are_joined():
    text = """
[variables.ids]
type = "item"
field = "item_id"
aggregate = "all"
[variables.t]
type = "template"
template = "ids={{ids}}"
"""
    assert value(text, "t") == "ids=SKU-1,SKU-2,SKU-3"


def test_item_quantity_sum_with_float_quantities():
    event = make_event(ecommerce=Ecommerce(items=[Item(quantity=0.1), Item(quantity=0.2)]))
    assert value('[variables.v]\ntype = "item"\nfield = "quantity"\naggregate = "sum"\n', "v", event) == 0.3
