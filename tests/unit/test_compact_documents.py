"""Stored documents and queue messages leave out None fields (exclude_none: Pub/Sub and BigQuery
subscriptions bill by the byte). That is lossless only while every model field that may be None
defaults to None; these tests hold both."""

from __future__ import annotations

import typing

import pydantic
import pytest
from pydantic_core import PydanticUndefined

from tagpipe.errors import InvalidInput
from tagpipe.models import DeliveryTask, Event, RawHit
from tagpipe.parsing import parse_hit
from tests.parsing.test_golden import CASES, load_raw


def _nullable_fields_with_other_defaults(model: type[pydantic.BaseModel], seen: set) -> list[str]:
    if model in seen:
        return []
    seen.add(model)
    found = []
    for name, field in model.model_fields.items():
        nullable = type(None) in typing.get_args(field.annotation)  # the field itself, not a dict's values
        stack, nested = [field.annotation], []
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, pydantic.BaseModel):
                nested.append(t)
            stack.extend(typing.get_args(t))
        if nullable and field.default is not None and field.default is not PydanticUndefined:
            found.append(f"{model.__name__}.{name} (default {field.default!r})")
        if nullable and field.default_factory is not None:
            found.append(f"{model.__name__}.{name} (a default factory)")
        for t in nested:
            found += _nullable_fields_with_other_defaults(t, seen)
    return found


@pytest.mark.parametrize("model", [Event, RawHit, DeliveryTask])
def test_every_nullable_field_defaults_to_none(model):
    assert _nullable_fields_with_other_defaults(model, set()) == []


def test_golden_events_and_hits_read_back_the_same_without_their_none_fields():
    checked = 0
    for case in CASES:
        raw = load_raw(case)
        assert RawHit.model_validate_json(raw.model_dump_json(exclude_none=True)) == raw
        try:
            events = parse_hit(raw)
        except InvalidInput:
            continue
        for event in events:
            compact = event.model_dump_json(exclude_none=True)
            assert len(compact) < len(event.model_dump_json())
            assert Event.model_validate_json(compact) == event
            checked += 1
    assert checked > 20


def test_a_vendor_payload_keeps_its_nulls():
    """exclude_none applies to model fields, never inside the vendor payload (a dict): a null a vendor
    needs stays."""
    task = DeliveryTask(event_uid="u", hit_id="h", event_id="e", event_name="Purchase", event_time=1.0,
                        destination="meta", payload={"custom_data": {"value": None}, "opt_out": None})
    assert DeliveryTask.model_validate_json(task.model_dump_json(exclude_none=True)) == task
