"""Check terraform/ against hashicorp/google's published schema (scripts/tfschema), with no provider binary.

`check_tree(dir, schema)` reads every module under `dir` (the root and each folder of .tf files, found
by walking, so a new module is checked without being named here) and returns the faults a
`terraform validate` with the real provider would report, and a few it would only meet at plan:

- unknown resource and data source types;
- unknown arguments, computed-only attributes set, required arguments or blocks missing;
- a block written as an attribute (`x = {...}`) and an attribute written as a block (`x {...}`);
- a max-one block written twice;
- a literal of the wrong type (a number where a bool is wanted, ...) and a literal outside the
  documented enum values (also both literal arms of a `cond ? "A" : "B"`);
- references to attributes a type does not export, into set blocks by index, or to undeclared resources;
- module calls: arguments that are no variable of the module, variables without default not passed,
  `module.x.y` where the module has no output y;
- the provider's own rules (scripts/tfschema/rules.py) where the values are literals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.tfschema import rules

META_RESOURCE = {"count", "for_each", "provider", "depends_on", "lifecycle", "provisioner", "connection"}
META_MODULE = {"source", "version", "count", "for_each", "providers", "depends_on"}
MARKERS = {"__comments__", "__start_line__", "__end_line__", "__inline_comments__"}
BLOCK = "__is_block__"


@dataclass(frozen=True)
class Finding:
    file: str
    address: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.address}: {self.message}"


def _unquote(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def _normalise(node: Any) -> Any:
    """python-hcl2's tree with quoted keys unquoted, blocks still marked (`__is_block__`)."""
    if isinstance(node, dict):
        return {_unquote(k): _normalise(v) for k, v in node.items() if k not in MARKERS}
    if isinstance(node, list):
        return [_normalise(v) for v in node]
    return node


def is_block_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get(BLOCK) for v in value)


def is_expression(value: Any) -> bool:
    """Not a literal: an expression, a template, or a heredoc."""
    if isinstance(value, str):
        return not (value.startswith('"') and value.endswith('"') and "${" not in value)
    if isinstance(value, list):
        return any(is_expression(v) for v in value)
    if isinstance(value, dict) and not value.get(BLOCK):
        return any(is_expression(v) for v in value.values())
    return False


def literal(value: Any) -> Any:
    if isinstance(value, str):
        return _unquote(value).replace('\\"', '"')
    if isinstance(value, list):
        return [literal(v) for v in value]
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items() if k != BLOCK}
    return value


def type_error(value: Any, cty: Any) -> str | None:
    """Why a literal cannot convert to a cty type (Terraform's own conversions allowed), or None."""
    if is_expression(value):
        return None
    v = literal(value)
    if cty == "dynamic":
        return None
    if cty == "string":
        return None if isinstance(v, str | int | float | bool) else f"a {type(v).__name__} where a string is wanted"
    if cty == "number":
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            return f"{v!r} is not a number"
        if isinstance(v, str):
            try:
                float(v)
            except ValueError:
                return f"{v!r} is not a number"
        return None
    if cty == "bool":
        if isinstance(v, bool) or (isinstance(v, str) and v in ("true", "false")):
            return None
        return f"{v!r} is not a bool"
    kind, inner = cty
    if kind in ("list", "set"):
        if not isinstance(value, list):
            return f"{v!r} is not a {kind}"
        return next((e for e in (type_error(x, inner) for x in value) if e), None)
    if kind == "map":
        if not isinstance(value, dict):
            return f"{v!r} is not a map"
        return next((e for e in (type_error(x, inner) for x in value.values()) if e), None)
    if kind == "object":
        return None if isinstance(value, dict) else f"{v!r} is not an object"
    return None


_TERNARY = re.compile(r'^\$\{[^?"]*\?\s*"([^"$]*)"\s*:\s*"([^"$]*)"\s*\}$')


def enum_candidates(value: Any) -> list[str]:
    if isinstance(value, str) and not is_expression(value):
        return [literal(value)]
    if isinstance(value, str) and (m := _TERNARY.match(value)):
        return [m.group(1), m.group(2)]
    return []


def rule_config(body: dict, block: dict) -> dict:
    """A body in rules.violations' shape: literals as values, anything else UNKNOWN, blocks as lists."""
    out: dict[str, Any] = {}
    for name in block.get("attributes", {}):
        if name in body:
            out[name] = rules.UNKNOWN if is_expression(body[name]) else literal(body[name])
        else:
            out[name] = None
    for name, nested in block.get("block_types", {}).items():
        bodies = body.get(name) if is_block_list(body.get(name)) else []
        out[name] = [rule_config(b, nested["block"]) for b in bodies]
        for dyn in body.get("dynamic", []):
            if name in dyn:
                out[name] = rules.UNKNOWN
    return out


