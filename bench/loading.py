"""Times the loading rows of bench/run.py alone, and puts them in RESULTS.md's "loading a plugin" table.

    python bench/loading.py [--rounds N] [--quick]

Only that table changes; the other sections and the targets stay as bench/run.py last wrote them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402
import subjects  # noqa: E402

TITLE = "### loading a plugin"


def replace_table(text: str, table: list[str]) -> str:
    """``text`` with the table under :data:`TITLE` (up to the next heading) replaced by ``table``."""
    lines = text.splitlines()
    start = lines.index(TITLE)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    table = list(table)
    while table and not table[-1]:
        table.pop()
    return "\n".join(lines[:start] + table + [""] + lines[end:]) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; does not write RESULTS.md")
    parser.add_argument("--rounds", type=int, help="rounds (default 15, --quick 3)")
    parser.add_argument("--cache-dir", type=Path, default=run.REPO / "bench" / ".cache")
    parser.add_argument("--results", type=Path, default=run.REPO / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    wasm = subjects.build_wasmforge_plugin(args.cache_dir, lambda message: print(message, file=sys.stderr))
    group = run.loading_group(wasm, subjects.extism_plugin_bytes(), args.rounds or (3 if args.quick else 15),
                              0.05 if args.quick else 0.15)
    table = run.table_lines([group], markdown=True)
    print("\n".join(table))
    if not args.quick:
        args.results.write_text(replace_table(args.results.read_text(encoding="utf-8"), table), encoding="utf-8")
        print(f"wrote the loading table of {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
