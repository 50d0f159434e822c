"""collect reads headers, path and query from the ASGI scope (shared/tagpipe/pipeline/collect.py); they must be
what starlette's Request.headers.get / Request.url give, for any request a server can hand over."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from tagpipe.pipeline.collect import path_and_query, request_headers

NAMES = [b"host", b"origin", b"cookie", b"user-agent", b"x-forwarded-for", b"content-length", b"referer",
         b"x-tagpipe-debug", b"sec-fetch-mode"]
latin1 = st.binary(max_size=30).map(lambda b: b.decode("latin-1"))
header_lists = st.lists(st.tuples(st.sampled_from(NAMES), st.binary(max_size=30)), max_size=10)
paths = st.one_of(
    st.sampled_from(["/g/collect", "/events", "/mp/collect", "/healthz", "/", "//g/collect", "/g/collect/",
                     "/a?b", "/a#b", "/a\\b", "/a b", "/%2F", "/caf\u00e9", "g/collect", ""]),
    st.text(max_size=20).map(lambda s: "/" + s),
    st.text(max_size=20),
)
queries = st.one_of(
    st.sampled_from([b"", b"v=2&en=page_view", b"a=%20b+c", b"x#y", b"a=1\tb", b"dl=https%3A%2F%2Fs.example%2F"]),
    st.text(max_size=40).map(str.encode),
)


def scope(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode("utf-8", "surrogatepass"),
            "query_string": query, "root_path": "", "headers": headers, "scheme": "http",
            "server": ("127.0.0.1", 8080), "client": ("203.0.113.7", 50000)}


@settings(max_examples=1500, deadline=None)
@given(path=paths, query=queries, headers=header_lists)
@example(path="/g/collect", query=b"v=2", headers=[(b"host", b"a/b")])
@example(path="/g/collect", query=b"v=2", headers=[(b"host", b"shop.example:8443"), (b"host", b"x")])
def test_path_and_query_are_request_url_s(path, query, headers) -> None:
    request = Request(scope(path, query, headers))
    try:
        expected = (request.url.path, request.url.query)
    except Exception as exc:  # noqa: BLE001 - the same failure on both sides
        expected = type(exc)
    try:
        got = path_and_query(request)
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    assert got == expected


@settings(max_examples=800, deadline=None)
@given(headers=header_lists)
def test_headers_are_request_headers_get(headers) -> None:
    request = Request(scope("/g/collect", b"", headers))
    fast = request_headers(request.scope)
    for name in NAMES:
        key = name.decode()
        assert fast.get(key) == request.headers.get(key)
        assert (key in fast) == (key in request.headers)
