"""The local stack's HTTP server: uvicorn, with the slow-client limits uvicorn leaves out.

uvicorn times out idle keep-alive connections but not a client that opens a connection and sends
its request headers a byte at a time (slowloris): each such connection holds a file descriptor
for ever. Here a connection that has not completed its request headers within
`server.header_timeout` seconds gets `408` (JSON) and is closed, counted as a refused request
(reason `request_timeout`, through collect's flood guard); the body has `server.body_timeout`
(collect's reader), and `server.max_connections` caps open connections (uvicorn answers 503
beyond it). On Cloud Run the Google front end holds the client connection; these limits are for
the local and self-hosted stack.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TIMEOUT_BODY = json.dumps({"ok": False, "error": "request_timeout",
                           "reason": "the request headers did not arrive in time"}).encode()
MALFORMED_BODY = json.dumps({"ok": False, "error": "malformed_http", "reason": "not a valid HTTP/1.1 request "
                             "(a request line, headers or URL the parser refused; URLs over 64 KB included)"}).encode()
# what functions-framework's router takes (others get its plain-text 405 on GCP, JSON here)
ROUTED_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"})
NOT_HITS = frozenset({"/robots.txt", "/favicon.ico"})  # functions-framework answers them itself, in plain text


def _response(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


def guarded_protocol(header_timeout: float, on_timeout, on_malformed) -> type[HttpToolsProtocol]:
    """An HttpToolsProtocol that closes connections whose request headers are not complete within
    `header_timeout` seconds (`on_timeout()` counts each one) and answers what its parser refuses
    in JSON (`on_malformed()` counts it) instead of uvicorn's plain text."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _header_timer: Any = None

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # the next request on a kept-alive connection: its headers get the same time
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            self.transport.write(_response("408 Request Timeout", TIMEOUT_BODY))
            self.transport.close()
            on_timeout()

        def send_400_response(self, msg: str) -> None:
            self._disarm()
            self.transport.write(_response("400 Bad Request", MALFORMED_BODY))
            self.transport.close()
            on_malformed()

    return GuardedHttpToolsProtocol


class CountedRefusals:
    """ASGI: the requests functions-framework's router answers itself in plain text and nobody counts
    (TRACE, CONNECT, PROPFIND, ...; /robots.txt, /favicon.ico) get JSON here and a counted refusal."""

    def __init__(self, app, refuse) -> None:
        self.app, self.refuse = app, refuse

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            refusal = (("method_not_allowed", 405, f"collect does not take {method[:20]}")
                       if method not in ROUTED_METHODS else
                       ("not_found", 404, f"no collect endpoint at {path[:200]}") if path in NOT_HITS else None)
            if refusal is not None:
                code, status, message = refusal
                self.refuse(code, message, status, path)
                body = json.dumps({"ok": False, "error": code, "reason": message}).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
