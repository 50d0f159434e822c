"""Issue 20's hashing modules keep the shared contract: str in, 64-hex or None out, never raising, never re-hashing."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tagpipe.hashing.linkedin import linkedin_email_hash
from tagpipe.hashing.microsoft import microsoft_hash
from tagpipe.hashing.pinterest import PINTEREST_FIELDS, pinterest_hash
from tagpipe.hashing.reddit import reddit_hash
from tagpipe.hashing.snapchat import SNAPCHAT_FIELDS, snapchat_hash

HEX64 = re.compile(r"[0-9a-f]{64}")
ALREADY = hashlib.sha256(b"x").hexdigest().upper()


def calls(value: str):
    for field in sorted(PINTEREST_FIELDS):
        yield pinterest_hash(field, value, default_country="US")
    for field in sorted(SNAPCHAT_FIELDS):
        yield snapchat_hash(field, value, default_country="GB")
    for kind in ("email", "phone", "external_id"):
        yield reddit_hash(kind, value, default_country="DE")
        yield microsoft_hash(kind, value, default_country="FR")
    yield linkedin_email_hash(value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600))
def test_any_text_gives_a_hash_or_none(value):
    for out in calls(value):
        assert out is None or HEX64.fullmatch(out)


def test_a_hash_passes_through_lowercased_and_empties_drop():
    assert set(calls(f"  {ALREADY} ")) == {ALREADY.lower()}
    assert set(calls("   ")) == {None} and set(calls("")) == {None}
