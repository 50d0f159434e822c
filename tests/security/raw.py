"""Raw HTTP/1.1 over a socket: the attacker picks every byte of the request line and headers
(an empty `Origin:`, a duplicated header, a forged X-Forwarded-For), which httpx would normalise."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


def send(port: int, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"",
         timeout: float = 10.0, host_header: bool = True) -> RawResponse:
    """One request with exactly these headers (plus Host unless host_header=False, Content-Length,
    Connection: close)."""
    if not any(k.lower() == "user-agent" for k, _ in headers):  # a browser's, so bot filtering lets the hit in
        headers = [("User-Agent", BROWSER_UA), *headers]
    lines = [f"{method} {target} HTTP/1.1", *(["Host: 127.0.0.1"] if host_header else []), *(f"{k}: {v}" if v else f"{k}:" for k, v in headers),
             f"Content-Length: {len(body)}", "Connection: close"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = [tuple(p.strip() for p in line.split(":", 1)) for line in header_lines]
    return RawResponse(int(status_line.split()[1]), parsed, rest)
