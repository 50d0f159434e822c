"""Read the Terraform tree with python-hcl2 into plain Python (quotes stripped, markers dropped)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TF = ROOT / "terraform"
MARKERS = {"__is_block__", "__comments__", "__start_line__", "__end_line__", "__inline_comments__"}


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {unquote(k): clean(v) for k, v in node.items() if k not in MARKERS}
    if isinstance(node, list):
        return [clean(v) for v in node]
    if isinstance(node, str):
        return unquote(node)
    return node


@dataclass
class Module:
    path: Path
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    modules: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict] = field(default_factory=list)
    providers: dict[str, dict] = field(default_factory=dict)
    text: str = ""

    def resource(self, kind: str, name: str) -> dict:
        return self.resources[(kind, name)]

    def of_type(self, kind: str) -> dict[str, dict]:
        return {n: body for (k, n), body in self.resources.items() if k == kind}


def parse(path: Path) -> dict:
    import hcl2

    with path.open() as f:
        return clean(hcl2.load(f))


@cache
def tf_files() -> tuple[Path, ...]:
    return tuple(sorted(p for p in TF.rglob("*.tf") if ".terraform" not in p.parts))


@cache
def modules() -> dict[str, Module]:
    """'root' and each modules/<name>, merged over their .tf files."""
    out: dict[str, Module] = {}
    for path in tf_files():
        key = "root" if path.parent == TF else path.parent.name
        mod = out.setdefault(key, Module(path.parent))
        doc = parse(path)
        mod.text += path.read_text()
        for block in doc.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    mod.resources[(kind, name)] = body
        for block in doc.get("variable", []):
            mod.variables.update(block)
        for block in doc.get("output", []):
            mod.outputs.update(block)
        for block in doc.get("module", []):
            mod.modules.update(block)
        for block in doc.get("locals", []):
            mod.locals.update(block)
        mod.terraform += doc.get("terraform", [])
        for block in doc.get("provider", []):
            mod.providers.update(block)
    return out


def block(body: dict, name: str) -> dict:
    """The first nested block `name` of a resource body."""
    value = body.get(name)
    assert value, f"no {name} block"
    return value[0] if isinstance(value, list) else value
