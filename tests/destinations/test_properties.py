"""Whatever arrives, what a destination emits passes the vendor's rules (the fake's independent reading).

GA4 matters most: /mp/collect answers 2xx and silently drops anything invalid, so an event that reaches
it must already be valid. Meta matters because one bad event fails its whole request.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagpipe.destinations.ga4 import Ga4MeasurementProtocol, Ga4Settings
from tagpipe.destinations.meta import MetaCapi, MetaSettings
from tagpipe.models import Address, UserData
from tests.destinations.conftest import NOW, make_event, task_for
from tests.fakes.vendors import _ga4_validation, _meta_event_problem

names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=50)
values = st.one_of(st.text(max_size=1200), st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False), st.booleans())
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ga4() -> Ga4MeasurementProtocol:
    dest = Ga4MeasurementProtocol("ga4", Ga4Settings(measurement_id="G-T1"), {"api_secret": "s"})
    dest.now = lambda: NOW  # type: ignore[method-assign]
    return dest


@SETTINGS
@given(
    params=st.dictionaries(names, values, max_size=40),
    user_properties=st.dictionaries(names, values, max_size=30),
    title=st.text(max_size=600),
    n_events=st.integers(1, 30),
)
def test_ga4_never_sends_what_ga4_would_drop(params, user_properties, title, n_events):
    dest = _ga4()
    tasks = []
    for i in range(n_events):
        event = make_event(i, params=params, user_properties=user_properties)
        event.page = event.page.model_copy(update={"title": title})
        tasks.append(task_for(dest, event))
    batch = dest.build_requests(tasks)
    assert not batch.rejected and sum(len(r.event_uids) for r in batch.requests) == n_events
    for request in batch.requests:
        size = len(json.dumps(request.json, separators=(",", ":"), ensure_ascii=False).encode())
        assert _ga4_validation(request.json, size, NOW) == []


text = st.text(max_size=40)


@SETTINGS
@given(email=text, phone=text, first=text, last=text, city=text, region=text, zip_code=text, country=text,
       gender=text, dob=text, external_id=text)
def test_meta_user_data_is_always_acceptable(email, phone, first, last, city, region, zip_code, country, gender, dob, external_id):
    dest = MetaCapi("meta", MetaSettings(pixel_id="1"), {"access_token": "t"})
    dest.now = lambda: NOW  # type: ignore[method-assign]
    event = make_event(user_data=UserData(
        email=email, phone=phone, gender=gender, date_of_birth=dob, external_id=external_id,
        address=Address(first_name=first, last_name=last, city=city, region=region, postal_code=zip_code, country=country),
    ))
    payload = task_for(dest, event).payload
    assert _meta_event_problem(payload, NOW) is None
