"""Every operator, missing and list values, ignore_case, and all / any / not nesting."""

from __future__ import annotations

import pytest

from tagpipe.models import Ecommerce

from .conftest import compile_toml, fires, make_event

IDS = '[variables.ids]\ntype = "item"\nfield = "item_id"\naggregate = "all"\n'


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # equals: typed by the operand
        ('var = "event_name"\nequals = "purchase"', True),
        ('var = "event_name"\nequals = "Purchase"', False),
        ('var = "event_name"\nequals = "Purchase"\nignore_case = true', True),
        ('var = "value"\nequals = 250', True),
        ('var = "value"\nequals = "250"', True),  # 250.0 reads as "250"
        ('var = "param.score"\nequals = 7.5', True),  # numeric text compares as a number
        ('var = "has_email"\nequals = false', True),
        ('var = "cookie.internal_user"\nequals = true', True),  # "1" reads as true
        # not_equals
        ('var = "currency"\nnot_equals = "USD"', True),
        ('var = "currency"\nnot_equals = "EUR"', False),
        ('var = "param.absent"\nnot_equals = "x"', True),  # missing is not equal to anything
        # contains / starts_with / ends_with (a string or any of a list)
        ('var = "page_url"\ncontains = "trail"', True),
        ('var = "page_url"\ncontains = ["nope", "utm_"]', True),
        ('var = "page_url"\ncontains = "TRAIL"', False),
        ('var = "page_url"\ncontains = "TRAIL"\nignore_case = true', True),
        ('var = "page_path"\nstarts_with = "/products"', True),
        ('var = "page_path"\nstarts_with = ["/cart", "/checkout"]', False),
        ('var = "page_hostname"\nends_with = ".example.com"', True),
        ('var = "page_hostname"\nends_with = ".EXAMPLE.COM"\nignore_case = true', True),
        # regex: search, compiled once
        ('var = "page_path"\nregex = \'^/products/[a-z-]+$\'', True),
        ('var = "page_path"\nregex = \'runner\'', True),
        ('var = "user_agent"\nregex = \'bot|crawler\'', False),
        ('var = "user_agent"\nregex = \'LINUX\'\nignore_case = true', True),
        ('var = "value"\nregex = \'^2\\d\\d$\'', True),
        # in
        ('var = "country"\nin = ["DE", "AT", "CH"]', True),
        ('var = "country"\nin = ["de"]', False),
        ('var = "country"\nin = ["de"]\nignore_case = true', True),
        ('var = "value"\nin = [100, 250]', True),
        ('var = "value"\nin = ["250"]', True),
        ('var = "param.score"\nin = [7.5]', True),
        # numeric
        ('var = "value"\ngt = 200', True),
        ('var = "value"\ngt = 250', False),
        ('var = "value"\ngte = 250', True),
        ('var = "value"\nlt = 250', False),
        ('var = "value"\nlte = 250', True),
        ('var = "value"\ngt = 100\nlte = 300', True),  # several operators on one var: all of them
        ('var = "value"\ngt = 100\nlt = 200', False),
        ('var = "param.score"\ngt = 7', True),  # numeric text
        ('var = "currency"\ngt = 1', False),  # not a number: never matches
        # exists
        ('var = "param.coupon_code"\nexists = true', True),
        ('var = "param.absent"\nexists = true', False),
        ('var = "param.absent"\nexists = false', True),
        ('var = "click_id.fbc"\nexists = false', True),
        # missing values match nothing else
        ('var = "param.absent"\nequals = ""', False),
        ('var = "param.absent"\ncontains = ""', False),
        ('var = "param.absent"\nlt = 0', False),
        ('var = "param.absent"\nin = ["x"]', False),
        # event shorthand
        ('event = "purchase"', True),
        ('event = ["add_to_cart", "purchase"]', True),
        ('event = "refund"', False),
        ('event = "*"', True),
        ('event = "purchase"\nvar = "value"\ngt = 200', True),  # AND
        ('event = "purchase"\nvar = "value"\ngt = 300', False),
    ],
)
def test_operator(condition, expected):
    assert fires(condition) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('var = "ids"\nequals = "SKU-2"', True),  # a list matches when any element matches
        ('var = "ids"\ncontains = "SKU"', True),
        ('var = "ids"\nstarts_with = "X"', False),
        ('var = "ids"\nin = ["SKU-3", "SKU-9"]', True),
        ('var = "ids"\nregex = \'-3$\'', True),
        ('var = "ids"\nnot_equals = "SKU-2"', False),  # no element equals it
        ('var = "ids"\nnot_equals = "SKU-9"', True),
        ('var = "ids"\nexists = true', True),
    ],
)
def test_list_values(condition, expected):
    assert fires(condition, variables=IDS) is expected


def test_list_values_empty_is_missing():
    event = make_event(ecommerce=Ecommerce(value=1))
    assert fires('var = "ids"\nexists = false', event, IDS)
    assert not fires('var = "ids"\nequals = "SKU-1"', event, IDS)


def test_all_any_not_nest():
    condition = """
all = [
  { event = ["purchase", "refund"] },
  { any = [ { var = "value", gte = 1000 }, { var = "param.coupon_code", exists = true } ] },
  { not = { var = "page_hostname", ends_with = ".staging.example.com" } },
  { not = [ { var = "country", equals = "US" }, { var = "user_agent", regex = 'bot' } ] },
]
"""
    assert fires(condition)
    assert not fires(condition, make_event(params={}))  # value 250 < 1000 and no coupon
    assert not fires(condition, make_event(client=make_event().client.model_copy(update={"geo": {"country": "US"}})))
    assert fires(condition, make_event("refund", params={}, ecommerce=Ecommerce(value=5000)))


def test_top_level_keys_combine_with_and():
    condition = 'event = "purchase"\nany = [{ var = "country", equals = "FR" }, { var = "value", gt = 100 }]\nnot = { var = "currency", equals = "USD" }'
    assert fires(condition)
    assert not fires(condition, make_event(ecommerce=Ecommerce(value=250, currency="USD")))


def test_consent_condition():
    assert fires('var = "consent.ad_personalization"\nequals = "denied"')
    assert fires('var = "consent.ad_storage"\nequals = "granted"')


def test_each_trigger_is_evaluated_once_per_event():
    tagging = compile_toml("""
[triggers.t]
event = "purchase"
[tags.a]
destination = "meta"
triggers = ["t"]
[tags.b]
destination = "meta"
triggers = ["t"]
""")
    trigger = tagging.triggers["t"]
    calls = []
    node = trigger.node
    trigger.node = lambda ev: calls.append(1) or node(ev)
    ev = tagging.evaluate(make_event())
    assert [d.status for d in tagging.decide(ev, "meta")] == ["fired", "fired"]
    assert calls == [1]
