"""A new workspace's first build, with and without a target directory shared with another
workspace. Not a test: it measures and records.

    python bench/bench_first_build.py [--rounds N]

Each round makes two workspaces with `wasmforge new` in a fresh temporary directory and
times `wasmforge build` (the library call) of the second one:

* own target dir: what a second workspace costs by default (./target, nothing compiled yet):
  serde, serde_json, syn, quote and proc-macro2 compile from scratch;
* shared target dir: both workspaces set the same [build] target_dir, the first is built
  first (not timed), and the second's first build reuses its compiled dependencies;
* first release build: after a debug build in the same shared target dir, to show what
  cargo cannot share across profiles.

Prints a table and writes bench/RESULTS-first-build.md (machine, versions, load, date).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model  # bench/, next to this script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wasmforge.workspace.build import build  # noqa: E402
from wasmforge.workspace.settings import load_settings  # noqa: E402
from wasmforge.workspace.scaffold import new_workspace  # noqa: E402
from wasmforge.workspace.toolchain import find_toolchain  # noqa: E402


def timed_build(root: Path, target_dir: Path, profile: str = "debug") -> float:
    """Seconds for `wasmforge build` of the workspace at ``root`` into ``target_dir``."""
    settings = dataclasses.replace(load_settings(root, {"profile": profile}), target_dir=target_dir)
    started = time.perf_counter()
    build(settings)
    return time.perf_counter() - started


def one_round(base: Path) -> dict[str, float]:
    first = new_workspace("first", base / "first").destination
    second = new_workspace("second", base / "second").destination
    own = timed_build(second, second / "target")
    shared = base / "shared-target"
    timed_build(first, shared)  # the first workspace: compiles the dependencies once
    reused = timed_build(second, shared)
    release = timed_build(second, shared, profile="release")
    return {"own": own, "shared": reused, "release": release}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.pop("CARGO_TARGET_DIR", None)  # the bench chooses every target dir itself
    rows = []
    for number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="wf-first-build-") as folder:
            load = os.getloadavg()[0]
            row = one_round(Path(folder))
            row["load"] = load
            rows.append(row)
            print(f"round {number + 1}: own target {row['own']:.1f} s, shared target {row['shared']:.1f} s, "
                  f"first release build {row['release']:.1f} s (load {load:.1f})", flush=True)
    text = report(rows)
    (REPO / "bench/RESULTS-first-build.md").write_text(text)
    print(text)
    return 0


def _s(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def report(rows: list[dict[str, float]]) -> str:
    toolchain = find_toolchain()
    own, shared, release = ([r[key] for r in rows] for key in ("own", "shared", "release"))
    loads = ", ".join(f"{r['load']:.1f}" for r in rows)
    os_name = next((line.split("=", 1)[1].strip('"') for line in Path("/etc/os-release").read_text().splitlines()
                    if line.startswith("PRETTY_NAME=")), platform.platform())
    lines = [
        "# A second workspace's first build: measured",
        "",
        "Written by `python bench/bench_first_build.py` (not a test). Medians; min-max in brackets.",
        "",
        f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- os: {os_name}",
        f"- toolchain: {toolchain.cargo_version()}, {toolchain.rustc_version}",
        f"- load average at the start of each round: {loads}"
        " (other engineers build Rust on the same 2 cores)",
        "",
        f"| `wasmforge build` of a new workspace ({len(rows)} rounds) | seconds |",
        "|---|---:|",
        f"| its own target dir (the default): dependencies compile from scratch | {_s(own)} |",
        f"| a target dir shared with a workspace built before (`[build] target_dir`) | {_s(shared)} |",
        f"| then its first `--release` build, same shared target dir | {_s(release)} |",
        "",
        "## What the numbers say",
        "",
        f"- Sharing a target dir takes a new workspace's first build from {statistics.median(own):.0f} s to "
        f"{statistics.median(shared):.0f} s ({statistics.median(own) / statistics.median(shared):.0f}x): only the "
        "workspace's own crates (the plugin, its macro and the pdk) compile; serde, serde_json, syn, quote and "
        "proc-macro2 are reused.",
        "- The first release build still compiles every dependency: cargo keeps each profile's builds in a "
        "directory of its own (target/<triple>/release, and target/release for proc-macros and build scripts), "
        "so nothing built for debug is reused. After that, every workspace sharing the target dir reuses the "
        "release dependencies too.",
        "- It is opt-in (`target_dir` is commented out in every generated wasmforge.toml, and `new` suggests it): "
        "cargo 1.65 names a cdylib's output after the crate alone, so two workspaces of the same name sharing a "
        "target dir would serve each other's stale .wasm, and the documented target/... paths would move.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
