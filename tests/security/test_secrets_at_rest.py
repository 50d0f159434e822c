"""Item 3 of issue 14: no secret is ever stored. GA4 MP carries api_secret in the query (and a
server may send our own key that way); collect checks it, then masks it before the hit is queued,
stored in raw_hits or written to failed_events. The check reads every byte under the data dir
(SQLite files, their WAL, the on-disk queue), not only the columns we thought of."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.security.raw import send

KEY = "tp_live_secret_at_rest_0123456789"
CONFIG = """
[server]
api_keys_env = "TAGPIPE_API_KEYS"

[destinations.dry_run]
type = "log"
"""
MP_BODY = json.dumps({"client_id": "123.456", "events": [{"name": "purchase", "params": {
    "transaction_id": "T-1", "value": 10, "currency": "EUR"}}]}).encode()


def _bytes_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("s"), CONFIG, {"TAGPIPE_API_KEYS": KEY}) as s:
        yield s


def test_an_api_secret_in_the_query_is_checked_then_never_stored(stack):
    accepted = send(stack.port, "POST", f"/mp/collect?measurement_id=G-TEST&api_secret={KEY}",
                    [("Content-Type", "application/json")], MP_BODY)
    assert accepted.status == 204, accepted.body
    # refused ones keep their query in failed_events: a wrong key, and a good key with a broken body
    wrong = send(stack.port, "POST", "/mp/collect?measurement_id=G-TEST&api_secret=guessed-key-987654",
                 [("Content-Type", "application/json")], MP_BODY)
    assert wrong.status == 401
    broken = send(stack.port, "POST", f"/mp/collect?measurement_id=G-TEST&api_secret={KEY}",
                  [("Content-Type", "application/json")], b'{"client_id": ')
    assert broken.status == 400
    wait_until(lambda: stack.store.query("SELECT 1 FROM outcomes WHERE destination = 'dry_run'"),
               what="the accepted hit delivered")
    wait_until(lambda: len(stack.store.query("SELECT 1 FROM failed_events WHERE stage = 'collect'")) >= 2,
               what="the two refusals recorded")
    (doc,) = stack.store.query("SELECT doc FROM raw_hits WHERE source = 'mp'")[0]
    query = json.loads(doc)["query"]
    assert "api_secret=***" in query and "measurement_id=G-TEST" in query
    stored = _bytes_under(stack.data_dir)
    assert KEY.encode() not in stored
    assert b"guessed-key-987654" not in stored


@pytest.mark.parametrize("name", ["access_token", "api_secret", "api_key", "appsecret_proof", "token", "secret",
                                  "password", "developer-token", "key", "API_SECRET", "Access_Token"])
def test_every_credential_name_is_masked_despite_the_fast_path(name):
    from tagpipe.privacy import SECRET_PARAM, mask_secret_params

    assert mask_secret_params(f"a=1&{name}=s3cr3t-value&b=2") == f"a=1&{name}=***&b=2"
    assert SECRET_PARAM.search(f"{name}=x")  # the regex and the pre-check agree on the names
    assert mask_secret_params("monkey=1&tp_key=2&keyword=3") == "monkey=1&tp_key=2&keyword=3"
