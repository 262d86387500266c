#!/usr/bin/env python3
"""Rewrites example-workspace/ from the templates after a template change.

example-workspace is `wasmforge new example` plus one hand-written crate
(crates/example-toc-plugin); tests/test_scaffold.py fails until this is run.
Only the files `new` writes are replaced; nothing else there is touched.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wasmforge.workspace.scaffold import plan  # noqa: E402

target = REPO / "example-workspace"
for planned in plan("example", target):
    path = target / planned.relative
    if not path.is_file() or path.read_bytes() != planned.content:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(planned.content)
        print(f"updated {path.relative_to(REPO)}")
