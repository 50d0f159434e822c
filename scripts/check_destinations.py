"""Compare terraform.tfvars `destinations` with the config's [destinations.<id>] (scripts/deploy.sh runs it).

Each id in `destinations` gets its own deliveries topic and subscription; an enabled destination missing
from tfvars has no topic, so transform could not publish its tasks and every hit would retry and
dead-letter. Stdlib only (deploy runs before any virtualenv exists).

    python3 scripts/check_destinations.py <tagpipe.toml> <terraform.tfvars>
exit 0: in step; 1: a config destination has no topic (printed with the fix).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

LIST_RE = re.compile(r"^\s*destinations\s*=\s*\[(?P<items>[^\]]*)\]", re.MULTILINE)


def tfvars_destinations(text: str) -> list[str] | None:
    text = re.sub(r"(?m)\s*(#|//).*$", "", text)  # comments
    match = LIST_RE.search(text)
    return None if match is None else re.findall(r'"([^"]*)"', match.group("items"))


def config_destinations(text: str) -> list[str]:
    """The destinations transform can route to (enabled ones)."""
    return [d for d, body in tomllib.loads(text).get("destinations", {}).items()
            if isinstance(body, dict) and body.get("enabled", True)]


def main(config_path: str, tfvars_path: str) -> int:
    wanted = config_destinations(Path(config_path).read_text())
    listed = tfvars_destinations(Path(tfvars_path).read_text())
    missing = [d for d in wanted if d not in (listed or [])]
    if missing:
        suggestion = ", ".join(f'"{d}"' for d in dict.fromkeys([*(listed or []), *wanted]))
        print(f"{tfvars_path}: destinations lacks {', '.join(missing)}, enabled in {config_path}: their delivery "
              f"tasks would have no topic to go to, and their hits would retry and dead-letter. Set: destinations = [{suggestion}]",
              file=sys.stderr)
        return 1
    extra = [d for d in listed or [] if d not in wanted]
    if extra:
        print(f"note: destinations in {tfvars_path} not enabled in {config_path}: {', '.join(extra)} "
              "(their topics and subscriptions stay idle)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