# ----------------------------------------------------------------------------------------- modules
@dataclass
class Module:
    path: Path
    files: dict[str, dict]  # file name -> normalised document

    def blocks(self, kind: str):
        for fname, doc in self.files.items():
            for entry in doc.get(kind, []):
                yield fname, entry

    def variables(self) -> dict[str, dict]:
        return {k: v for _, e in self.blocks("variable") for k, v in e.items()}

    def outputs(self) -> set[str]:
        return {k for _, e in self.blocks("output") for k in e}


def load_modules(tree: Path) -> dict[Path, Module]:
    import hcl2

    out: dict[Path, Module] = {}
    for path in sorted(p for p in tree.rglob("*.tf") if ".terraform" not in p.parts):
        mod = out.setdefault(path.parent.resolve(), Module(path.parent.resolve(), {}))
        with path.open() as f:
            mod.files[path.name] = _normalise(hcl2.load(f))
    return out


def _strings(node: Any):
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)


_IDX = r"(?:\[[^\]]*\])?"
_RESOURCE_REF = re.compile(rf"(?<![\w.])(data\.)?(google_[a-z0-9_]+)\.([A-Za-z_][\w-]*){_IDX}((?:\.[a-z_][a-z0-9_]*{_IDX})*)")
_MODULE_REF = re.compile(rf"(?<![\w.])module\.([A-Za-z_][\w-]*){_IDX}\.([A-Za-z_][\w-]*)")


