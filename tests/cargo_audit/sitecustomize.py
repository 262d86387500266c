"""Records each cargo a Python process runs, for the check that cargo tests are marked (tests/conftest.py).

tests/conftest.py puts this directory first on PYTHONPATH for the whole test session, so the
Python processes tests start (the `wasmforge` command, scripts) record their cargo runs too,
in the file WASMFORGE_TEST_CARGO_LOG names. What compiles nothing does not count: asking cargo
its version (finding the toolchain does) and resolving a new workspace's lock file (`wasmforge
new` does, offline, in a few tens of milliseconds).
"""

from __future__ import annotations

import os
import sys
from typing import Any


def record_cargo(event: str, args: Any) -> None:
    if event != "subprocess.Popen":
        return
    log = os.environ.get("WASMFORGE_TEST_CARGO_LOG")
    executable, argv = args[0], args[1]
    if not log:
        return
    if isinstance(argv, (list, tuple)):
        words = [os.fsdecode(word) for word in argv]
    elif isinstance(argv, (str, bytes)):
        words = os.fsdecode(argv).split()
    else:
        words = [os.fsdecode(executable)] if executable else []
    if not words or os.path.basename(words[0]) != "cargo" or words[1:2] in (["--version"], ["-V"], ["generate-lockfile"]):
        return
    with open(log, "a", encoding="utf-8") as file:
        file.write(" ".join(words) + "\n")


if os.environ.get("WASMFORGE_TEST_CARGO_LOG"):
    sys.addaudithook(record_cargo)
