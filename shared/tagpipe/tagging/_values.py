"""Variables: compiled once at config load into small getters, evaluated lazily and once per event.

A value is *missing* when it is absent, null, an empty string or an empty list; `default` replaces a
missing value, and conditions treat a missing value as described in _triggers.py.

Built-in variables need no declaration (see BUILTINS and PREFIXES below); declared ones are
`[variables.<name>]` tables with a `type` (see TYPES). A declared variable may read another one
(`input = "<name>"`, `{{name}}` in a template): references are resolved to objects at load, and a
reference cycle is a ConfigError.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from tagpipe.models import ClickIds, Event, Item

from ._evaluation import UNSET, Evaluation
from ._source import Source, closest, did_you_mean, one_of

Getter = Callable[[Evaluation], Any]
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REF_RE = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
CONSENT_PURPOSES = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")


# --------------------------------------------------------------------------- value helpers


def missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list) and not value)


def as_text(value: Any) -> str:
    """The text form conditions and lookups compare: 200.0 -> "200", True -> "true"."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes", "granted"):
            return True
        if text in ("false", "0", "no", "denied"):
            return False
    return None


def tidy_number(value: float) -> int | float:
    return int(value) if isinstance(value, float) and value.is_integer() else value


@lru_cache(maxsize=4096)
def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _query(query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        out.setdefault(key, value)  # the first occurrence wins
    return out


def _host(url: Any) -> str | None:
    parts = _split(url) if isinstance(url, str) else None
    return parts.hostname if parts else None


def _path(url: Any) -> str | None:
    parts = _split(url) if isinstance(url, str) else None
    return (parts.path or "/") if parts and parts.netloc else (parts.path if parts else None)


# --------------------------------------------------------------------------- the compiled objects


class Var:
    """One variable; its value is computed at most once per event (Evaluation.values[slot])."""

    __slots__ = ("name", "slot", "fn", "default", "fmt")

    def __init__(self, name: str, slot: int, fn: Getter, default: Any = None, fmt: Callable | None = None):
        self.name, self.slot, self.fn, self.default, self.fmt = name, slot, fn, default, fmt

    def get(self, ev: Evaluation) -> Any:
        value = ev.values[self.slot]
        if value is UNSET:
            value = self.fn(ev)
            if self.fmt is not None and not missing(value):
                value = self.fmt(value)
            if missing(value):
                value = self.default
            ev.values[self.slot] = value
        return value

    def __repr__(self) -> str:
        return f"Var({self.name})"


class Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, ev: Evaluation) -> Any:
        return self.value


