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


def guarded_protocol(header_timeout: float, on_timeout) -> type[HttpToolsProtocol]:
    """An HttpToolsProtocol that closes connections whose request headers are not complete within
    `header_timeout` seconds; `on_timeout()` counts each one."""

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
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"content-length: " + str(len(TIMEOUT_BODY)).encode() + b"\r\n"
                                 b"connection: close\r\n\r\n" + TIMEOUT_BODY)
            self.transport.close()
            on_timeout()

    return GuardedHttpToolsProtocol
