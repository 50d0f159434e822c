"""ISO 4217 at every ingress, through one rule (parsing/_common.py currency_code): a currency the table
does not know is refused the same way from gtag, MP and the JSON API, naming the parameter, never the
value; a known one arrives upper-case whatever its case."""

from __future__ import annotations

from urllib.parse import quote

import pycountry
import pytest

from tagpipe.parsing import validate_hit
from tagpipe.parsing._iso4217 import CURRENCIES

from .helpers import BASE, gtag_hit, json_hit, mp_hit, one, refused

BAD = ["US$", "EURO", "eu", "XYZ", "€", "U S D", "usd1"]


def mp_body(currency: object) -> dict:
    return {"client_id": "1.2", "events": [{"name": "purchase", "params": {"currency": currency, "value": 1}}]}


def test_the_table_is_the_installed_pycountry_list() -> None:
    # pycountry carries Debian iso-codes' ISO 4217 list (the package facebook-business installs)
    assert {c.alpha_3 for c in pycountry.currencies} == CURRENCIES


@pytest.mark.parametrize("bad", BAD)
def test_an_unknown_currency_is_refused_at_every_ingress(bad: str) -> None:
    for hit, where in (
        (gtag_hit(BASE + "&en=purchase&cu=" + quote(bad)), "'cu'"),
        (gtag_hit(BASE + "&en=purchase&ep.currency=" + quote(bad)), "'ep.currency'"),
        (mp_hit(mp_body(bad)), "events[0].params.currency"),
        (json_hit({"event_name": "purchase", "currency": bad}), "currency"),
    ):
        err = refused(hit, "invalid_field")
        assert where in err.message and "ISO 4217" in err.message
        assert bad not in err.message.replace("ISO 4217", "")
    with pytest.raises(Exception) as info:  # collect's fast check refuses the gtag hit the same way
        validate_hit(gtag_hit(BASE + "&en=purchase&cu=" + quote(bad)))
    assert getattr(info.value, "code", None) == "invalid_field"


@pytest.mark.parametrize(("given", "code"), [("usd", "USD"), (" eur ", "EUR"), ("JPY", "JPY"), ("chf", "CHF")])
def test_a_known_currency_arrives_upper_case_from_every_ingress(given: str, code: str) -> None:
    assert one(gtag_hit(BASE + "&en=purchase&cu=" + quote(given))).ecommerce.currency == code
    assert one(gtag_hit(BASE + "&en=purchase&ep.currency=" + quote(given))).ecommerce.currency == code
    assert one(mp_hit(mp_body(given))).ecommerce.currency == code
    assert one(json_hit({"event_name": "purchase", "currency": given})).ecommerce.currency == code


def test_cu_wins_over_ep_currency_and_is_the_one_checked() -> None:
    assert one(gtag_hit(BASE + "&en=purchase&cu=EUR&ep.currency=US%24")).ecommerce.currency == "EUR"
