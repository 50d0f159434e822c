"""Tags: a destination, the triggers that fire it, the vendor event name and params it sets.

    compile_tagging(...) -> Tagging      at config load: every reference resolved, every regex compiled
    Tagging.evaluate(event) -> Evaluation   per event: variable values and trigger results, memoised
    Tagging.decide(ev, dest_id) -> [Decision]   the destination's tags: fired / blocked / not_fired / disabled
    Tag.apply(ev) -> Event | None          the event as this tag sends it (vendor_event_name, params)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from tagpipe.models import Event

from ._evaluation import Evaluation
from ._source import Source, did_you_mean, one_of
from ._triggers import Trigger, TriggerCompiler
from ._values import NAME_RE, Const, Value, VariableCompiler, as_text, missing

TAG_KEYS = ("destination", "triggers", "blocking_triggers", "event_name", "params", "keep_event_params",
            "enabled", "description")  # fmt: skip

# Checks of a constant event_name per destination type (what the destination sends it as).
_CONVERSION_ACTION = re.compile(r"^customers/\d+/conversionActions/\d+$")


def _check_event_name(dest_type: str, name: str) -> str:
    """An error message if the destination type would refuse this vendor event name, else ""."""
    if dest_type == "google_ads" and not _CONVERSION_ACTION.match(name):
        return "for google_ads, event_name is the conversion action: customers/<customer id>/conversionActions/<id>"
    if dest_type == "data_manager" and not name.isdigit():
        return "for data_manager, event_name is the conversion action id (digits)"
    if dest_type == "ga4":
        try:
            from tagpipe.destinations.ga4 import event_name_problem
        except ImportError:  # pragma: no cover - ga4 module not present
            return ""
        problem = event_name_problem(name)
        return f"GA4 refuses this event name ({problem})" if problem else ""
    return ""


# destination types whose prepare() sends no custom params: a tag's params there change nothing (a warning)
PARAMS_NOT_SENT = {"google_ads": "Google Ads conversions carry no custom params",
                   "data_manager": "Data Manager conversions carry no custom params",
                   "tiktok": "TikTok properties are mapped from ecommerce fields only",
                   "log": "the dry-run log shows name, id, value and currency only"}  # fmt: skip

Status = Literal["fired", "blocked", "not_fired", "disabled"]


class Tag:
    __slots__ = ("name", "destination", "triggers", "blocking", "event_name", "params", "keep_event_params", "enabled")

    def __init__(self, name: str, destination: str, triggers: tuple[Trigger, ...], blocking: tuple[Trigger, ...],
                 event_name: Value | None, params: tuple[tuple[str, Value], ...], keep_event_params: bool,
                 enabled: bool) -> None:  # fmt: skip
        self.name, self.destination = name, destination
        self.triggers, self.blocking = triggers, blocking
        self.event_name, self.params = event_name, params
        self.keep_event_params, self.enabled = keep_event_params, enabled

    def apply(self, ev: Evaluation) -> Event | None:
        """The event as this tag sends it; None when its event_name resolves to nothing."""
        event = ev.event
        update: dict[str, Any] = {}
        if self.event_name is not None:
            name = self.event_name.get(ev)
            if missing(name) or isinstance(name, list):
                return None
            update["vendor_event_name"] = as_text(name)
        if self.params or not self.keep_event_params:
            params = dict(event.params) if self.keep_event_params else {}
            for key, value in self.params:
                v = value.get(ev)
                if missing(v):
                    continue
                if isinstance(v, list):  # event params are scalars: lists travel as "a,b,c"
                    v = ",".join(as_text(x) for x in v)
                elif not isinstance(v, str | int | float | bool):
                    v = as_text(v)
                params[key] = v
            update["params"] = params
        # no validation on the hot path: every value above is already a str / number / bool
        return event.model_copy(update=update) if update else event

    def __repr__(self) -> str:
        return f"Tag({self.name} -> {self.destination})"


@dataclass(frozen=True, slots=True)
class Decision:
    tag: Tag
    status: Status
    detail: str = ""  # the trigger that fired it or blocked it


class Tagging:
    """The compiled [variables], [triggers] and [tags] of one config."""

    def __init__(self, variables: dict[str, Any], triggers: dict[str, Trigger], tags: dict[str, Tag],
                 warnings: list[str] | None = None) -> None:  # fmt: skip
        self.variables = variables
        self.warnings = warnings or []  # not errors: `tagpipe check` prints them
        self.triggers = triggers
        self.tags = tags
        by_dest: dict[str, list[Tag]] = {}
        for tag in tags.values():
            by_dest.setdefault(tag.destination, []).append(tag)
        # every declared tag counts, enabled or not: pausing a tag must not open its destination to all events
        self.by_destination: dict[str, tuple[Tag, ...]] = {d: tuple(t) for d, t in by_dest.items()}

    def __bool__(self) -> bool:
        return bool(self.tags)

    def manages(self, dest_id: str) -> bool:
        return dest_id in self.by_destination

    def evaluate(self, event: Event) -> Evaluation:
        return Evaluation(event, len(self.variables), len(self.triggers))

    def decide(self, ev: Evaluation, dest_id: str) -> list[Decision]:
        out = []
        for tag in self.by_destination.get(dest_id, ()):
            if not tag.enabled:
                out.append(Decision(tag, "disabled"))
                continue
            fired = next((t for t in tag.triggers if t.matches(ev)), None)
            if fired is None:
                out.append(Decision(tag, "not_fired"))
                continue
            blocked = next((t for t in tag.blocking if t.matches(ev)), None)
            if blocked is not None:
                out.append(Decision(tag, "blocked", blocked.name))
            else:
                out.append(Decision(tag, "fired", fired.name))
        return out

    def value_of(self, name: str, ev: Evaluation) -> Any:
        """A variable's value for one event (for previews and tests)."""
        return self.variables[name].get(ev)


