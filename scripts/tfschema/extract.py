"""jsii assembly of a CDK provider binding -> the provider schema, in `terraform providers schema -json`'s shape.

    python -m scripts.tfschema.extract [major ...]   extract (cached) the pinned bindings scripts/tools.sh downloaded

Where each fact comes from (the binding's generator writes them from the provider's schema):
- the resource and data source types: each class's "Represents a {@link .../docs/resources/<x> google_<x>}";
- argument names (snake_case), block or attribute, list/set/map/struct: the generated JavaScript's
  `synthesizeHclAttributes` / `<struct>ToHclTerraform` tables (`isBlock`, `type`, `storageClassType`);
  jsii's own names are camelCase and do not map back mechanically (`md5hash` -> `md5Hash`, `build` -> `buildAttribute`);
- required or optional: the jsii config interface (`optional` on the property);
- computed-only attributes: the getters of the resource class and of each block's OutputReference
  class that are not arguments (`getStringAttribute('email')`, `new XList(this, "name", wrapsSet)`);
- a block with at most one element: its OutputReference passes an element index (`super(..., false, 0)`);
  without one it is a NestingSingle block (`timeouts`);
- documented enum values: the argument's description, "Possible values: [...]" (the provider's docs
  generator writes it from the field's enum, magic-modules mmv1/api/type.rb).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Binding:
    major: str  # the provider's major version
    package: str  # PyPI package
    version: str  # its pinned version (scripts/tools.sh downloads exactly this)
    provider_version: str  # hashicorp/google version the binding was generated from

    @property
    def wheel_glob(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-*.whl"


# Pinned here and in scripts/tools.sh. cdktn tracks `latest` of one provider major per release line
# (its README): 20.3.1 is google 7.46.1, 21.1.0 is google 8.7.0.
BINDINGS = {
    "6": Binding("6", "cdktf-cdktf-provider-google", "16.12.1", "6.50.0"),
    "7": Binding("7", "cdktn-provider-google", "20.3.1", "7.46.1"),
    "8": Binding("8", "cdktn-provider-google", "21.1.0", "8.7.0"),
}


def tools_dir() -> Path:
    return Path(os.environ.get("TAGPIPE_TOOLS_DIR", ROOT / ".venv" / "tools")) / "tfschema"


# Bump when extract() changes what it writes: the cached JSON of an older extractor is then not read.
FORMAT = 1


def schema_path(major: str) -> Path:
    return tools_dir() / f"google-{BINDINGS[major].provider_version}.v{FORMAT}.json"


def wheel_path(major: str) -> Path | None:
    found = sorted((tools_dir() / "wheels").glob(BINDINGS[major].wheel_glob))
    return found[0] if found else None


@cache
def load_schema(major: str) -> dict:
    """The schema of BINDINGS[major], extracted once from its wheel into .venv/tools/tfschema."""
    path = schema_path(major)
    if not path.exists():
        wheel = wheel_path(major)
        if wheel is None:
            raise FileNotFoundError(f"{BINDINGS[major].package}=={BINDINGS[major].version} is not downloaded: run scripts/tools.sh")
        schema = extract(wheel)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(schema, separators=(",", ":")))
        tmp.replace(path)
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------- JavaScript
_CLASS = re.compile(r"^class (\w+) extends ([\w.]+) \{", re.M)
_TO_HCL = re.compile(r"^function (\w+)ToHclTerraform\(struct\) \{", re.M)
_HCL_ENTRY = re.compile(
    r"\n\s*(\w+): \{\s*value: ([^\n]*)\n\s*isBlock: (true|false),\s*type: \"(\w+)\",\s*storageClassType: \"(\w+)\""
)
_GETTER = re.compile(r"get (\w+)\(\) \{\s*return this\.(get\w+Attribute|interpolationForAttribute)\('(\w+)'\)")
# `this._x = new XList(this, "x", false)` (cdktf) or the class field `_x = new index_1.XList(this, "x", false)` (cdktn)
_MEMBER = re.compile(r"\b_(\w+) = new ([\w.]+)\(this, \"(\w+)\"(?:, (true|false))?\)")
_INDEXED = re.compile(r"super\(terraformResource, terraformAttribute, \w+, (?:0|complexObjectIndex)\)")
_CAMEL_IN_VALUE = re.compile(r"(?:this\._|struct\.|struct!\.)(\w+)")

_GETTER_TYPES = {
    "getStringAttribute": "string", "getNumberAttribute": "number", "getBooleanAttribute": "bool",
    "getListAttribute": ["list", "string"], "getNumberListAttribute": ["list", "number"],
    "getStringMapAttribute": ["map", "string"], "getNumberMapAttribute": ["map", "number"],
    "getBooleanMapAttribute": ["map", "bool"], "getAnyMapAttribute": ["map", "dynamic"],
    "interpolationForAttribute": "dynamic",
}  # fmt: skip
_MEMBER_TYPES = {
    "cdktf.StringMap": ["map", "string"], "cdktf.NumberMap": ["map", "number"], "cdktf.BooleanMap": ["map", "bool"],
    "cdktf.AnyMap": ["map", "dynamic"], "cdktf.StringMapList": ["list", ["map", "string"]],
    "cdktf.NumberMapList": ["list", ["map", "number"]], "cdktf.BooleanMapList": ["list", ["map", "bool"]],
    "cdktf.AnyMapList": ["list", ["map", "dynamic"]],
}  # fmt: skip
_HCL_TYPES = {
    ("simple", "string"): "string", ("simple", "number"): "number", ("simple", "boolean"): "bool",
    ("list", "stringList"): ["list", "string"], ("set", "stringList"): ["set", "string"],
    ("list", "numberList"): ["list", "number"], ("set", "numberList"): ["set", "number"],
    ("list", "booleanList"): ["list", "bool"], ("map", "stringMap"): ["map", "string"],
    ("map", "numberMap"): ["map", "number"], ("map", "booleanMap"): ["map", "bool"],
}  # fmt: skip


@dataclass
class _Js:
    """One index.js: per owner (a class, or the struct a ToHcl function serialises) what it declares."""

    hcl: dict[str, list[tuple]]  # owner -> [(snake, camel, is_block, type, storage)]
    getters: dict[str, dict[str, Any]]  # class -> snake -> ("getter", method) | ("member", class, wraps_set)
    indexed: set[str]  # OutputReference classes of list elements


def _parse_js(text: str) -> _Js:
    cuts = sorted(
        [(m.start(), m.group(1)) for m in _CLASS.finditer(text)]
        + [(m.start(), m.group(1)[0].upper() + m.group(1)[1:]) for m in _TO_HCL.finditer(text)]
    )
    js = _Js({}, {}, set())
    for i, (start, owner) in enumerate(cuts):
        chunk = text[start : cuts[i + 1][0] if i + 1 < len(cuts) else len(text)]
        is_function = chunk.startswith("function")
        entries = []
        for snake, value, block, kind, storage in _HCL_ENTRY.findall(chunk):
            camel = _CAMEL_IN_VALUE.search(value)
            entries.append((snake, camel.group(1) if camel else None, block == "true", kind, storage))
        if entries:
            js.hcl[owner] = entries
        if is_function:
            continue
        got: dict[str, Any] = {}
        for _camel, method, snake in _GETTER.findall(chunk):
            got[snake] = ("getter", method)
        for _camel, cls, snake, wraps_set in _MEMBER.findall(chunk):
            cls = cls.replace("cdktn.", "cdktf.")
            if not cls.startswith("cdktf."):
                cls = cls.rsplit(".", 1)[-1]  # index_1.XList: a struct from the module's index-structs/
            got[snake] = ("member", cls, wraps_set == "true")
        js.getters[owner] = got
        if _INDEXED.search(chunk):
            js.indexed.add(owner)
    return js


# ---------------------------------------------------------------------------------------- jsii
_ENUM = re.compile(r"Possible values: \[([^\]]*)\]")
_REGISTRY_LINK = re.compile(r"providers/hashicorp/google/([\d.]+)/docs/(resources|data-sources)/\w+ (google_\w+)\}")


def _docs_text(prop: dict) -> str:
    docs = prop.get("docs", {})
    return f"{docs.get('summary', '')} {docs.get('remarks', '')}"


def _enum(prop: dict) -> list[str] | None:
    found = _ENUM.search(_docs_text(prop))
    if not found:
        return None
    values = re.findall(r'"([^"]*)"', found.group(1))
    return values or None


class _Builder:
    def __init__(self, types: dict, prefix: str):
        self.types = types
        self.prefix = prefix  # "@cdktf/provider-google."

    def props(self, fqn: str) -> dict[str, dict]:
        t = self.types.get(fqn, {})
        return {p["name"]: p for p in t.get("properties", [])}

    def block(self, js: _Js, namespace: str, owner: str, ref_class: str, config_fqn: str, seen: tuple = ()) -> dict:
        """A (resource, data source or nested) block: arguments from the ToHcl table, computed-only from the getters."""
        if owner in seen:  # generated struct names that collide (deep nesting, 8.x): no schema nests itself
            return {"attributes": {}, "block_types": {}}
        seen = (*seen, owner)
        config = self.props(config_fqn)
        attributes: dict[str, dict] = {}
        block_types: dict[str, dict] = {}
        for snake, camel, is_block, kind, storage in js.hcl.get(owner, []):
            prop = config.get(camel or "", {})
            required = bool(prop) and not prop.get("optional", False)
            if is_block:
                member = js.getters.get(ref_class, {}).get(snake)
                cls = member[1] if member and member[0] == "member" else storage
                if cls.endswith("OutputReference"):
                    struct = cls[: -len("OutputReference")]
                    nesting = {"nesting_mode": "list", "max_items": 1} if cls in js.indexed else {"nesting_mode": "single"}
                else:
                    struct = cls[: -len("List")] if cls.endswith("List") else cls
                    nesting = {"nesting_mode": "set" if kind == "set" else "list"}
                if required:
                    nesting["min_items"] = 1
                nested = self.block(js, namespace, struct, f"{struct}OutputReference", f"{self.prefix}{namespace}.{struct}", seen)
                block_types[snake] = {**nesting, "block": nested}
                continue
            cty = _HCL_TYPES.get((kind, storage), "dynamic")
            attr: dict[str, Any] = {"type": cty, "required" if required else "optional": True}
            if (values := _enum(prop)) is not None:
                attr["enum"] = values
            attributes[snake] = attr
        for snake, getter in js.getters.get(ref_class, {}).items():
            if snake in attributes or snake in block_types:
                continue
            attributes[snake] = {"type": self.computed_type(js, getter), "computed": True}
        return {"attributes": attributes, "block_types": block_types}

    def computed_type(self, js: _Js, getter: tuple, seen: tuple = ()) -> Any:
        if getter[0] == "getter":
            return _GETTER_TYPES.get(getter[1], "dynamic")
        _, cls, wraps_set = getter
        if cls in _MEMBER_TYPES:
            return _MEMBER_TYPES[cls]
        if cls.endswith("List"):
            return ["set" if wraps_set else "list", self.object_type(js, cls[: -len("List")] + "OutputReference", seen)]
        if cls.endswith("Map"):
            return ["map", self.object_type(js, cls[: -len("Map")] + "OutputReference", seen)]
        if cls.endswith("OutputReference"):
            return self.object_type(js, cls, seen)
        return "dynamic"

    def object_type(self, js: _Js, ref_class: str, seen: tuple = ()) -> list:
        if ref_class in seen:
            return ["object", {}]
        seen = (*seen, ref_class)
        return ["object", {snake: self.computed_type(js, g, seen) for snake, g in js.getters.get(ref_class, {}).items()}]


def extract(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        (inner,) = [n for n in zf.namelist() if n.endswith(".jsii.tgz")]
        payload = zf.read(inner)
    assembly: dict = {}
    sources: dict[str, list[str]] = {}
    with tarfile.open(fileobj=BytesIO(payload)) as tar:
        for member in tar:
            if member.name == "package/.jsii":
                assembly = json.load(tar.extractfile(member))
            elif member.name.startswith("package/lib/") and member.name.endswith(".js"):
                # a big resource keeps its structs in lib/<module>/index-structs/structs<N>.js
                sources.setdefault(member.name.split("/")[2], []).append(tar.extractfile(member).read().decode())
    js_by_file = {module: _parse_js("\n".join(texts)) for module, texts in sources.items()}
    types = assembly["types"]
    prefix = assembly["name"] + "."
    builder = _Builder(types, prefix)
    out: dict[str, Any] = {
        "format_version": "1.0",
        "source": f"{assembly['name']} {assembly['version']} (PyPI {wheel.name})",
        "provider_version": None,
        "provider": None,
        "resource_schemas": {},
        "data_source_schemas": {},
    }
    for t in types.values():
        if t.get("kind") != "class" or not t.get("base", "").endswith(("TerraformResource", "TerraformDataSource", "TerraformProvider")):
            continue
        module = t["locationInModule"]["filename"].split("/")[1]
        js = js_by_file.get(module)
        if js is None:
            continue
        namespace, name = t["namespace"], t["name"]
        block = builder.block(js, namespace, name, name, f"{prefix}{namespace}.{name}Config")
        if t["base"].endswith("TerraformProvider"):
            out["provider"] = {"block": block}
            continue
        link = _REGISTRY_LINK.search(t.get("docs", {}).get("summary", ""))
        if not link:
            continue
        out["provider_version"] = link.group(1)
        kind = "resource_schemas" if link.group(2) == "resources" else "data_source_schemas"
        out[kind][link.group(3)] = {"block": block}
    return out


def main(argv: list[str]) -> int:
    for major in argv or sorted(BINDINGS):
        schema = load_schema(major)
        print(f"tfschema: google {schema['provider_version']} from {schema['source']}: "
              f"{len(schema['resource_schemas'])} resources, {len(schema['data_source_schemas'])} data sources "
              f"-> {schema_path(major)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
