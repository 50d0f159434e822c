"""The first-party site tag (tag.js), served by collect at `paths.sitetag` (default /assets/app.js).

collect serves it with the JSON endpoint's path written in (so the page needs no configuration), the
comments and indentation stripped, a strong ETag and a one-hour cache. See docs/site-tag.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

DEFAULT_PATH = "/assets/app.js"
PLACEHOLDER = "'%%ENDPOINT%%'"
CONTENT_TYPE = "application/javascript; charset=utf-8"
CACHE_CONTROL = "public, max-age=3600"


def source() -> str:
    return resources.files(__package__).joinpath("tag.js").read_text(encoding="utf-8")


def minify(js: str) -> str:
    """Block comments, whole-line // comments, indentation and blank lines out. Nothing clever: the
    source keeps no '/*' or '//' inside strings, which tests/sitetag checks."""
    js = re.sub(r"/\*.*?\*/", "", js, flags=re.S)
    lines = []
    for line in js.splitlines():
        line = line.strip()
        if line and not line.startswith("//"):
            lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Script:
    body: bytes
    etag: str


@lru_cache(maxsize=8)
def render(endpoint: str) -> Script:
    """The script as served, for a JSON endpoint path such as '/events'."""
    js = minify(source())
    if PLACEHOLDER not in js:
        raise RuntimeError("tag.js lost its endpoint placeholder")
    js = js.replace(PLACEHOLDER, json.dumps(endpoint).replace("</", "<\\/"))
    body = js.encode("utf-8")
    return Script(body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def sitetag_path(config: object) -> str | None:
    """paths.sitetag from the config ('' turns the script off); the default until config.py has it."""
    paths = getattr(config, "paths", None)
    value = getattr(paths, "sitetag", DEFAULT_PATH)
    return value or None