def compile_tagging(
    variables: dict[str, Any],
    triggers: dict[str, Any],
    tags: dict[str, Any],
    destinations: dict[str, str],
    source: Source,
    consent_default: bool = True,
) -> Tagging:
    """Compile and check everything; `destinations` is destination id -> type. Raises ConfigError."""
    for section, value in (("variables", variables), ("triggers", triggers), ("tags", tags)):
        if not isinstance(value, dict):
            raise source.error(section, "must be a table of tables", f"write [{section}.<name>] sections")
    vc = VariableCompiler(variables, source, consent_default)
    vc.compile_all()
    tc = TriggerCompiler(triggers, vc)
    compiled_triggers = tc.compile_all()
    compiled_tags: dict[str, Tag] = {}
    warnings: list[str] = []
    for name, table in tags.items():
        tag = compiled_tags[name] = _compile_tag(name, table, vc, tc, destinations, source)
        why = PARAMS_NOT_SENT.get(destinations[tag.destination])
        if tag.params and why:
            warnings.append(f"{source.where(f'tags.{name}.params')}: tags.{name}.params: not sent to "
                            f"{tag.destination} ({why}); remove them or target another destination")
    return Tagging(vc.vars, compiled_triggers, compiled_tags, warnings)


def _compile_tag(name: str, table: Any, vc: VariableCompiler, tc: TriggerCompiler,
                 destinations: dict[str, str], source: Source) -> Tag:  # fmt: skip
    p = f"tags.{name}"
    if not NAME_RE.match(name):
        raise source.error(p, "a tag name must be letters, digits and _", "rename it")
    if not isinstance(table, dict):
        raise source.error(p, "must be a table", f"write it as [tags.{name}] with destination and triggers")
    for k in table:
        if k not in TAG_KEYS:
            raise source.error(f"{p}.{k}", "unknown tag key", did_you_mean(k, TAG_KEYS) or one_of(TAG_KEYS))
    dest = table.get("destination")
    if dest is None:
        raise source.error(f"{p}.destination", "required key is missing", f"add destination = one of {sorted(destinations)}")
    if dest not in destinations:
        raise source.error(f"{p}.destination", f"unknown destination {dest!r}",
                           did_you_mean(str(dest), destinations) or f"define [destinations.{dest}] or use {one_of(destinations)}",
                           value=dest)
    trigger_names = table.get("triggers")
    if trigger_names is None:
        raise source.error(f"{p}.triggers", "required key is missing", 'add triggers = ["<trigger name>"]')
    fire = _trigger_list(trigger_names, f"{p}.triggers", tc, source, required=True)
    block = _trigger_list(table.get("blocking_triggers", []), f"{p}.blocking_triggers", tc, source, required=False)
    event_name = None
    if "event_name" in table:
        raw = table["event_name"]
        if not isinstance(raw, str) or not raw.strip():
            raise source.error(f"{p}.event_name", "must be a non-empty string",
                               'a vendor event name ("HighValuePurchase") or a variable ("{{meta_event}}")')
        event_name = vc.value(raw, f"{p}.event_name")
        if isinstance(event_name, Const):
            problem = _check_event_name(destinations[dest], raw)
            if problem:
                raise source.error(f"{p}.event_name", problem, "fix the name", value=raw)
    params_table = table.get("params", {})
    if not isinstance(params_table, dict):
        raise source.error(f"{p}.params", "must be a table of param -> value",
                           'params = { aov_tier = "{{aov_tier}}", source = "server" }')
    params = []
    for key, raw in params_table.items():
        if not key:
            raise source.error(f"{p}.params", "a param name cannot be empty", "")
        params.append((key, vc.value(raw, f"{p}.params.{key}")))
    flags = {}
    for flag, default in (("keep_event_params", True), ("enabled", True)):
        flags[flag] = table.get(flag, default)
        if not isinstance(flags[flag], bool):
            raise source.error(f"{p}.{flag}", "must be true or false", "")
    if "description" in table and not isinstance(table["description"], str):
        raise source.error(f"{p}.description", "must be a string", "")
    return Tag(name, dest, fire, block, event_name, tuple(params), flags["keep_event_params"], flags["enabled"])


def _trigger_list(value: Any, key: str, tc: TriggerCompiler, source: Source, required: bool) -> tuple[Trigger, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (required and not value):
        raise source.error(key, "must be a list of trigger names", '["purchase"]')
    return tuple(tc.resolve(v, f"{key}[{i}]") for i, v in enumerate(value))
