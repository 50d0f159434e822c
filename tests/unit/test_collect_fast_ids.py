"""models.new_id (every hit id) without a syscall per id: still a version-4 UUID's hex, unique, and a
forked child (gunicorn workers) does not repeat its parent's ids."""

from __future__ import annotations

import os
import uuid

import pytest

from tagpipe.models import RawHit, new_id


def test_ids_are_uuid4_hex_and_unique():
    ids = [new_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:2000]:
        parsed = uuid.UUID(value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len({RawHit(source="gtag").hit_id for _ in range(100)}) == 100


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_other_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids
        os.write(write, "".join(new_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.close(read)
    child = {data[i : i + 32].decode() for i in range(0, len(data), 32)}
    parent = {new_id() for _ in range(100)}
    assert len(child) == 100 and not child & parent
