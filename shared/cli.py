"""The `tagpipe` command: run the local stack, check config, look at what happened."""

from __future__ import annotations

import argparse
import json
import os
import sys

from shared.errors import ConfigError


def _load(path: str | None):
    from shared.config import load_config

    return load_config(path)


def cmd_run(args: argparse.Namespace) -> int:
    from shared import local

    local.run(_load(args.config), host=args.host, port=args.port)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    entries = config.destination_entries()
    print(f"config OK: {config.source}")
    for e in entries.values():
        state = "enabled" if e.enabled else "disabled"
        secrets = ", ".join(f"{k}=***" for k in e.secrets) or "no secrets"
        print(f"  destination {e.id}: {e.type} ({state}; consent {e.consent or 'none'}; {secrets})")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from shared.storage.sqlite import SqliteStore

    config = _load(args.config)
    store = SqliteStore(config.storage.dir)
    counts = store.outcome_counts()
    print(json.dumps({f"{d}/{o}": n for (d, o), n in sorted(counts.items())}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    from shared.monitoring.logs import configure

    configure(os.environ.get("TAGPIPE_LOG_LEVEL", "INFO"), json_lines=os.environ.get("TAGPIPE_LOG_FORMAT", "json") == "json")
    parser = argparse.ArgumentParser(prog="tagpipe", description=__doc__)
    parser.add_argument("--config", help="config file (default: $TAGPIPE_CONFIG or ./tagpipe.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run collect + transform + deliver locally")
    run.add_argument("--host")
    run.add_argument("--port", type=int, default=int(os.environ["PORT"]) if os.environ.get("PORT") else None)
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate the config file")
    check.set_defaults(func=cmd_check)
    stats = sub.add_parser("stats", help="outcome counts from the local store")
    stats.set_defaults(func=cmd_stats)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
