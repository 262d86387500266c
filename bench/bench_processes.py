"""Records per second through a plugin: Dask worker processes against one process with instances=N.

    python bench/bench_processes.py [--records 4000] [--repeats 3]

The work per record is a CPU-bound wasm loop (``spin``, calibrated to about
0.2 ms), so what scales is wasm running in parallel, not Python overhead.
One process: a ThreadPoolExecutor of N threads over a plugin loaded with
``instances=N`` (the GIL is released while wasm runs). Dask: a LocalCluster
of W worker processes (one thread each), ``dask.bag.from_sequence(records,
npartitions=4 * W).map(plugin.spin)``; the cluster's start and a first
computation (each worker unpickling the plugin once) are not timed. Each
figure is the median of ``--repeats`` runs. The section "Dask and process
pools (issue 16)" of bench/RESULTS.md is replaced by this run's; the rest of
the file is left as it is.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import wasmtime

import wasmforge

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _machine import cpu_model  # noqa: E402

SECTION = "## Dask and process pools (issue 16)"
SPIN = wasmtime.wat2wasm("""(module
  (func (export "spin") (param $rounds i32) (result i32) (local $state i32)
    (local.set $state (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $rounds)))
      (local.set $state (i32.add (i32.mul (local.get $state) (i32.const 1664525)) (i32.const 1013904223)))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br $next)))
    (local.get $state)))""")


def calibrate(plugin: wasmforge.Plugin, seconds: float) -> int:
    """The rounds of spin() that take ``seconds`` (the fastest of several timings of a long run)."""
    rounds = 1_000_000
    fastest = min(_timed(plugin.spin, rounds) for _ in range(5))
    return max(1, int(rounds * seconds / fastest))


def _timed(call: Callable[[int], Any], argument: int) -> float:
    started = time.perf_counter()
    call(argument)
    return time.perf_counter() - started


def median_rate(run: Callable[[], Any], records: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return records / statistics.median(times)


def in_process(records: Sequence[int], threads: int, repeats: int) -> float:
    with wasmforge.Plugin.from_bytes(SPIN, name="spin.wasm", instances=threads) as plugin, \
            concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return median_rate(lambda: list(pool.map(plugin.spin, records, chunksize=64)), len(records), repeats)


def on_dask(records: Sequence[int], workers: int, repeats: int) -> float:
    import dask.bag
    import distributed

    with distributed.LocalCluster(n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, \
            wasmforge.Plugin.from_bytes(SPIN, name="spin.wasm") as plugin:
        def run() -> list[int]:
            bag = dask.bag.from_sequence(records, npartitions=4 * workers).map(plugin.spin)
            return list(bag.compute(scheduler=client))

        run()  # every worker unpickles the plugin once: not timed
        return median_rate(run, len(records), repeats)


def write_section(results: Path, lines: list[str]) -> None:
    """Replaces this benchmark's section of RESULTS.md (or appends it), leaving every other section alone."""
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    block = "\n".join([SECTION, "", *lines]) + "\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + block
    else:
        following = text.find("\n## ", start + len(SECTION))
        text = text[:start] + block + ("\n" + text[following + 1:] if following >= 0 else "")
    results.write_text(text, encoding="utf-8")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args(argv)
    with wasmforge.Plugin.from_bytes(SPIN, name="spin.wasm") as plugin:
        rounds = calibrate(plugin, 0.0002)
    records = [rounds] * args.records
    counts = (1, 2, 4)
    single = {n: in_process(records, n, args.repeats) for n in counts}
    dask = {n: on_dask(records, n, args.repeats) for n in counts}
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"Written by `python bench/bench_processes.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{cpu_model()}, {os.cpu_count()} cores; load average at the end {load}; Dask {_dask_version()}). "
        f"{args.records} records, each `spin({rounds})` (about 0.2 ms of wasm); medians of {args.repeats} runs.",
        "",
        "| N | one process, instances=N (records/s) | Dask, N worker processes (records/s) | Dask N / Dask 1 "
        "| Dask N / one process N |",
        "|---|---|---|---|---|",
    ]
    for n in counts:
        lines.append(f"| {n} | {single[n]:,.0f} | {dask[n]:,.0f} | {dask[n] / dask[1]:.2f}x | {dask[n] / single[n]:.2f}x |")
    lines += [
        "",
        "Dask pays scheduling and moving records between processes; threads in one process share the "
        "plugin's module and pay neither (but a Python host function would hold the GIL). Past the machine's "
        "cores no setting can scale; on a machine shared with other builds (see the load average) the ratios "
        "move from run to run: re-run before reading much into them.",
    ]
    print("\n".join(lines))
    write_section(args.results, lines)
    return 0


def _dask_version() -> str:
    import dask

    return str(dask.__version__)


if __name__ == "__main__":
    sys.exit(main())
