"""Start bqemulator without its DuckDB spatial extension (which it downloads at start, and this
machine has no network for). GEOGRAPHY is the only thing lost; tagpipe's tables have none.

Run with the bqemulator venv's python: `python bqemulator_launcher.py start --rest-port N ...`.
"""

import sys

from bqemulator.storage import engine  # type: ignore[import-not-found]

engine.DuckDBEngine._load_spatial = lambda self: None  # noqa: SLF001

from bqemulator.cli import main  # type: ignore[import-not-found]  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "bqemulator"
    main()
