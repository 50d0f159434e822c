"""Item 7 of issue 14: slow clients. A connection that trickles its headers or its body is cut off
with 408 after server.header_timeout / body_timeout, counted as a refused request; an aborted upload
is a counted refusal and one short line, not a traceback."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.stack import LocalStack, wait_until

CONFIG = """
[server]
header_timeout = 1
body_timeout = 1

[destinations.dry_run]
type = "log"
"""
SLOW = 40


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("s"), CONFIG) as s:
        yield s


def _open(port: int, data: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    return s


def _answer(s: socket.socket) -> bytes:
    """What the server sent before closing the connection (b"" if it closed without a word)."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data


def _reasons(stack) -> list[str]:
    return [r[0] for r in stack.store.query("SELECT reason FROM outcomes WHERE outcome = 'rejected'")]


def test_slow_headers_and_slow_bodies_are_cut_off_and_counted(stack):
    slow_headers = [_open(stack.port, b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a") for _ in range(SLOW)]
    slow_bodies = [_open(stack.port, b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"event_name\":") for _ in range(SLOW)]
    # recv blocks until the server answers and closes: each returns once its timeout has cut it off
    headers_answers = [_answer(s) for s in slow_headers]
    body_answers = [_answer(s) for s in slow_bodies]
    assert all(a.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in a for a in headers_answers)
    assert all(a.startswith(b"HTTP/1.1 408") and b"request_timeout" in a for a in body_answers)
    # counted: the first ones of the flood one by one (the rest in the next window's summary)
    wait_until(lambda: _reasons(stack).count("request_timeout") >= 20, what="the timeouts recorded")


def test_an_aborted_upload_is_a_counted_refusal_without_a_traceback(tmp_path):
    with LocalStack(tmp_path, CONFIG) as stack:  # its own: the flood above used this window's one-by-one records
        _aborted_upload(stack)


def _aborted_upload(stack) -> None:
    before = _reasons(stack).count("client_disconnected")
    s = _open(stack.port, b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 5000\r\n\r\n{\"event_name\": \"purchase\"")
    s.close()  # gone mid-body
    wait_until(lambda: _reasons(stack).count("client_disconnected") > before or "Traceback" in stack.logs(),
               what="the aborted upload's record")
    assert "Traceback" not in stack.logs()
    assert _reasons(stack).count("client_disconnected") == before + 1
