#!/usr/bin/env python3
"""This checkout's call paths against another checkout's, side by side in one run.

    python bench/compare.py --baseline main            # a git ref, exported to bench/.cache/
    python bench/compare.py --baseline /path/to/checkout

The machine is shared and noisy, so the two are never timed minutes apart:
each round runs one worker process per checkout, in alternating order, and
each worker times every row (the fastest of five runs) through the public API only
(``wasmforge.load``, ``plugin.NAME(...)``), which both checkouts have. The
figure per row is the median over the rounds; the ratio is this checkout's
over the baseline's (below 1.00: faster now). ``bench/run.py --baseline``
puts the same table in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

#: (label, statement, setup): each statement runs with ``plugin``, ``data``, ``text``, ``reading`` and friends.
ROWS: list[tuple[str, str]] = [
    ("plugin.add(1, 2): the lean path", "public.add(1, 2)"),
    ("plugin.add(1, 2), interruptible=False", "uninterruptible.add(1, 2)"),
    ("plugin.call_raw('add', 1, 2)", "public.call_raw('add', 1, 2)"),
    ("plugin.function('add')(1, 2)", "add_function(1, 2)"),
    ("plugin.add(1, 2), timeout=60: the guarded path", "timed.add(1, 2)"),
    ("plugin.add(1, 2), cancellable=True", "cancellable.add(1, 2)"),
    ("plugin.add(1, 2), instances=2: the pool", "pooled.add(1, 2)"),
    ("plugin.echo(1 KiB of bytes): a buffer call", "public.echo(data)"),
    ("plugin.echo_str(1 KiB of text)", "public.echo_str(text)"),
    ("plugin.calibrate(reading): serde JSON", "public.calibrate(reading)"),
    ("wasmforge.load(path): compiled form remembered", "wasmforge.load(path).close()"),
]


def worker(wasm: Path, seconds: float) -> dict[str, float]:
    """Per-call seconds of every row, in this process (whose wasmforge PYTHONPATH chose)."""
    import wasmforge

    public = wasmforge.load(wasm)
    namespace: dict[str, Any] = {
        "wasmforge": wasmforge, "path": wasm, "public": public,
        "uninterruptible": wasmforge.load(wasm, interruptible=False),
        "timed": wasmforge.load(wasm, timeout=60), "pooled": wasmforge.load(wasm, instances=2),
        "cancellable": wasmforge.load(wasm, cancellable=True), "add_function": public.function("add"),
        "data": os.urandom(1024), "text": ("wasmforge " * 103)[:1024],
        "reading": {"sensor": "t-101", "value": 21.5, "unit": "C", "tags": ["north", "roof"], "ok": True},  # subjects.reading()
    }
    results = {}
    for label, statement in ROWS:
        # As timeit does: the statement inlined in a loop, so the loop costs what a for loop costs.
        exec(f"def run(_count):\n    for _ in range(_count):\n        {statement}\n", namespace)  # noqa: S102
        run = namespace["run"]
        run(1)  # warm up: build the call path once
        number = 1
        while True:  # as many calls as take a fifth of ``seconds``
            started = time.perf_counter()
            run(number)
            if time.perf_counter() - started >= seconds / 5 or number >= 1 << 20:
                break
            number *= 2
        best = float("inf")
        for _ in range(5):  # the fastest of five: what a neighbour's burst did not slow down
            started = time.perf_counter()
            run(number)
            best = min(best, (time.perf_counter() - started) / number)
        results[label] = best
    return results


def baseline_checkout(spec: str, cache: Path) -> Path:
    """A directory holding the baseline's wasmforge/: ``spec`` itself, or git ref ``spec`` exported into ``cache``."""
    if Path(spec).is_dir():
        return Path(spec).resolve()
    commit = subprocess.run(["git", "rev-parse", "--short", spec], cwd=REPO, capture_output=True, text=True, check=True)
    target = cache / f"baseline-{commit.stdout.strip()}"
    if not (target / "wasmforge").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", "--format=tar", spec, "wasmforge", "templates"], cwd=REPO,
                                 capture_output=True, check=True)
        archive_path = target / "checkout.tar"
        archive_path.write_bytes(archive.stdout)
        with tarfile.open(archive_path) as tar:
            tar.extractall(target)  # noqa: S202 - our own repository's tree
        archive_path.unlink()
    return target


def compare(wasm: Path, baseline: Path, rounds: int, seconds: float,
            log: Callable[[str], None] = lambda line: None) -> dict[str, dict[str, list[float]]]:
    """{"this checkout": {row: samples}, "baseline": {...}}: ``rounds`` worker pairs, alternating which goes first."""
    sides = {"this checkout": REPO, "baseline": baseline}
    samples: dict[str, dict[str, list[float]]] = {side: {label: [] for label, _ in ROWS} for side in sides}
    order = list(sides)
    for index in range(rounds):
        for side in order if index % 2 == 0 else reversed(order):
            env = dict(os.environ, PYTHONPATH=str(sides[side]))
            env.pop("PYTHONSTARTUP", None)
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(wasm),
                                   "--seconds", str(seconds)], env=env, capture_output=True, text=True, check=True)
            for label, value in json.loads(done.stdout).items():
                samples[side][label].append(value)
        log(f"  round {index + 1}/{rounds}")
    return samples


def table_lines(samples: dict[str, dict[str, list[float]]], markdown: bool = True) -> list[str]:
    def shown(seconds: float) -> str:
        return f"{seconds * 1e6:.2f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"

    lines = ["| call | baseline | this checkout | ratio | noise (IQR, this checkout) |", "|---|---:|---:|---:|---:|"]
    for label, _ in ROWS:
        before, after = samples["baseline"][label], samples["this checkout"][label]
        median_before, median_after = statistics.median(before), statistics.median(after)
        spread = 0.0
        if len(after) >= 4:
            q1, _, q3 = statistics.quantiles(after, n=4)
            spread = (q3 - q1) / median_after / 2
        lines.append(f"| {label} | {shown(median_before)} | {shown(median_after)} | "
                     f"{median_after / median_before:.2f}x | ±{spread * 100:.0f}% |")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="a git ref (e.g. main) or a checkout's directory")
    parser.add_argument("--rounds", type=int, default=15, help="worker pairs (default 15)")
    parser.add_argument("--seconds", type=float, default=0.05, help="time per row per worker (default 0.05)")
    parser.add_argument("--cache-dir", type=Path, default=BENCH / ".cache")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.seconds)))
        return 0
    if not args.baseline:
        parser.error("--baseline REF|DIR is required")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    sys.path.insert(0, str(BENCH))
    import subjects

    wasm = subjects.build_wasmforge_plugin(args.cache_dir, log)
    baseline = baseline_checkout(args.baseline, args.cache_dir)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    log(f"comparing with {baseline} (load average {load})")
    samples = compare(wasm, baseline, args.rounds, args.seconds, log)
    print("\n".join(table_lines(samples)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
