#!/usr/bin/env bash
# Build the Cloud Functions source zips: .dist/{collect,transform,deliver}.zip (and archive.zip
# when functions/archive/main.py exists: terraform's enable_archive_function deploys it)
#
# Each zip holds, at its root:
#   main.py            functions/<name>/main.py
#   shared/tagpipe/            the tagpipe package (no caches, no tests)
#   terraform/modules/bigquery/{schemas/*.json,tables.json}   the table schemas the BigQuery writer reads
#   tagpipe.toml       the config ($TAGPIPE_CONFIG_FILE, default ./tagpipe.toml); TAGPIPE_CONFIG points here
#   requirements.txt   the runtime dependencies from pyproject.toml
#
# Zips are deterministic (sorted entries, fixed timestamps): an unchanged source gives a
# byte-identical zip, so Terraform (which names the object by the zip's hash) redeploys only what changed.
#
# Usage: scripts/package.sh [out_dir]        (default: $TAGPIPE_DIST or .dist)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-${TAGPIPE_DIST:-$ROOT/.dist}}"
CONFIG="${TAGPIPE_CONFIG_FILE:-$ROOT/tagpipe.toml}"
PYTHON="${PYTHON:-python3}"

if [[ ! -f "$CONFIG" ]]; then
  echo "package: no config file at $CONFIG" >&2
  echo "  fix: cp tagpipe.example.toml tagpipe.toml and edit it (or set TAGPIPE_CONFIG_FILE=/path/to/config.toml)" >&2
  exit 2
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "package: $PYTHON not found (needs Python 3.11+); set PYTHON=/path/to/python3" >&2
  exit 2
fi

mkdir -p "$OUT"
"$PYTHON" - "$ROOT" "$OUT" "$CONFIG" <<'PY'
import sys
import tomllib
import zipfile
from pathlib import Path

root, out, config = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
EPOCH = (2020, 1, 1, 0, 0, 0)
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}

deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
requirements = "".join(f"{d}\n" for d in deps)


def files():
    home = root / "shared"
    for path in sorted((home / "tagpipe").rglob("*")):
        rel = path.relative_to(home)
        if path.is_file() and not SKIP_PARTS & set(rel.parts) and path.suffix not in (".pyc", ".pyo"):
            yield str(rel), path.read_bytes()
    yield "tagpipe.toml", config.read_bytes()
    yield "requirements.txt", requirements.encode()


def add(zf, name, data):
    info = zipfile.ZipInfo(name, EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


optional = [f for f in ("archive",) if (root / "functions" / f / "main.py").exists()]
for function in ["collect", "transform", "deliver"] + optional:
    main = root / "functions" / function / "main.py"
    if not main.exists():
        sys.exit(f"package: {main} is missing")
    target = out / f"{function}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        add(zf, "main.py", main.read_bytes())
        for name, data in files():
            add(zf, name, data)
    tmp.replace(target)
    print(f"package: {target} ({target.stat().st_size // 1024} KiB)")
PY
