"""Meta docs-style (opt-in): gender f/m, YYYYMMDD, state and country names, punctuation-free names."""

from __future__ import annotations

import pytest

from tagpipe.hashing import meta_hash, meta_hash_doc, meta_normalize_doc, sha256_hex
from tests.hashing._fixtures import params


@pytest.mark.parametrize("row", params("meta_doc", "field"))
def test_fixture(row):
    f, v, dc = row["field"], row["input"], row.get("default_country")
    assert meta_normalize_doc(f, v, default_country=dc) == row["normalized"]
    assert meta_hash_doc(f, v, default_country=dc) == row["hash"]
    if row["hash"] is not None and not row.get("already_hashed"):
        assert row["hash"] == sha256_hex(row["normalized"])


def test_styles_agree_where_sdk_and_docs_agree():
    for field, value in [
        ("em", " A@B.io "),
        ("zp", "94025-1234"),
        ("country", "de"),
        ("ph", "+1 650 555 1234"),
    ]:
        assert meta_hash_doc(field, value) == meta_hash(field, value)


def test_styles_differ_where_vendors_md_says_they_do():
    # VENDORS §6.11: gender words, dates, state names, country names, name punctuation
    assert meta_hash("ge", "Male") != meta_hash_doc("ge", "Male") == sha256_hex("m")
    assert meta_hash("db", "1990-01-02") != meta_hash_doc("db", "1990-01-02") == sha256_hex("19900102")
    assert meta_hash("st", "California") != meta_hash_doc("st", "California") == sha256_hex("ca")
    assert meta_hash("country", "UK") is None and meta_hash_doc("country", "UK") == sha256_hex("gb")
    assert meta_hash("ln", "O'Brien") != meta_hash_doc("ln", "O'Brien") == sha256_hex("obrien")


def test_unknown_field_raises():
    with pytest.raises(ValueError):
        meta_hash_doc("gender", "m")
