#!/usr/bin/env python3
"""Which wasmforge modules one save in `watch` passes through, on every thread.

    python bench/trace_save.py [WORKSPACE]

Copies WORKSPACE (default: example-workspace) to a temporary directory, serves
its first plugin crate with ``HotPlugin.from_workspace`` (the code `wasmforge
watch` runs), then records every wasmforge module entered or returned to, on
every thread, from a save of the plugin's lib.rs until the cycle that save
started has finished. Prints, like /work/tools/trace_call.py does for a call:
the distinct modules, the visits (module changes), the returns to a module
already left, and the sequence per thread. Uses the public API only, so the
same script measures any checkout (put it first on PYTHONPATH).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    import wasmforge

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "example-workspace"
    work = Path(tempfile.mkdtemp(prefix="trace-save-"))
    root = work / source.name
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("target"))
    sequences: dict[str, list[str]] = {}
    recording = threading.Event()
    finished = threading.Event()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if not recording.is_set() or event not in ("call", "return"):
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("wasmforge"):
            return
        if event == "return":  # the module that runs after this return
            back = frame.f_back
            while back is not None and not back.f_globals.get("__name__", "").startswith("wasmforge"):
                back = back.f_back
            module = back.f_globals["__name__"] if back is not None else None
        if module:
            sequence = sequences.setdefault(threading.current_thread().name, [])
            if not sequence or sequence[-1] != module:
                sequence.append(module)

    def on_event(event: Any) -> None:
        if recording.is_set() and event.kind == "cycle_finished":
            finished.set()

    threading.setprofile(profile)
    sys.setprofile(profile)
    hot = wasmforge.HotPlugin.from_workspace(root, on_event=on_event)
    try:
        crate = hot.name
        lib = root / "crates" / crate / "src" / "lib.rs"
        recording.set()
        with open(lib, "a", encoding="utf-8") as file:
            file.write(f"\n#[no_mangle]\npub extern \"C\" fn trace_probe_{os.getpid()}() -> i32 {{ 7 }}\n")
        if not finished.wait(600):
            print("the save's cycle did not finish within 600 s", file=sys.stderr)
            return 1
        recording.clear()
        version = hot.version
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
        hot.close()
        shutil.rmtree(work, ignore_errors=True)
    report(sequences, version)
    return 0


def report(sequences: dict[str, list[str]], version: int) -> None:
    every = [module for sequence in sequences.values() for module in sequence]
    distinct = sorted(set(every))
    visits = len(every)
    returns = 0
    for sequence in sequences.values():
        left: set[str] = set()
        previous: Optional[str] = None
        for module in sequence:
            if module in left:
                returns += 1
            if previous:
                left.add(previous)
            previous = module
    print(f"serving v{version} after the save")
    print("distinct modules:", len(distinct), distinct)
    print("visits:", visits, "returns to a module already left:", returns)
    for thread, sequence in sorted(sequences.items()):
        print(f"[{thread}] ({len(sequence)} visits)")
        print("  " + " -> ".join(m.replace("wasmforge.", "") for m in sequence))


if __name__ == "__main__":
    sys.exit(main())
