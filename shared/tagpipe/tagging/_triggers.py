"""Triggers: condition trees compiled once into closures; each trigger is evaluated at most once per event.

A condition table may hold, all of which must hold (AND):

    event = "purchase" | ["purchase", "refund"] | "*"    the event name (shorthand)
    var = "<variable>", <operator> = <operand>, ...     one or more operators on one variable
    all = [ {..}, {..} ]    every condition        any = [ {..}, {..} ]    at least one
    not = {..}              the condition fails    not = [ {..}, {..} ]    none of them holds

Operators: equals, not_equals, contains, starts_with, ends_with, regex, in, gt, gte, lt, lte, exists;
`ignore_case = true` makes the text operators case-insensitive. A list value (all item ids) matches
when any element matches. A missing value matches only `not_equals` and `exists = false`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._evaluation import Evaluation
from ._source import did_you_mean, one_of
from ._values import Var, VariableCompiler, as_bool, as_number, as_text, compile_regex, missing

Test = Callable[[Any], bool]  # on a present value (one element of a list)
Node = Callable[[Evaluation], bool]

OPERATORS = ("equals", "not_equals", "contains", "starts_with", "ends_with", "regex", "in",
             "gt", "gte", "lt", "lte", "exists")  # fmt: skip
NODE_KEYS = ("event", "var", "all", "any", "not", "ignore_case")
TRIGGER_KEYS = (*NODE_KEYS, *OPERATORS, "description")


class Trigger:
    __slots__ = ("name", "slot", "node")

    def __init__(self, name: str, slot: int, node: Node) -> None:
        self.name, self.slot, self.node = name, slot, node

    def matches(self, ev: Evaluation) -> bool:
        result = ev.triggers[self.slot]
        if result is None:
            result = ev.triggers[self.slot] = self.node(ev)
        return result

    def __repr__(self) -> str:
        return f"Trigger({self.name})"


def _always(ev: Evaluation) -> bool:
    return True


class TriggerCompiler:
    def __init__(self, tables: dict[str, Any], variables: VariableCompiler) -> None:
        self.tables = tables
        self.vars = variables
        self.source = variables.source
        self.triggers: dict[str, Trigger] = {}

    def compile_all(self) -> dict[str, Trigger]:
        for name, table in self.tables.items():
            key = f"triggers.{name}"
            if not isinstance(table, dict):
                raise self.source.error(key, "must be a table", f'write it as [triggers.{name}] with e.g. event = "purchase"')
            node = self.node(table, key, top=True)
            self.triggers[name] = Trigger(name, len(self.triggers), node)
        return self.triggers

    def resolve(self, ref: Any, key: str) -> Trigger:
        if not isinstance(ref, str) or ref not in self.triggers:
            hint = did_you_mean(str(ref), self.triggers) if isinstance(ref, str) else ""
            raise self.source.error(key, f"unknown trigger {ref!r}",
                                    hint or f"define [triggers.{ref}] or use {one_of(self.triggers)}", value=ref)
        return self.triggers[ref]

    # ------------------------------------------------------------------ condition tables
    def node(self, table: Any, key: str, top: bool = False) -> Node:
        if not isinstance(table, dict):
            raise self.source.error(key, "a condition must be a table",
                                    '{ var = "value", gt = 200 }, { event = "purchase" }, { any = [...] }')
        allowed = TRIGGER_KEYS if top else (*NODE_KEYS, *OPERATORS)
        for k in table:
            if k not in allowed:
                raise self.source.error(f"{key}.{k}", "unknown condition key",
                                        did_you_mean(k, allowed) or one_of(allowed))
        parts: list[Node] = []
        if "event" in table:
            parts.append(self._event(table["event"], f"{key}.event"))
        ops = [k for k in table if k in OPERATORS]
        if "var" in table:
            if not ops:
                raise self.source.error(f"{key}.var", "a var condition needs an operator",
                                        f"add one of: {', '.join(OPERATORS)} (e.g. gt = 200)")
            var = self.vars.resolve(table["var"], f"{key}.var")
            ignore_case = table.get("ignore_case", False)
            if not isinstance(ignore_case, bool):
                raise self.source.error(f"{key}.ignore_case", "must be true or false", "")
            for op in ops:
                parts.append(self._leaf(var, op, table[op], f"{key}.{op}", ignore_case))
        elif ops:
            raise self.source.error(f"{key}.{ops[0]}", f"operator {ops[0]} needs var",
                                    'name the variable it tests, e.g. var = "value"')
        elif "ignore_case" in table:
            raise self.source.error(f"{key}.ignore_case", "ignore_case applies to a var condition", "add var and an operator")
        for combinator in ("all", "any"):
            if combinator in table:
                children = table[combinator]
                if not isinstance(children, list) or not children:
                    raise self.source.error(f"{key}.{combinator}", "must be a non-empty list of conditions",
                                            f'{combinator} = [{{ event = "purchase" }}, {{ var = "value", gt = 200 }}]')
                nodes = tuple(self.node(c, f"{key}.{combinator}[{i}]") for i, c in enumerate(children))
                parts.append(_all(nodes) if combinator == "all" else _any(nodes))
        if "not" in table:
            child = table["not"]
            if isinstance(child, list):
                if not child:
                    raise self.source.error(f"{key}.not", "must be a condition or a non-empty list of them", "")
                inner = _any(tuple(self.node(c, f"{key}.not[{i}]") for i, c in enumerate(child)))
            else:
                inner = self.node(child, f"{key}.not")
            parts.append(lambda ev, inner=inner: not inner(ev))
        if not parts:
            raise self.source.error(key, "has no condition",
                                    'add e.g. event = "purchase" (event = "*" matches every event)')
        return parts[0] if len(parts) == 1 else _all(tuple(parts))

    def _event(self, value: Any, key: str) -> Node:
        name_var = self.vars.resolve("event_name", key)
        if value == "*":
            return _always
        if isinstance(value, str) and value:
            return self._leaf(name_var, "equals", value, key, False)
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return self._leaf(name_var, "in", value, key, False)
        raise self.source.error(key, "must be an event name, a list of them, or \"*\"", 'e.g. event = "purchase"')

    def _leaf(self, var: Var, op: str, operand: Any, key: str, ignore_case: bool) -> Node:
        get = var.get
        if op == "exists":
            if not isinstance(operand, bool):
                raise self.source.error(key, "must be true or false", "exists = true")
            want = operand
            return lambda ev: (not missing(get(ev))) is want
        if op == "not_equals":
            test = self._test("equals", operand, key, ignore_case)

            def not_equals(ev: Evaluation) -> bool:
                value = get(ev)
                if missing(value):
                    return True
                if isinstance(value, list):
                    return not any(test(v) for v in value if not missing(v))
                return not test(value)

            return not_equals
        test = self._test(op, operand, key, ignore_case)

        def leaf(ev: Evaluation) -> bool:
            value = get(ev)
            if missing(value):
                return False
            if isinstance(value, list):
                return any(test(v) for v in value if not missing(v))
            return test(value)

        return leaf

    def _test(self, op: str, operand: Any, key: str, ignore_case: bool) -> Test:
        fold = (lambda s: s.casefold()) if ignore_case else (lambda s: s)
        if op in ("gt", "gte", "lt", "lte"):
            if isinstance(operand, bool) or not isinstance(operand, int | float):
                raise self.source.error(key, f"{op} compares numbers", f"{op} = 200", value=operand)
            bound = float(operand)
            compare = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}[op]

            def numeric(value: Any) -> bool:
                number = as_number(value)
                return number is not None and compare(number, bound)

            return numeric
        if op == "equals":
            return self._equals(operand, key, fold)
        if op == "in":
            if not isinstance(operand, list) or not operand:
                raise self.source.error(key, "must be a non-empty list", 'in = ["DE", "AT", "CH"]')
            texts, numbers = set(), set()
            for i, v in enumerate(operand):
                if isinstance(v, bool) or isinstance(v, str):
                    texts.add(fold(as_text(v)))
                elif isinstance(v, int | float):
                    numbers.add(float(v))
                else:
                    raise self.source.error(f"{key}[{i}]", "must be a string, number or boolean", "")

            def member(value: Any) -> bool:
                if fold(as_text(value)) in texts:
                    return True
                if numbers:
                    number = as_number(value)
                    return number is not None and number in numbers
                return False

            return member
        if op == "regex":
            pattern = compile_regex(self.source, operand, key, re.IGNORECASE if ignore_case else 0)
            search = pattern.search
            return lambda value: search(as_text(value)) is not None
        # contains / starts_with / ends_with: a string or a list of strings (any of them)
        options = operand if isinstance(operand, list) else [operand]
        if not options or not all(isinstance(o, str | int | float) and not isinstance(o, bool) for o in options):
            raise self.source.error(key, f"{op} takes a string or a list of strings", f'{op} = "..."')
        texts_t = tuple(fold(as_text(o)) for o in options)
        if op == "contains":
            return lambda value: any(t in fold(as_text(value)) for t in texts_t)
        if op == "starts_with":
            return lambda value: fold(as_text(value)).startswith(texts_t)
        return lambda value: fold(as_text(value)).endswith(texts_t)

    def _equals(self, operand: Any, key: str, fold: Callable[[str], str]) -> Test:
        if isinstance(operand, bool):
            return lambda value: as_bool(value) is operand
        if isinstance(operand, int | float):
            number = float(operand)
            return lambda value: as_number(value) == number
        if isinstance(operand, str):
            text = fold(operand)
            return lambda value: fold(as_text(value)) == text
        raise self.source.error(key, "must be a string, number or boolean", 'equals = "purchase"')


def _all(nodes: tuple[Node, ...]) -> Node:
    return lambda ev: all(n(ev) for n in nodes)


def _any(nodes: tuple[Node, ...]) -> Node:
    return lambda ev: any(n(ev) for n in nodes)
