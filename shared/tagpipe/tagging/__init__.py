"""Tags, triggers and variables: Google Tag Manager's model as sections of the config file.

    [variables.<name>]  a value read from the event: a param, an item field, a URL part, a cookie, a header,
                        a constant, a lookup / regex / range table over another variable, ...
    [triggers.<name>]   conditions on variables (equals, regex, gt, in, exists, ...) under all / any / not
    [tags.<name>]       destination + triggers (+ blocking_triggers) -> event_name and params for that vendor

Everything is compiled when the config loads (references resolved, regexes compiled, cycles refused with
a ConfigError that names the file, line and key), so transform only runs small closures per event:

    tagging = compile_tagging(variables, triggers, tags, {dest_id: type}, Source(path, text))
    ev = tagging.evaluate(event)                   # memoises variable values and trigger results
    for decision in tagging.decide(ev, "meta"):    # fired / blocked / not_fired / disabled, in file order
        tagged = decision.tag.apply(ev)            # the event with vendor_event_name and params set

Semantics with destinations (transform.route): a destination no tag names gets every event through its
default mapping; a destination some tag names gets one task per firing tag (event_uid "<uid>#<tag>"),
or one `filtered / no_tag_fired` outcome. See docs/tags.md.
"""

from ._evaluation import Evaluation
from ._source import Source, line_of
from ._tags import Decision, Tag, Tagging, compile_tagging
from ._triggers import OPERATORS, Trigger
from ._values import BUILTINS, PREFIXES, TYPES, Var

__all__ = [
    "BUILTINS",
    "OPERATORS",
    "PREFIXES",
    "TYPES",
    "Decision",
    "Evaluation",
    "Source",
    "Tag",
    "Tagging",
    "Trigger",
    "Var",
    "compile_tagging",
    "line_of",
    "tag_event_uid",
]


def tag_event_uid(event_uid: str, tag_name: str) -> str:
    """The event_uid of the task (and outcome) one tag produces: one per (event, destination, tag)."""
    return f"{event_uid}#{tag_name}"
