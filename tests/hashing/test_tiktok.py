"""TikTok Events API: email lower+trim, phone E.164 with '+', external_id trim; SHA-256 passes through."""

from __future__ import annotations

import pytest

from tagpipe.hashing import sha256_hex, tiktok_hash, tiktok_normalize
from tests.hashing._fixtures import params


@pytest.mark.parametrize("row", params("tiktok", "kind"))
def test_fixture(row):
    kind, v, dc = row["kind"], row["input"], row.get("default_country")
    assert tiktok_normalize(kind, v, default_country=dc) == row["normalized"]
    assert tiktok_hash(kind, v, default_country=dc) == row["hash"]
    if row["hash"] is not None and not row.get("already_hashed"):
        assert row["hash"] == sha256_hex(row["normalized"])


def test_phone_same_as_google_e164():
    from tagpipe.hashing import google_hash

    for v, dc in [("+44 (0)20 7946 0958", None), ("07911 123456", "GB"), ("(650) 555-1234", "US")]:
        assert tiktok_hash("phone", v, default_country=dc) == google_hash("phone", v, default_country=dc)


def test_unknown_kind_raises():
    with pytest.raises(ValueError):
        tiktok_hash("ttclid", "E.C.P.abc")
