"""Meta SDK-style: our output equals what facebook-business 26.0.3 itself produces.

For every fixture row marked "sdk", the expected value is computed by calling the installed SDK
(facebook_business.adobjects.serverside.normalize.Normalize), not copied from our code. Departures that
are policy (None where the SDK raises or hashes ''; external_id; default_country) are asserted explicitly.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagpipe.hashing import meta_hash, meta_normalize, sha256_hex
from tests.hashing._fixtures import params

serverside = pytest.importorskip("facebook_business.adobjects.serverside.normalize")
Normalize = serverside.Normalize
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sdk(field: str, value: str, *, hashed: bool) -> str | None:
    """What the SDK produces; None where it raises (TypeError / ValueError / UnicodeEncodeError)."""
    try:
        return Normalize.normalize(field, value, hashed)
    except (TypeError, ValueError):
        return None


@pytest.mark.parametrize("row", params("meta", "field"))
def test_fixture(row):
    f, v, dc = row["field"], row["input"], row.get("default_country")
    assert meta_normalize(f, v, default_country=dc) == row["normalized"]
    assert meta_hash(f, v, default_country=dc) == row["hash"]
    if row["hash"] is not None and not row.get("already_hashed"):
        assert row["hash"] == sha256_hex(row["normalized"])


@pytest.mark.parametrize("row", [p for p in params("meta", "field") if p.values[0].get("sdk")])
def test_fixture_equals_installed_sdk(row):
    f, v = row["field"], row["input"]
    sdk_norm, sdk_hash = sdk(f, v, hashed=False), sdk(f, v, hashed=True)
    if row.get("sdk_hashes_empty"):
        # departure 2: the SDK hashes the empty string; we drop the key
        assert sdk_norm == "" and sdk_hash == EMPTY_SHA256
        assert meta_hash(f, v) is None
        return
    assert meta_normalize(f, v) == sdk_norm
    assert meta_hash(f, v) == sdk_hash


def test_sdk_userdata_object_agrees():
    """The same through the SDK's UserData.normalize() (user_data.py), which builds the real payload."""
    user_data = pytest.importorskip("facebook_business.adobjects.serverside.user_data")
    ud = user_data.UserData(
        emails=[" John.Doe@Example.COM "], phones=["+1 (650) 555-1234"], first_names=["Zoë"],
        last_names=["O'Brien"], cities=["St. Louis"], states=["N.Y."], zip_codes=["94025-1234"],
        country_codes=["US"], dates_of_birth=["19900102"],
    )  # fmt: skip
    payload = ud.normalize()
    ours = {
        "em": meta_hash("em", " John.Doe@Example.COM "), "ph": meta_hash("ph", "+1 (650) 555-1234"),
        "fn": meta_hash("fn", "Zoë"), "ln": meta_hash("ln", "O'Brien"), "ct": meta_hash("ct", "St. Louis"),
        "st": meta_hash("st", "N.Y."), "zp": meta_hash("zp", "94025-1234"), "country": meta_hash("country", "US"),
        "db": meta_hash("db", "19900102"),
    }  # fmt: skip
    for key, value in ours.items():
        assert payload[key] == [value], key


# Property check: any string, every SDK-hashed field. Alphabet biased to what normalisation touches.
_ALPHABET = st.sampled_from(
    list("aAzZ09 5.-()+@_'/,\t\n#")
    + ["ë", "Ü", "李", "ß", "İ", "\u00a0", "\u2003", "٣", "0", "0", "00", "@x.io"]
)
_TEXT = st.one_of(st.text(max_size=30), st.lists(_ALPHABET, max_size=20).map("".join))


@settings(max_examples=400, deadline=None)
@given(
    field=st.sampled_from(
        ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "f5first", "f5last", "fi", "dobd", "dobm", "doby"]
    ),
    value=_TEXT,
)
def test_property_equals_sdk(field, value):
    expected = sdk(field, value, hashed=True)
    if expected == EMPTY_SHA256:
        expected = None  # departure 2
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        expected = None  # the SDK raises UnicodeEncodeError (a ValueError) inside hash_sha_256
    assert meta_hash(field, value) == expected


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("f5first", ["Jonathan", " Zoë ", "AL", "Jean-Luc", "李小龙先生们"]),
        ("f5last", ["O'Brien-Smith", "Ng"]),
        ("fi", ["Jane", " ë", "1"]),
        ("dobd", ["5", "05", "31", "32", "0", "ab", " 7 ", "1_2", "٣"]),
        ("dobm", ["1", "12", "13", "00", "x"]),
        ("doby", ["1990", "90", "19900", "abcd", " 2001 "]),
    ],
)
def test_partial_name_and_birth_fields_equal_sdk(field, values):
    for v in values:
        assert meta_hash(field, v) == sdk(field, v, hashed=True), v


def test_default_country_none_is_exactly_sdk_for_phones():
    for v in ["+44 (0)20 7946 0958", "020 7946 0958", "650-555-1234", "0044 20 7946 0958", "(0)20 1", "abc"]:
        assert meta_hash("ph", v) == sdk("ph", v, hashed=True)
        assert meta_hash("ph", v, default_country=None) == sdk("ph", v, hashed=True)


def test_external_id_policy_differs_from_sdk_on_purpose():
    # The SDK sends external_id as given (user_data.py: 'external_id': self.__dedup_list(self.external_ids)).
    user_data = pytest.importorskip("facebook_business.adobjects.serverside.user_data")
    assert user_data.UserData(external_ids=[" AbC-123 "]).normalize()["external_id"] == [" AbC-123 "]
    assert meta_hash("external_id", " AbC-123 ") == sha256_hex("abc-123")


def test_unknown_field_is_a_programming_error():
    with pytest.raises(ValueError):
        meta_hash("email", "a@b.co")
    with pytest.raises(ValueError):
        meta_normalize("phone", None)


def test_non_string_input_is_none():
    assert meta_hash("zp", 94025) is None  # type: ignore[arg-type]
    assert meta_hash("em", None) is None