class Checker:
    def __init__(self, tree: Path, schema: dict):
        self.tree = tree.resolve()
        self.schema = schema
        self.modules = load_modules(tree)
        self.findings: list[Finding] = []

    def add(self, mod: Module, fname: str, address: str, message: str) -> None:
        rel = (mod.path / fname).relative_to(self.tree)
        self.findings.append(Finding(str(rel), address, message))

    def run(self) -> list[Finding]:
        for mod in self.modules.values():
            for kind, schemas, prefix in (("resource", "resource_schemas", ""), ("data", "data_source_schemas", "data.")):
                for fname, entry in mod.blocks(kind):
                    for type_name, named in entry.items():
                        for name, body in named.items():
                            self.check_resource(mod, fname, f"{prefix}{type_name}.{name}", type_name, body, schemas)
            for fname, entry in mod.blocks("provider"):
                for pname, body in entry.items():
                    if pname == "google":
                        self.check_body(mod, fname, "provider.google", body, self.schema["provider"]["block"])
            for fname, entry in mod.blocks("module"):
                for name, body in entry.items():
                    self.check_module_call(mod, fname, name, body)
            self.check_references(mod)
        return self.findings

    def check_resource(self, mod, fname, address, type_name, body, schemas) -> None:
        found = self.schema[schemas].get(type_name)
        if found is None:
            kind = "resource" if schemas == "resource_schemas" else "data source"
            self.add(mod, fname, address, f"unknown {kind} type {type_name} in google {self.schema['provider_version']}")
            return
        self.check_body(mod, fname, address, body, found["block"])
        for message in rules.violations(type_name, rule_config(body, found["block"])):
            self.add(mod, fname, address, message)

    def check_body(self, mod, fname, address, body: dict, block: dict) -> None:
        attributes = block.get("attributes", {})
        block_types = block.get("block_types", {})
        dynamic_labels: dict[str, int] = {}
        for dyn in body.get("dynamic", []) if isinstance(body.get("dynamic"), list) else []:
            for label, spec in dyn.items():
                if label == BLOCK:
                    continue
                dynamic_labels[label] = dynamic_labels.get(label, 0) + 1
                if label in block_types:
                    content = spec.get("content", [{}])
                    self.check_body(mod, fname, f"{address}.{label}", content[0] if content else {}, block_types[label]["block"])
                elif label in attributes:
                    self.add(mod, fname, address, f"dynamic \"{label}\": {label} is an attribute, not a block")
                else:
                    self.add(mod, fname, address, f"dynamic \"{label}\": no block {label} in this type")
        for key, value in body.items():
            if key in (BLOCK, "dynamic") or key in META_RESOURCE:
                continue
            where = f"{address}.{key}"
            if key in block_types:
                spec = block_types[key]
                if not is_block_list(value):
                    self.add(mod, fname, where, f"{key} is a block: write `{key} {{ ... }}`, not `{key} = ...`")
                    continue
                count = len(value) + dynamic_labels.get(key, 0)
                if (spec.get("max_items") == 1 or spec["nesting_mode"] == "single") and count > 1:
                    self.add(mod, fname, where, f"at most one {key} block is allowed, found {count}")
                for nested in value:
                    self.check_body(mod, fname, where, nested, spec["block"])
            elif key in attributes:
                attr = attributes[key]
                if is_block_list(value):
                    self.add(mod, fname, where, f"{key} is an attribute: write `{key} = ...`, not a block")
                elif attr.get("computed") and not (attr.get("optional") or attr.get("required")):
                    self.add(mod, fname, where, f"{key} is computed by the provider and cannot be set")
                else:
                    if (err := type_error(value, attr["type"])) is not None:
                        self.add(mod, fname, where, f"wrong type: {err} ({_cty(attr['type'])} wanted)")
                    for candidate in enum_candidates(value) if attr.get("enum") else []:
                        if candidate not in attr["enum"] and candidate != "":
                            self.add(mod, fname, where, f"{candidate!r} is not one of the documented values {attr['enum']}")
            else:
                self.add(mod, fname, where, f"unknown argument {key}")
        for name, attr in attributes.items():
            if attr.get("required") and name not in body:
                self.add(mod, fname, address, f"required argument {name} is missing")
        for name, spec in block_types.items():
            if spec.get("min_items", 0) >= 1 and name not in body and name not in dynamic_labels:
                self.add(mod, fname, address, f"required block {name} is missing")

    def check_module_call(self, mod, fname, name, body) -> None:
        source = literal(body.get("source", ""))
        target = self.modules.get((mod.path / source).resolve()) if source.startswith(".") else None
        if target is None:
            self.add(mod, fname, f"module.{name}", f"source {source!r} is no module in this tree")
            return
        variables = target.variables()
        for key in body:
            if key not in META_MODULE and key != BLOCK and key not in variables:
                self.add(mod, fname, f"module.{name}.{key}", f"module {source} has no variable {key}")
        for var, spec in variables.items():
            if "default" not in spec and var not in body:
                self.add(mod, fname, f"module.{name}", f"variable {var} of {source} has no default and is not passed")

    def check_references(self, mod: Module) -> None:
        declared = {(kind, t, n) for kind in ("resource", "data") for _, e in mod.blocks(kind) for t, named in e.items() for n in named}
        calls = {name: literal(body.get("source", "")) for _, e in mod.blocks("module") for name, body in e.items()}
        for fname, doc in mod.files.items():
            # moved/import/removed name addresses, not values
            values = {k: v for k, v in doc.items() if k not in ("moved", "import", "removed")}
            for text in _strings(values):
                if "${" not in text:
                    continue
                for m in _RESOURCE_REF.finditer(text):
                    self.check_resource_ref(mod, fname, declared, m)
                for m in _MODULE_REF.finditer(text):
                    name, output = m.groups()
                    if name not in calls:
                        self.add(mod, fname, f"module.{name}", "reference to a module that is not called here")
                        continue
                    target = self.modules.get((mod.path / calls[name]).resolve())
                    if target is not None and output not in target.outputs():
                        self.add(mod, fname, f"module.{name}.{output}", f"module {calls[name]} has no output {output}")

    def check_resource_ref(self, mod, fname, declared, m) -> None:
        is_data, type_name, name, rest = m.group(1), m.group(2), m.group(3), m.group(4)
        kind = "data" if is_data else "resource"
        address = f"{'data.' if is_data else ''}{type_name}.{name}"
        schemas = self.schema["data_source_schemas" if is_data else "resource_schemas"]
        if type_name not in schemas:
            return  # reported where it is declared
        if (kind, type_name, name) not in declared:
            self.add(mod, fname, address, "reference to a resource not declared in this module")
            return
        steps = re.findall(r"\.([a-z_][a-z0-9_]*)(\[[^\]]*\])?", rest)
        block = schemas[type_name]["block"]
        path = address
        for attr, index in steps:
            path += f".{attr}"
            if attr in block.get("block_types", {}):
                spec = block["block_types"][attr]
                if index and spec["nesting_mode"] == "set" and index != "[*]":
                    self.add(mod, fname, path, f"{attr} is a set of blocks: its elements have no index")
                block = spec["block"]
                continue
            if attr not in block.get("attributes", {}):
                self.add(mod, fname, path, f"{type_name} exports no attribute {attr}")
            return


def _cty(t: Any) -> str:
    if isinstance(t, str):
        return t
    if t[0] == "object":
        return "object"
    return f"{t[0]}({_cty(t[1])})"


def check_tree(tree: Path, schema: dict) -> list[Finding]:
    return Checker(tree, schema).run()


def count_blocks(tree: Path) -> tuple[int, int]:
    """(resource blocks, data blocks) written under tree."""
    modules = load_modules(tree).values()
    res = sum(len(named) for m in modules for _, e in m.blocks("resource") for named in e.values())
    data = sum(len(named) for m in modules for _, e in m.blocks("data") for named in e.values())
    return res, data
