"""The served script: small, valid, no tell-tale URL, endpoint written in safely."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess

import pytest

from tagpipe import sitetag


def test_size_budget():
    body = sitetag.render("/events").body
    # ~2.7 KB of it is the outbox (retries, parking across pages); gtag.js is ~100 KB for comparison
    assert len(body) < 11_000 and len(gzip.compress(body)) < 4_000, (len(body), len(gzip.compress(body)))


def test_source_has_no_comment_markers_inside_strings():
    """minify() strips /* */ and whole-line // comments; that is only safe while no string holds them."""
    for literal in re.findall(r"'(?:[^'\\\n]|\\.)*'", sitetag.source()):
        assert "/*" not in literal and "//" not in literal, literal


def test_endpoint_is_written_in_as_a_js_string():
    js = sitetag.render("/api/v1/s").body.decode()
    assert "'/api/v1/s'" not in js and '"/api/v1/s"' in js
    tricky = sitetag.render("/x</script><script>alert(1)//").body.decode()
    assert "</script>" not in tricky


def test_no_tell_tale_names_in_what_the_script_requests():
    js = sitetag.render("/events").body.decode()
    # the only URL the script builds is the endpoint it is given; no vendor hosts, no query parameters
    assert not re.search(r"https?://", js)
    assert sitetag.DEFAULT_PATH == "/assets/app.js"


@pytest.mark.skipif(not shutil.which("node"), reason="node not installed: syntax check skipped")
def test_served_script_is_valid_javascript(tmp_path):
    f = tmp_path / "app.js"
    f.write_bytes(sitetag.render("/events").body)
    r = subprocess.run(["node", "--check", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_sitetag_path_from_config():
    class Paths:
        sitetag = "/static/m.js"

    class Cfg:
        paths = Paths()

    assert sitetag.sitetag_path(Cfg()) == "/static/m.js"
    Paths.sitetag = ""
    assert sitetag.sitetag_path(Cfg()) is None
    assert sitetag.sitetag_path(object()) == "/assets/app.js"