class Template:
    """Text with {{refs}}: missing as a whole when any reference is missing."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[str | Var]) -> None:
        self.parts = parts

    def get(self, ev: Evaluation) -> Any:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.get(ev)
            if missing(value):
                return None
            out.append(",".join(as_text(v) for v in value) if isinstance(value, list) else as_text(value))
        return "".join(out)


Value = Var | Const | Template


# --------------------------------------------------------------------------- built-in variables


def _geo(field: str) -> Callable[[Event], Any]:
    return lambda e: e.client.geo.get(field)


EVENT_FIELDS: dict[str, Callable[[Event], Any]] = {
    "event_name": lambda e: e.name,
    "event_id": lambda e: e.event_id,
    "source": lambda e: e.source,
    "action_source": lambda e: e.action_source,
    "measurement_id": lambda e: e.measurement_id,
    "timestamp": lambda e: e.timestamp,
    "debug": lambda e: e.debug,
    "value": lambda e: e.ecommerce.value,
    "currency": lambda e: e.ecommerce.currency,
    "transaction_id": lambda e: e.ecommerce.transaction_id,
    "tax": lambda e: e.ecommerce.tax,
    "shipping": lambda e: e.ecommerce.shipping,
    "coupon": lambda e: e.ecommerce.coupon,
    "items_count": lambda e: len(e.ecommerce.items),
    "client_id": lambda e: e.client.client_id,
    "user_id": lambda e: e.client.user_id,
    "session_id": lambda e: e.client.session_id,
    "language": lambda e: e.client.language,
    "user_agent": lambda e: e.client.user_agent,
    "ip": lambda e: e.client.ip,
    "country": _geo("country"),
    "region": _geo("region"),
    "city": _geo("city"),
    "page_url": lambda e: e.page.url,
    "page_hostname": lambda e: e.page.hostname or _host(e.page.url),
    "page_path": lambda e: _path(e.page.url),
    "page_referrer": lambda e: e.page.referrer,
    "page_title": lambda e: e.page.title,
    "has_email": lambda e: bool(e.user_data.email),
    "has_phone": lambda e: bool(e.user_data.phone),
}
BUILTINS = frozenset(EVENT_FIELDS)
ITEM_FIELDS = tuple(name for name in Item.model_fields if name != "custom")
CLICK_IDS = tuple(ClickIds.model_fields)


def _first_item(field: str) -> Callable[[Event], Any]:
    get = _item_getter(field)
    return lambda e: get(e.ecommerce.items[0]) if e.ecommerce.items else None


def _item_getter(field: str) -> Callable[[Item], Any]:
    if field.startswith("custom."):
        key = field[len("custom.") :]
        return lambda item: item.custom.get(key)
    return lambda item: getattr(item, field)


def _consent(purpose: str, default_granted: bool) -> Callable[[Event], Any]:
    return lambda e: "granted" if e.consent.granted(purpose, default_granted) else "denied"


def _query_param(name: str) -> Callable[[Event], Any]:
    def get(e: Event) -> Any:
        parts = _split(e.page.url) if e.page.url else None
        return _query(parts.query).get(name) if parts and parts.query else None

    return get


# prefix -> (what it reads, a check of the part after the dot -> error message or "")
PREFIXES: dict[str, str] = {
    "param": "an event parameter",
    "user_property": "a user property",
    "cookie": "a cookie of the hit",
    "header": "a request header (lower-case name)",
    "query": "a query parameter of the page URL",
    "consent": "consent state, 'granted' or 'denied' (absent: the [consent] default)",
    "experiment": "the variant of an A/B test experiment id",
    "click_id": "a click id (gclid, fbc, ...)",
    "item": "a field of the first item",
}


class VariableCompiler:
    """Turns [variables] tables and references into Var objects (slots numbered in order)."""

    def __init__(self, tables: dict[str, Any], source: Source, consent_default: bool) -> None:
        self.tables = tables
        self.source = source
        self.consent_default = consent_default
        self.vars: dict[str, Var] = {}
        self._visiting: list[str] = []

    # ---- references
    def names(self) -> list[str]:
        return sorted(set(self.tables) | BUILTINS)

    def resolve(self, ref: Any, key: str) -> Var:
        """A variable reference (`name`, `{{name}}`, `param.x`, ...) as a Var, or a ConfigError."""
        if not isinstance(ref, str) or not ref.strip():
            raise self.source.error(key, "must be a variable name", 'e.g. "value", "param.coupon" or a [variables] name')
        name = ref.strip()
        if name.startswith("{{") and name.endswith("}}"):
            name = name[2:-2].strip()
        if name in self.vars:
            return self.vars[name]
        if name in self._visiting:
            chain = " -> ".join([*self._visiting[self._visiting.index(name) :], name])
            raise self.source.error(
                key, f"variable cycle: {chain}", "a variable cannot depend on itself; break the chain", value=ref
            )
        if name in self.tables:
            return self._declared(name)
        if name in EVENT_FIELDS:
            return self._add(name, _event(EVENT_FIELDS[name]))
        prefix, dot, rest = name.partition(".")
        if dot and prefix in PREFIXES:
            return self._add(name, _event(self._prefixed(prefix, rest, key, ref)))
        near = closest(prefix, PREFIXES) if dot else None
        if near:  # prams.coupon -> param.coupon
            hint = f"did you mean {near + '.' + rest!r}?"
        else:
            hint = did_you_mean(name, self.names())
        raise self.source.error(
            key,
            f"unknown variable {name!r}",
            hint or f"declare [variables.{name}], or use a built-in ({', '.join(sorted(BUILTINS)[:6])}, ...) "
            f"or a prefixed one ({', '.join(p + '.<name>' for p in PREFIXES)})",
            value=ref,
        )

    def value(self, raw: Any, key: str) -> Value:
        """A tag param / event name: a constant, a whole reference {{x}} (typed), or a template."""
        if isinstance(raw, str):
            refs = list(REF_RE.finditer(raw))
            if len(refs) == 1 and refs[0].span() == (0, len(raw)):
                return self.resolve(raw, key)
            if refs:
                return self.template(raw, key)
            return Const(raw)
        if isinstance(raw, bool | int | float):
            return Const(raw)
        raise self.source.error(key, f"must be a string, number or boolean, not {type(raw).__name__}",
                                'use a constant or "{{variable}}"')

    def template(self, text: str, key: str) -> Template:
        parts: list[str | Var] = []
        pos = 0
        for m in REF_RE.finditer(text):
            if m.start() > pos:
                parts.append(text[pos : m.start()])
            parts.append(self.resolve(m.group(1), key))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        return Template(parts)

    def _add(self, name: str, fn: Getter, default: Any = None, fmt: Callable | None = None) -> Var:
        var = Var(name, len(self.vars), fn, default, fmt)
        self.vars[name] = var
        return var

    def _prefixed(self, prefix: str, rest: str, key: str, ref: str) -> Callable[[Event], Any]:
        if not rest:
            raise self.source.error(key, f"{prefix}. needs a name after the dot", f"e.g. {prefix}.<name>", value=ref)
        if prefix == "param":
            return lambda e: e.params.get(rest)
        if prefix == "user_property":
            return lambda e: e.user_properties.get(rest)
        if prefix == "cookie":
            return lambda e: e.cookies.get(rest)
        if prefix == "header":
            lower = rest.lower()
            return lambda e: e.headers.get(lower)
        if prefix == "query":
            return _query_param(rest)
        if prefix == "experiment":
            return lambda e: e.experiments.get(rest)
        if prefix == "consent":
            if rest not in CONSENT_PURPOSES:
                raise self.source.error(key, f"unknown consent purpose {rest!r}",
                                        did_you_mean(rest, CONSENT_PURPOSES) or one_of(CONSENT_PURPOSES), value=ref)
            return _consent(rest, self.consent_default)
        if prefix == "click_id":
            if rest not in CLICK_IDS:
                raise self.source.error(key, f"unknown click id {rest!r}",
                                        did_you_mean(rest, CLICK_IDS) or one_of(CLICK_IDS), value=ref)
            return lambda e: getattr(e.click_ids, rest)
        # item
        self._check_item_field(rest, key, ref)
        return _first_item(rest)

    def _check_item_field(self, field: Any, key: str, ref: Any = None) -> None:
        if not isinstance(field, str) or not (field in ITEM_FIELDS or (field.startswith("custom.") and len(field) > 7)):
            raise self.source.error(key, f"unknown item field {field!r}",
                                    did_you_mean(str(field), ITEM_FIELDS) or one_of([*ITEM_FIELDS, "custom.<name>"]),
                                    value=ref if ref is not None else field)

    # ---- declared variables
    def compile_all(self) -> None:
        for name in self.tables:
            if name not in self.vars:
                self.resolve(name, f"variables.{name}")

    def _declared(self, name: str) -> Var:
        prefix = f"variables.{name}"
        if not NAME_RE.match(name):
            raise self.source.error(prefix, "a variable name must be letters, digits and _ (no dots or spaces)",
                                    f"rename it, e.g. [variables.{re.sub(r'[^A-Za-z0-9_]', '_', name)}]")
        if name in BUILTINS:
            raise self.source.error(prefix, f"{name!r} is a built-in variable", "choose another name")
        table = self.tables[name]
        if not isinstance(table, dict):
            raise self.source.error(prefix, "must be a table", f"write it as [variables.{name}] with a type")
        type_ = table.get("type")
        if type_ is None:
            raise self.source.error(f"{prefix}.type", "required key is missing", one_of(TYPES))
        if type_ not in TYPES:
            raise self.source.error(f"{prefix}.type", f"unknown variable type {type_!r}",
                                    did_you_mean(type_, TYPES) or one_of(TYPES), value=type_)
        builder, required, optional = TYPES[type_]
        allowed = {"type", "default", "format", "description", *required, *optional}
        for k in table:
            if k not in allowed:
                raise self.source.error(f"{prefix}.{k}", f"unknown key for a {type_} variable",
                                        did_you_mean(k, allowed) or one_of(allowed - {"type"}))
        for k in required:
            if k not in table:
                raise self.source.error(f"{prefix}.{k}", "required key is missing", f"a {type_} variable needs {k}")
        fmt = None
        if "format" in table:
            fmt = FORMATS.get(table["format"])
            if fmt is None:
                raise self.source.error(f"{prefix}.format", f"unknown format {table['format']!r}", one_of(FORMATS),
                                        value=table["format"])
        default = table.get("default")
        if default is not None and not isinstance(default, str | int | float | bool):
            raise self.source.error(f"{prefix}.default", "must be a string, number or boolean", "")
        self._visiting.append(name)
        try:
            fn = builder(self, table, prefix)
        finally:
            self._visiting.pop()
        return self._add(name, fn, default, fmt)


def _event(get: Callable[[Event], Any]) -> Getter:
    return lambda ev: get(ev.event)


# --------------------------------------------------------------------------- declared types


def _need_str(c: VariableCompiler, table: dict, key: str, prefix: str) -> str:
    value = table[key]
    if not isinstance(value, str) or not value:
        raise c.source.error(f"{prefix}.{key}", "must be a non-empty string", "")
    return value


def _t_param(c: VariableCompiler, t: dict, p: str) -> Getter:
    return _event(c._prefixed("param", _need_str(c, t, "name", p), f"{p}.name", t["name"]))


def _t_user_property(c: VariableCompiler, t: dict, p: str) -> Getter:
    return _event(c._prefixed("user_property", _need_str(c, t, "name", p), f"{p}.name", t["name"]))


def _t_cookie(c: VariableCompiler, t: dict, p: str) -> Getter:
    return _event(c._prefixed("cookie", _need_str(c, t, "name", p), f"{p}.name", t["name"]))


def _t_header(c: VariableCompiler, t: dict, p: str) -> Getter:
    return _event(c._prefixed("header", _need_str(c, t, "name", p), f"{p}.name", t["name"]))


def _t_click_id(c: VariableCompiler, t: dict, p: str) -> Getter:
    return _event(c._prefixed("click_id", _need_str(c, t, "name", p), f"{p}.name", t["name"]))


def _t_consent(c: VariableCompiler, t: dict, p: str) -> Getter:
    return _event(c._prefixed("consent", _need_str(c, t, "purpose", p), f"{p}.purpose", t["purpose"]))


def _t_event(c: VariableCompiler, t: dict, p: str) -> Getter:
    field = t["field"]
    if field not in EVENT_FIELDS:
        raise c.source.error(f"{p}.field", f"unknown event field {field!r}",
                             did_you_mean(str(field), EVENT_FIELDS) or one_of(EVENT_FIELDS), value=field)
    return _event(EVENT_FIELDS[field])


GEO_FIELDS = ("country", "region", "city")


def _t_geo(c: VariableCompiler, t: dict, p: str) -> Getter:
    field = t["field"]
    if field not in GEO_FIELDS:
        raise c.source.error(f"{p}.field", f"unknown geo field {field!r}", one_of(GEO_FIELDS), value=field)
    return _event(_geo(field))


def _t_experiment(c: VariableCompiler, t: dict, p: str) -> Getter:
    exp_id = t.get("id")
    field = t.get("field", "variant")
    if field not in ("variant", "id"):
        raise c.source.error(f"{p}.field", f"unknown experiment field {field!r}", "one of: variant, id", value=field)
    if exp_id is not None and (not isinstance(exp_id, str) or not exp_id):
        raise c.source.error(f"{p}.id", "must be a non-empty string (the experiment id)", "")
    if exp_id is None:  # the event's first experiment

        def first(e: Event) -> Any:
            for key, variant in e.experiments.items():
                return key if field == "id" else variant
            return None

        return _event(first)
    if field == "id":
        return _event(lambda e: exp_id if exp_id in e.experiments else None)
    return _event(lambda e: e.experiments.get(exp_id))


AGGREGATES = ("first", "last", "all", "unique", "count", "sum", "min", "max")


def _t_item(c: VariableCompiler, t: dict, p: str) -> Getter:
    agg = t.get("aggregate", "first")
    if agg not in AGGREGATES:
        raise c.source.error(f"{p}.aggregate", f"unknown aggregate {agg!r}",
                             did_you_mean(str(agg), AGGREGATES) or one_of(AGGREGATES), value=agg)
    field = t.get("field")
    if field is None and agg != "count":
        raise c.source.error(f"{p}.field", "required key is missing", f"aggregate {agg!r} needs the item field to read")
    if field is not None:
        c._check_item_field(field, f"{p}.field")
    join = t.get("join")
    if join is not None and (not isinstance(join, str) or agg not in ("all", "unique")):
        raise c.source.error(f"{p}.join", "join is a string separator for aggregate all or unique", 'e.g. join = ","')
    get = _item_getter(field) if field else None

    def compute(e: Event) -> Any:
        items = e.ecommerce.items
        if not items:
            return 0 if agg == "count" else None
        if agg == "first":
            return get(items[0])
        if agg == "last":
            return get(items[-1])
        if agg == "count":
            return len(items) if get is None else sum(1 for item in items if not missing(get(item)))
        values = [v for v in (get(item) for item in items) if not missing(v)]
        if agg in ("all", "unique"):
            if agg == "unique":
                values = list(dict.fromkeys(as_text(v) for v in values))
            return join.join(as_text(v) for v in values) if join is not None else values
        numbers = [n for n in (as_number(v) for v in values) if n is not None]
        if not numbers:
            return None
        if agg == "sum":
            return tidy_number(round(math.fsum(numbers), 6))
        return tidy_number(min(numbers) if agg == "min" else max(numbers))

    return _event(compute)


URL_PARTS = ("href", "scheme", "host", "port", "path", "query", "fragment", "query_param")


def _t_url(c: VariableCompiler, t: dict, p: str) -> Getter:
    part = t.get("part", "href")
    if part not in URL_PARTS:
        raise c.source.error(f"{p}.part", f"unknown URL part {part!r}",
                             did_you_mean(str(part), URL_PARTS) or one_of(URL_PARTS), value=part)
    name = t.get("name")
    if part == "query_param" and (not isinstance(name, str) or not name):
        raise c.source.error(f"{p}.name", "required key is missing", "part = \"query_param\" needs name = \"<param>\"")
    if part != "query_param" and name is not None:
        raise c.source.error(f"{p}.name", "name is only for part = \"query_param\"", "remove it")
    source = c.resolve(t.get("input", "page_url"), f"{p}.input")

    def get(ev: Evaluation) -> Any:
        url = source.get(ev)
        parts = _split(url) if isinstance(url, str) else None
        if parts is None:
            return None
        if part == "href":
            return url
        if part == "scheme":
            return parts.scheme
        if part == "host":
            return parts.hostname
        if part == "port":
            try:
                return parts.port
            except ValueError:
                return None
        if part == "path":
            return parts.path or ("/" if parts.netloc else "")
        if part == "query":
            return parts.query
        if part == "fragment":
            return parts.fragment
        return _query(parts.query).get(name) if parts.query else None

    return get


def _t_constant(c: VariableCompiler, t: dict, p: str) -> Getter:
    value = t["value"]
    if not isinstance(value, str | int | float | bool):
        raise c.source.error(f"{p}.value", "must be a string, number or boolean", "")
    return lambda ev: value


def _t_template(c: VariableCompiler, t: dict, p: str) -> Getter:
    text = _need_str(c, t, "template", p)
    return c.template(text, f"{p}.template").get


def _t_lookup(c: VariableCompiler, t: dict, p: str) -> Getter:
    source = c.resolve(t["input"], f"{p}.input")
    table = t["map"]
    if not isinstance(table, dict) or not table:
        raise c.source.error(f"{p}.map", "must be a non-empty table of input -> output",
                             'e.g. map = { purchase = "Purchase", add_to_cart = "AddToCart" }')
    ignore_case = _flag(c, t, "ignore_case", p)
    mapping: dict[str, Any] = {}
    for k, v in table.items():
        if not isinstance(v, str | int | float | bool):
            raise c.source.error(f"{p}.map.{k}", "must be a string, number or boolean", "")
        mapping[k.lower() if ignore_case else k] = v

    def get(ev: Evaluation) -> Any:
        value = source.get(ev)
        if missing(value) or isinstance(value, list):
            return None
        text = as_text(value)
        return mapping.get(text.lower() if ignore_case else text)

    return get


_GROUP_REF = re.compile(r"\$(?:(\d)|\{(\w+)\}|(\$))")


def _output_template(c: VariableCompiler, output: Any, pattern: re.Pattern, key: str) -> Callable[[re.Match], Any]:
    """`$1`, `${2}`, `${name}` (capture groups), `$$` (a literal $), checked against the pattern now."""
    if not isinstance(output, str):
        if isinstance(output, int | float | bool):
            return lambda m: output
        raise c.source.error(key, "must be a string, number or boolean", "")
    parts: list[str | int] = []
    pos = 0
    for m in _GROUP_REF.finditer(output):
        parts.append(output[pos : m.start()])
        pos = m.end()
        if m.group(3):
            parts.append("$")
            continue
        ref = m.group(1) or m.group(2)
        if ref.isdigit():
            group = int(ref)
            if group > pattern.groups:
                raise c.source.error(key, f"${ref} refers to capture group {group}, but the pattern has {pattern.groups}",
                                     "add a (group) to the pattern or change the reference", value=output)
        elif ref in pattern.groupindex:
            group = pattern.groupindex[ref]
        else:
            raise c.source.error(key, f"${{{ref}}} is not a named group of the pattern",
                                 f"name a group (?P<{ref}>...) or use $1..$9", value=output)
        parts.append(group)
    parts.append(output[pos:])
    if all(isinstance(x, str) for x in parts):
        return lambda m: output.replace("$$", "$")
    return lambda m: "".join(x if isinstance(x, str) else (m.group(x) or "") for x in parts)


def _flag(c: VariableCompiler, t: dict, key: str, p: str) -> bool:
    value = t.get(key, False)
    if not isinstance(value, bool):
        raise c.source.error(f"{p}.{key}", "must be true or false", "")
    return value


def compile_regex(c: VariableCompiler | Source, pattern: Any, key: str, flags: int = 0) -> re.Pattern:
    source = c.source if isinstance(c, VariableCompiler) else c
    if not isinstance(pattern, str) or not pattern:
        raise source.error(key, "must be a regular expression string", "write it as a TOML literal string: '^/p/(\\w+)'")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise source.error(key, f"invalid regular expression: {exc}",
                           "fix the pattern (Python re syntax; TOML literal strings '...' need no \\ escaping)",
                           value=pattern) from None


def _t_regex(c: VariableCompiler, t: dict, p: str) -> Getter:
    source = c.resolve(t["input"], f"{p}.input")
    rules = t["rules"]
    if not isinstance(rules, list) or not rules:
        raise c.source.error(f"{p}.rules", "must be a non-empty list of { pattern, output }",
                             "e.g. rules = [{ pattern = '^/p/(\\w+)', output = \"product-$1\" }]")
    flags = re.IGNORECASE if _flag(c, t, "ignore_case", p) else 0
    full = _flag(c, t, "full_match", p)
    compiled = []
    for i, rule in enumerate(rules):
        key = f"{p}.rules[{i}]"
        if not isinstance(rule, dict) or set(rule) != {"pattern", "output"}:
            raise c.source.error(key, "each rule is a table with pattern and output", '{ pattern = "...", output = "..." }')
        pattern = compile_regex(c, rule["pattern"], f"{key}.pattern", flags)
        compiled.append((pattern.fullmatch if full else pattern.search,
                         _output_template(c, rule["output"], pattern, f"{key}.output")))

    def get(ev: Evaluation) -> Any:
        value = source.get(ev)
        if missing(value) or isinstance(value, list):
            return None
        text = as_text(value)
        for match, output in compiled:
            m = match(text)
            if m:
                return output(m)
        return None

    return get


def _t_range(c: VariableCompiler, t: dict, p: str) -> Getter:
    source = c.resolve(t["input"], f"{p}.input")
    rules = t["rules"]
    if not isinstance(rules, list) or not rules:
        raise c.source.error(f"{p}.rules", "must be a non-empty list of { below, output }",
                             'e.g. rules = [{ below = 50, output = "low" }, { below = 200, output = "mid" }]')
    bounds: list[tuple[float, Any]] = []
    for i, rule in enumerate(rules):
        key = f"{p}.rules[{i}]"
        if not isinstance(rule, dict) or set(rule) != {"below", "output"}:
            raise c.source.error(key, "each rule is a table with below and output", '{ below = 100, output = "mid" }')
        below = rule["below"]
        if isinstance(below, bool) or not isinstance(below, int | float):
            raise c.source.error(f"{key}.below", "must be a number", "")
        if bounds and below <= bounds[-1][0]:
            raise c.source.error(f"{key}.below", "bounds must increase from one rule to the next",
                                 "sort the rules by below, smallest first")
        output = rule["output"]
        if not isinstance(output, str | int | float | bool):
            raise c.source.error(f"{key}.output", "must be a string, number or boolean", "")
        bounds.append((float(below), output))

    def get(ev: Evaluation) -> Any:
        number = as_number(source.get(ev))
        if number is None:
            return None
        for below, output in bounds:
            if number < below:
                return output
        return None  # at or above the last bound: the default

    return get


# type -> (builder, required keys, optional keys)
TYPES: dict[str, tuple[Callable[[VariableCompiler, dict, str], Getter], tuple[str, ...], tuple[str, ...]]] = {
    "param": (_t_param, ("name",), ()),
    "user_property": (_t_user_property, ("name",), ()),
    "event": (_t_event, ("field",), ()),
    "item": (_t_item, (), ("field", "aggregate", "join")),
    "url": (_t_url, (), ("part", "name", "input")),
    "cookie": (_t_cookie, ("name",), ()),
    "header": (_t_header, ("name",), ()),
    "geo": (_t_geo, ("field",), ()),
    "consent": (_t_consent, ("purpose",), ()),
    "experiment": (_t_experiment, (), ("id", "field")),
    "click_id": (_t_click_id, ("name",), ()),
    "constant": (_t_constant, ("value",), ()),
    "template": (_t_template, ("template",), ()),
    "lookup": (_t_lookup, ("input", "map"), ("ignore_case",)),
    "regex": (_t_regex, ("input", "rules"), ("ignore_case", "full_match")),
    "range": (_t_range, ("input", "rules"), ()),
}


def _each(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: [fn(x) for x in v] if isinstance(v, list) else fn(v)


def _to_number(v: Any) -> Any:
    number = as_number(v)
    return None if number is None else tidy_number(number)


FORMATS: dict[str, Callable[[Any], Any]] = {
    "lower": _each(lambda v: as_text(v).lower()),
    "upper": _each(lambda v: as_text(v).upper()),
    "trim": _each(lambda v: as_text(v).strip()),
    "string": _each(as_text),
    "number": _each(_to_number),
}
