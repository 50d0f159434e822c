"""Where a config key lives in the file, and the errors that say so.

tomllib gives no line numbers, so `line_of` scans the file text: the deepest `[table]` header that
is a prefix of the key path, then the key inside that table (then nested keys, then a quoted value).
Best effort: None when the key cannot be found (dotted keys, odd quoting), and the error still names
the key path.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from tagpipe.errors import ConfigError

_HEADER = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(?:#.*)?$")
_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


def split_key(text: str) -> list[str]:
    """A TOML dotted key (`tags."high value".x`) as its parts, unquoted."""
    parts: list[str] = []
    buf, quote = "", ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                buf += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(buf.strip())
            buf = ""
        else:
            buf += ch
    parts.append(buf.strip())
    return parts


def parse_path(path: str) -> list[tuple[str, list[int]]]:
    """`tags.x.rules[1].pattern` -> [("tags", []), ("x", []), ("rules", [1]), ("pattern", [])]."""
    out = []
    for name, idx in _SEGMENT.findall(path):
        out.append((name.strip("\"'"), [int(i) for i in re.findall(r"\d+", idx)]))
    return out


def _code(line: str) -> str:
    """The line without its comment (a # outside quotes)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _key_line(lines: list[str], start: int, end: int, key: str, skip: int = 0) -> int | None:
    """The index of the (skip+1)-th line in [start, end) that assigns `key` (bare or quoted)."""
    k = re.escape(key)
    pattern = re.compile(rf"""(?:^|[\s{{,]){k}\s*[=.]|["']{k}["']\s*[=.]""")
    for i in range(start, end):
        if pattern.search(_code(lines[i])):
            if skip == 0:
                return i
            skip -= 1
    return None


def line_of(text: str, path: str, value: Any = None) -> int | None:
    """1-based line of the key path in the TOML text (None if not found)."""
    if not text:
        return None
    lines = text.splitlines()
    segments = parse_path(path)
    names = [name for name, _ in segments]
    headers: list[tuple[int, list[str]]] = []
    for i, line in enumerate(lines):
        m = _HEADER.match(_code(line))
        if m:
            headers.append((i, split_key(m.group(1))))
    best: tuple[int, int] | None = None  # (line index, number of path segments it covers)
    for i, parts in headers:
        if parts == names[: len(parts)] and (best is None or len(parts) > best[1]):
            best = (i, len(parts))
    if best is None:
        start, depth = 0, 0
        end = headers[0][0] if headers else len(lines)
        found = None
    else:
        start, depth = best[0] + 1, best[1]
        end = next((i for i, _ in headers if i > best[0]), len(lines))
        found = best[0]
    skip = 0
    for name, idx in segments[depth:]:
        at = _key_line(lines, start, end, name, skip)
        if at is None:
            break
        found, start = at, at
        skip = idx[0] if idx else 0
    if value is not None and isinstance(value, str) and value and found is not None:
        for i in range(found, end):
            if f'"{value}"' in lines[i] or f"'{value}'" in lines[i]:
                return i + 1
    return None if found is None else found + 1


def closest(word: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = closest(word, candidates)
    return f"did you mean {close!r}?" if close else ""


def one_of(candidates: Iterable[str]) -> str:
    names = sorted(candidates)
    return "one of: " + ", ".join(names) if names else "none is defined"


class Source:
    """The config file a section came from: names it, and finds lines for errors."""

    def __init__(self, path: str = "", text: str = "") -> None:
        self.path, self.text = path, text

    def where(self, key: str, value: Any = None) -> str:
        line = line_of(self.text, key, value)
        return f"{self.path}:{line}" if self.path and line else self.path

    def error(self, key: str, message: str, fix: str = "", value: Any = None) -> ConfigError:
        return ConfigError(key, message, fix, self.where(key, value))
