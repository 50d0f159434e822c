"""Item 11 of issue 14: refusals below collect's own code (malformed HTTP, a 70 KB URL, TRACE /
PROPFIND, /robots.txt and other unknown paths) are answered in JSON and counted like any refused
request, but as noise: a crawler's /robots.txt is no failed hit and fires no alert."""

from __future__ import annotations

import json
import socket

import pytest

from tagpipe import reasons
from tagpipe.monitoring.metrics import Metrics
from tests.e2e.stack import LocalStack, wait_until
from tests.security.raw import send

CONFIG = """
[destinations.dry_run]
type = "log"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("s"), CONFIG) as s:
        yield s


def _raw(port: int, request: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GARBAGE\r\n\r\n", 400, "malformed_http"),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_http"),
    (b"GET /events HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "malformed_http"),
])
def test_what_the_parser_refuses_is_answered_in_json(stack, request_bytes, status, code):
    got_status, body = _raw(stack.port, request_bytes)
    assert (got_status, body["error"]) == (status, code)


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("TRACE", "/events", 405, "method_not_allowed"),
    ("PROPFIND", "/", 405, "method_not_allowed"),
    ("GET", "/robots.txt", 404, "not_found"),
    ("GET", "/favicon.ico", 404, "not_found"),
    ("GET", "/wp-login.php", 404, "not_found"),
])
def test_unrouted_methods_and_paths_are_answered_in_json(stack, method, path, status, code):
    r = send(stack.port, method, path, [])
    assert r.status == status and r.json()["error"] == code
    assert r.header("content-type") == ["application/json"]


def test_they_are_counted_as_noise_not_as_failed_hits(stack):
    for request in (b"GARBAGE\r\n\r\n",):
        _raw(stack.port, request)
    send(stack.port, "GET", "/robots.txt", [])
    send(stack.port, "TRACE", "/events", [])
    wanted = {"malformed_http", "not_found", "method_not_allowed"}

    def counted():
        rows = {r[0] for r in stack.store.query("SELECT reason FROM outcomes WHERE outcome = 'rejected'")}
        return rows >= wanted and rows

    wait_until(counted, what="the refusals counted")
    assert reasons.is_noise("not_found") and reasons.is_noise("malformed_http")
    shown = {r.reason for r in Metrics(stack.store, now=1e12).collect_rejections(0, 1e12)}
    assert "not_found" not in shown and "malformed_http" not in shown
    assert "method_not_allowed" in shown  # a wrong method on a real endpoint is a broken tag: it counts
