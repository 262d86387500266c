#!/usr/bin/env python3
"""wasmforge's benchmark: one command, side by side in one run.

    python bench/run.py              # builds what it needs, prints the table, writes bench/RESULTS.md
    python bench/run.py --quick      # fewer rounds, for trying things out (RESULTS.md untouched)
    python bench/run.py --baseline main   # and the public API's rows beside main's (bench/compare.py)

Needs wasmtime (a wasmforge dependency), Extism (`pip install -e '.[bench]'`)
and a Rust toolchain that `wasmforge doctor` accepts. Every figure is the
median of many rounds; within a round the implementations of one work item
run interleaved, in rotating order, so a noisy neighbour hits them alike.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import timeit
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import wasmtime  # noqa: E402

import subjects  # noqa: E402

from _machine import cpu_model  # bench/, next to this script

KIB, MIB = 1024, 1024 * 1024
#: Rounds of the in-wasm serde loop per timed call (bench/plugin_additions.rs, serde_floor).
SERDE_ROUNDS = 200


# ---- timing ---------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    seconds: list[float] = field(default_factory=list)
    #: "floor", "wasmforge", "fast", "wasmtime", "extism", "json", "python"
    kind: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median: how noisy this row was."""
        if len(self.seconds) < 4:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.seconds, n=4)
        return (q3 - q1) / self.median


@dataclass
class Group:
    title: str
    rows: list[Row]
    #: Row labels whose ratio to the others is printed.
    reference: str


def measure(candidates: Sequence[tuple[str, str, str, dict[str, Any]]], rounds: int, round_seconds: float) -> list[Row]:
    """Times each ``(label, kind, statement, namespace)``; per-call seconds, one sample per round.

    The statement is timed as written (timeit inlines it in its loop: no extra
    function call per iteration), with the garbage collector off, as timeit does.
    """
    timers = [timeit.Timer(stmt, globals=namespace) for _, _, stmt, namespace in candidates]
    counts = []
    for timer in timers:
        timer.timeit(3)  # warm up: first calls bind, grow memory, fill caches
        once = max(timer.timeit(1), 1e-7)
        counts.append(max(1, int(round_seconds / once)))
    rows = [Row(label, kind=kind) for label, kind, _, _ in candidates]
    for round_index in range(rounds):
        order = list(range(len(timers)))
        shift = round_index % len(order)
        for index in order[shift:] + order[:shift]:
            rows[index].seconds.append(timers[index].timeit(counts[index]) / counts[index])
    return rows


def measure_processes(commands: Sequence[tuple[str, list[str]]], runs: int, env: dict[str, str]) -> list[Row]:
    """Wall time of whole processes, interleaved."""
    rows = [Row(label, kind="python") for label, _ in commands]
    for run_index in range(runs):
        for index, (_, argv) in enumerate(commands):
            started = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            rows[index].seconds.append(time.perf_counter() - started)
    return rows


def threads_speedup(call: Callable[[], Any], other: Callable[[], Any], repeats: int) -> tuple[float, float, float, float]:
    """One thread running both calls vs two threads running one each, medians:
    (one thread's wall time, two threads' wall time, speedup, cores busy in the two-thread run).

    "Cores busy" is the threads' CPU time divided by the wall time: above 1.0 the
    two calls really ran at the same time (the GIL was not held), whatever other
    load on the machine did to the wall times.
    """
    sequential, parallel, busy = [], [], []
    cpu: dict[int, float] = {}

    def timed(index: int, function: Callable[[], Any]) -> None:
        started = time.thread_time()
        function()
        cpu[index] = time.thread_time() - started

    for _ in range(repeats):
        started = time.perf_counter()
        call()
        other()
        sequential.append(time.perf_counter() - started)
        threads = [threading.Thread(target=timed, args=(0, call)), threading.Thread(target=timed, args=(1, other))]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        parallel.append(wall)
        busy.append((cpu[0] + cpu[1]) / wall)
    one, two = statistics.median(sequential), statistics.median(parallel)
    return one, two, one / two, statistics.median(busy)


# ---- the work items -------------------------------------------------------------------------


def loading_group(wasm: Path, extism_wasm: bytes, rounds: int, round_seconds: float) -> Group:
    """The loading rows alone (bench/loading.py runs just these)."""
    import extism

    import wasmforge
    from wasmforge.runtime.cache import default_cache
    from wasmforge.runtime.compiled import forget_facts
    from wasmforge.runtime.engines import default_engine

    engine = default_engine()
    data = wasm.read_bytes()
    compiled_extism = extism.extism.CompiledPlugin(extism_wasm)
    wasmforge.Plugin.from_bytes(data).close()  # the disk cache holds it from here on
    floor_module, floor_linker, floor_entry = _wasmtime_floor_parts(engine, data)
    namespace = {"wasmforge": wasmforge, "path": wasm, "wasmtime": wasmtime, "engine": engine, "disk_cache": default_cache(),
                 "forget_facts": forget_facts,
                 "data": data, "extism": extism, "extism_wasm": extism_wasm, "compiled_extism": compiled_extism,
                 "floor_instance": _wasmtime_floor_instance, "floor_pre": floor_linker.instantiate_pre(floor_module),
                 "floor_linker": floor_linker, "floor_entry": floor_entry, "hashlib": hashlib}
    candidates = [
        ("wasmforge.load(path): compiled form remembered in this process", "wasmforge", "wasmforge.load(path).close()"),
        ("wasmforge.Plugin.from_bytes(data): compiled form from the disk cache", "wasmforge",
         "wasmforge.Plugin.from_bytes(data).close()"),
        # The same, as the first load of those bytes in a process: the entry read and HMAC-checked,
        # the module's metadata and exports read.
        ("wasmforge.Plugin.from_bytes(data): from the disk cache, first time in a process", "wasmforge",
         "disk_cache.forget_verified(); forget_facts(); wasmforge.Plugin.from_bytes(data).close()"),
        # The floors of the two rows above: wasmtime-py alone, nothing of wasmforge's (no limits, no Ctrl-C,
        # no content check, no Python objects of ours): what is left if wasmforge cost nothing.
        ("wasmtime-py alone: Store + InstancePre.instantiate + __wf_init, module in memory (floor of the first row)",
         "floor", "floor_instance(engine, floor_pre)"),
        ("wasmtime-py alone: SHA-256 of the bytes + Module.deserialize_file + instantiate_pre + the above "
         "(floor of the second row)", "floor",
         "hashlib.sha256(data).digest(); "
         "floor_instance(engine, floor_linker.instantiate_pre(wasmtime.Module.deserialize_file(engine, floor_entry)))"),
        ("wasmtime Module(engine, bytes): compiling alone", "wasmtime", "wasmtime.Module(engine, data)"),
        ("Extism Plugin(bytes)", "extism", "extism.Plugin(extism_wasm)"),
        ("Extism Plugin(CompiledPlugin)", "extism", "extism.Plugin(compiled_extism)"),
    ]
    rows = measure([(label, kind, stmt, namespace) for label, kind, stmt in candidates], rounds, round_seconds)
    return Group("loading a plugin", rows, "Extism Plugin(bytes)")


def _wasmtime_floor_parts(engine: wasmtime.Engine, data: bytes) -> tuple[wasmtime.Module, wasmtime.Linker, str]:
    """For the loading floors: the module, a linker with its imports (no-op runtime hooks, WASI) and its disk-cache entry."""
    from wasmforge.runtime.cache import default_cache

    module = wasmtime.Module(engine, data)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    for item in module.imports:
        if item.module == "wasmforge" and isinstance(item.type, wasmtime.FuncType):
            linker.define_func(item.module, item.name, item.type, lambda *args: None)
    cache = default_cache()
    assert cache is not None, "the loading floor reads the disk cache's entry: run with the cache on"
    entry = cache.entry_path(engine, data)
    assert entry.exists(), entry
    return module, linker, str(entry)


def _wasmtime_floor_instance(engine: wasmtime.Engine, pre: wasmtime.InstancePre) -> None:
    """A store, an instance from ``pre``, its ``__wf_init`` called (found by name without wrapping every export,
    as wasmforge does), then freed: what wasmtime-py itself costs per load."""
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1 << 40)  # the shared engine checks epochs (Ctrl-C); never reached here
    instance = pre.instantiate(store)
    name = b"__wf_init"
    item = wasmtime._ffi.wasmtime_extern_t()
    if wasmtime._ffi.wasmtime_instance_export_get(store._context(), ctypes.byref(instance._instance), name, len(name),
                                                  ctypes.byref(item)):
        wasmtime._extern.wrap_extern(item)(store)


def run_groups(wasm: Path, extism_wasm: bytes, rounds: int, round_seconds: float, log: Callable[[str], None]) -> tuple[list[Group], dict[str, Any]]:
    import extism

    import wasmforge
    from wasmforge.runtime.engines import default_engine

    engine = default_engine()
    module = wasmtime.Module.from_file(engine, str(wasm))
    public = wasmforge.load(wasm)
    uninterruptible = wasmforge.load(wasm, interruptible=False)
    fast = subjects.FastPlugin(engine, module)
    fixed_engine = subjects.fixed_memory_engine()
    fixed = subjects.FastPlugin(fixed_engine, wasmtime.Module.from_file(fixed_engine, str(wasm)), stable_base=True)
    raw = subjects.RawWasmtime(engine, module)
    ext = extism.Plugin(extism_wasm)
    subjects.check_same_answers(public, fast, raw, ext)
    fast.set_serde_sample(subjects.json_encode_arguments(subjects.reading()))
    assert fast.serde_floor(1, 1) == len(fast.calibrate(subjects.json_encode_arguments(subjects.reading())))
    assert fast.serde_floor(1, 2) == 57  # the Reading as MessagePack, the size Python's msgpack.packb gives it
    subjects.check_same_answers(public, fixed, raw, None)
    libc = ctypes.CDLL(None)
    namespace = {
        "public": public, "uninterruptible": uninterruptible, "fast": fast, "fixed": fixed, "raw": raw, "ext": ext, "labs": libc.labs, "json": json,
        "reading": subjects.reading(), "encode": subjects.json_encode_arguments,
        "add_function": public.function("add"), "cancellable": wasmforge.load(wasm, cancellable=True),
    }
    groups: list[Group] = []

    def group(title: str, reference: str, candidates: list[tuple[str, str, str]], extra: Optional[dict[str, Any]] = None,
              rounds_: int = rounds, seconds: float = round_seconds) -> None:
        log(f"  {title}")
        ns = dict(namespace, **(extra or {}))
        rows = measure([(label, kind, stmt, ns) for label, kind, stmt in candidates], rounds_, seconds)
        groups.append(Group(title, rows, reference))

    log("timing (medians of interleaved rounds):")
    group("scalar add(1, 2)", "wasmforge fast path (runtime/fastcall.py)", [
        ("ctypes floor: libc labs(1)", "floor", "labs(1)"),
        ("wasmforge fast path (runtime/fastcall.py)", "fast", "fast.add(1, 2)"),
        ("wasmforge public API: plugin.add(1, 2)", "wasmforge", "public.add(1, 2)"),
        # What Ctrl-C support costs per call (docs/PERFORMANCE.md): the same without epoch checks.
        ("wasmforge public API, interruptible=False", "wasmforge", "uninterruptible.add(1, 2)"),
        ("plain wasm numbers: plugin.call_raw('add', 1, 2)", "wasmforge", "public.call_raw('add', 1, 2)"),
        ("plugin.function('add')(1, 2)", "wasmforge", "add_function(1, 2)"),
        ("cancellable=True: plugin.add(1, 2)", "wasmforge", "cancellable.add(1, 2)"),
        ("wasmtime-py Func.__call__", "wasmtime", "raw.add(1, 2)"),
        ("Extism no-op call", "extism", "ext.call('noop', b'')"),
    ])
    for size, name in ((KIB, "1 KiB"), (MIB, "1 MiB")):
        data = os.urandom(size)
        # ASCII, the common case: Python's codec then only copies. Non-ASCII text adds
        # the same UTF-8 encoding and decoding time to every implementation.
        text = ("wasmforge " * (size // 10 + 1))[:size]
        scale = 1 if size == KIB else 0.2
        group(f"bytes echo, {name}", "wasmforge fast path (runtime/fastcall.py)", [
            # Issue 17's floor for bulk data: the copy in and the copy out alone, through a memoryview.
            ("floor: copy in + copy out through a memoryview", "floor", "view[:size] = data; bytes(view[:size])"),
            ("wasmforge fast path (runtime/fastcall.py)", "fast", "fast.echo(data)"),
            ("wasmforge fast path, memories that never move", "fast", "fixed.echo(data)"),
            ("wasmforge public API: plugin.echo(data)", "wasmforge", "public.echo(data)"),
            ("wasmforge public API, a bytearray in, out= a buffer", "wasmforge", "public.echo(mutable, out=out)"),
            ("wasmtime-py Func.__call__ + Memory.read/write", "wasmtime", "raw.buffer_call('echo', data)"),
            ("Extism echo", "extism", "ext.call('echo', data)"),
        ], {"data": data, "size": size, "view": memoryview(bytearray(size)), "mutable": bytearray(data),
            "out": bytearray(size)}, rounds_=max(5, int(rounds * scale)))
        group(f"str echo, {name}", "wasmforge fast path (runtime/fastcall.py)", [
            ("wasmforge fast path (runtime/fastcall.py)", "fast", "fast.echo_str(text)"),
            ("wasmforge public API: plugin.echo_str(text)", "wasmforge", "public.echo_str(text)"),
            ("Extism echo, encode + decode", "extism", "ext.call('echo', text).decode()"),
        ], {"text": text}, rounds_=max(5, int(rounds * scale)))
    group("small serde struct in and out (JSON)", "JSON encode + decode alone (Python side)", [
        ("JSON encode + decode alone (Python side)", "json", "encode(reading); json.loads(out)"),
        ("wasmforge fast path (runtime/fastcall.py) + JSON", "fast", "json.loads(fast.calibrate(encode(reading)))"),
        ("wasmforge fast path, JSON bytes in and out (the wasm side alone)", "fast", "fast.calibrate(encoded)"),
        ("wasmforge public API: plugin.calibrate(reading)", "wasmforge", "public.calibrate(reading)"),
        ("wasmforge public API, MessagePack wire: plugin.calibrate_mp(reading)", "wasmforge",
         "public.calibrate_mp(reading)"),
        ("Extism echo of the JSON + JSON (no serde in wasm)", "extism", "json.loads(ext.call('echo', encode(reading)))"),
        # The floor of this path inside wasm (no call across the boundary): a loop in a release build of
        # the plugin runs calibrate's glue, or serde_json alone, SERDE_ROUNDS times per call; per round below.
        ("floor in wasm: calibrate's glue alone (split, serde_json decode, calibrate, encode)", "floor",
         f"fast.serde_floor({SERDE_ROUNDS}, 1)"),
        ("floor in wasm: serde_json decode + encode of the struct alone", "floor", f"fast.serde_floor({SERDE_ROUNDS}, 0)"),
        # What a binary wire could save inside wasm (docs/ABI.md, "Why JSON and not MessagePack").
        ("in wasm: a hand-written MessagePack decode + encode of the struct (no serde)", "floor",
         f"fast.serde_floor({SERDE_ROUNDS}, 2)"),
        ("floor in wasm: calibrate_mp's glue alone (the pdk's serde MessagePack)", "floor",
         f"fast.serde_floor({SERDE_ROUNDS}, 3)"),
    ], {"out": fast.calibrate(subjects.json_encode_arguments(subjects.reading())),
        "encoded": subjects.json_encode_arguments(subjects.reading())})
    for row in groups[-1].rows:
        if row.label.startswith(("floor in wasm", "in wasm:")):
            row.seconds = [seconds / SERDE_ROUNDS for seconds in row.seconds]

    log("  loading a plugin")
    groups.append(loading_group(wasm, extism_wasm, max(5, rounds // 2), round_seconds * 5))

    log("  start-up")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONSTARTUP", None)
    startup = measure_processes([
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("wasmforge --version (python -m wasmforge --version)", [sys.executable, "-m", "wasmforge", "--version"]),
        ("wasmforge --version (as the console script runs it)",
         [sys.executable, "-c", "import sys; from wasmforge.cli import main; sys.exit(main(['--version']))"]),
        ("python -c 'import wasmtime'", [sys.executable, "-c", "import wasmtime"]),
    ], runs=max(7, rounds), env=env)
    groups.append(Group("start-up (whole process)", startup, "python -c pass"))

    log("  threads")
    load_before_threads = " ".join(Path("/proc/loadavg").read_text().split()[:1]) if Path("/proc/loadavg").exists() else "?"
    spin_rounds = _calibrate_spin(fast.spin, 0.2)
    fast_two = subjects.FastPlugin(engine, module)
    public_two = wasmforge.load(wasm)
    pooled = wasmforge.load(wasm, instances=2)
    # hashlib releases the GIL for large inputs: how much parallelism the machine
    # gives two threads right now, whatever wasm does.
    blob = os.urandom(8 * MIB)
    started = time.perf_counter()
    hashlib.sha256(blob).digest()
    blob = blob * max(1, int(0.2 / max(time.perf_counter() - started, 1e-4)))
    threads = {
        "rounds": spin_rounds,
        "control: hashlib.sha256 (releases the GIL), no wasm": threads_speedup(
            lambda: hashlib.sha256(blob).digest(), lambda: hashlib.sha256(blob).digest(), 7),
        "fast path, one store per thread": threads_speedup(lambda: fast.spin(spin_rounds), lambda: fast_two.spin(spin_rounds), 7),
        "public API, one Plugin per thread": threads_speedup(lambda: public.spin(spin_rounds), lambda: public_two.spin(spin_rounds), 7),
        "public API, one Plugin shared": threads_speedup(lambda: public.spin(spin_rounds), lambda: public.spin(spin_rounds), 7),
        "public API, one Plugin with instances=2": threads_speedup(
            lambda: pooled.spin(spin_rounds), lambda: pooled.spin(spin_rounds), 7),
    }
    sizes = {"wasmforge plugin (release)": wasm.stat().st_size, "Extism plugin": len(extism_wasm)}
    return groups, {"threads": threads, "sizes": sizes, "load": load_before_threads}


def _calibrate_spin(spin: Callable[[int], Any], seconds: float) -> int:
    rounds = 100_000
    while True:
        started = time.perf_counter()
        spin(rounds)
        elapsed = time.perf_counter() - started
        if elapsed > seconds / 4 or rounds > 2**30:
            return min(int(rounds * seconds / max(elapsed, 1e-6)), 2**31 - 1)
        rounds *= 4


# ---- targets --------------------------------------------------------------------------------


@dataclass
class Target:
    text: str
    met: bool
    measured: str
    preview: str
    why: str


def find(groups: list[Group], title_start: str, label_start: str) -> float:
    for group in groups:
        if group.title.startswith(title_start):
            for row in group.rows:
                if row.label.startswith(label_start):
                    return row.median
    raise KeyError((title_start, label_start))


def targets(groups: list[Group], extra: dict[str, Any]) -> list[Target]:
    us = 1e6
    add_public = find(groups, "scalar", "wasmforge public")
    add_fast = find(groups, "scalar", "wasmforge fast")
    add_wasmtime = find(groups, "scalar", "wasmtime-py")
    noop_extism = find(groups, "scalar", "Extism")
    result = [
        Target(
            "add(1, 2) at most 1 µs per call",
            add_public <= 1e-6, f"{add_public * us:.2f} µs", f"fast path {add_fast * us:.2f} µs",
            "the public API adds the argument checks and the plugin's lock to the fast call; "
            "on this shared VM the fast call alone moves between 0.6 and 1.2 µs from run to run",
        ),
        Target(
            "add(1, 2) at least 20x faster than wasmtime-py Func.__call__",
            add_wasmtime / add_public >= 20, f"{add_wasmtime / add_public:.1f}x",
            f"fast path {add_wasmtime / add_fast:.1f}x", "as above",
        ),
        Target(
            "add(1, 2) at least 10x faster than Extism's no-op call",
            noop_extism / add_public >= 10, f"{noop_extism / add_public:.1f}x",
            f"fast path {noop_extism / add_fast:.1f}x", "as above",
        ),
    ]
    for size in ("1 KiB", "1 MiB"):
        need = 5 if size == "1 KiB" else 3
        for kind in ("bytes", "str"):
            public = find(groups, f"{kind} echo, {size}", "wasmforge public")
            fast = find(groups, f"{kind} echo, {size}", "wasmforge fast")
            ext = find(groups, f"{kind} echo, {size}", "Extism")
            result.append(Target(
                f"{kind} echo {size} at least {need}x faster than Extism's echo",
                ext / public >= need, f"{ext / public:.1f}x", f"fast path {ext / fast:.1f}x",
                "the public API adds argument encoding, the checks of the result descriptor and the "
                "lock to the fast path's one call into wasm" if size == "1 KiB" else
                "at 1 MiB the time is copies: one in and one out on the host (for str, also UTF-8 encoding and "
                "decoding); the guest takes the input buffer as its Vec<u8>/String argument without a copy",
            ))
    json_alone = find(groups, "small serde", "JSON encode")
    json_public = find(groups, "small serde", "wasmforge public")
    json_fast = find(groups, "small serde", "wasmforge fast path (runtime/fastcall.py) + JSON")
    json_wasm = find(groups, "small serde", "wasmforge fast path, JSON bytes")
    result.append(Target(
        "serde struct call at most 2 µs above JSON encode + decode alone",
        json_public - json_alone <= 2e-6, f"+{(json_public - json_alone) * us:.1f} µs",
        f"fast path +{(json_fast - json_alone) * us:.1f} µs",
        "most of the excess is the wasm side: one call into wasm and serde_json inside it, "
        f"{json_wasm * us:.1f} µs per call alone; the Python side adds argument checks and the result descriptor",
    ))
    load_public = find(groups, "loading", "wasmforge.load")
    load_disk = find(groups, "loading", "wasmforge.Plugin.from_bytes")
    load_extism = find(groups, "loading", "Extism Plugin(bytes)")
    result.append(Target(
        "loading a cached plugin at least 5x faster than Extism's Plugin(bytes)",
        load_extism / load_public >= 5, f"{load_extism / load_public:.2f}x (remembered in this process)",
        f"from the disk cache {load_extism / load_disk:.2f}x",
        "what is left is wasmtime's own work per plugin: a store, a linker with the runtime imports, "
        "instantiation and the plugin's init call (about 40 µs each here); from disk, the HMAC check of "
        "the compiled code and its deserialization come on top",
    ))
    python = find(groups, "start-up", "python -c pass")
    version = find(groups, "start-up", "wasmforge --version (as the console")
    result.append(Target(
        "wasmforge --version at most 2x the start-up of python -c pass",
        version / python <= 2, f"{version / python:.2f}x", "",
        "", 
    ))
    speedup = extra["threads"]["public API, one Plugin with instances=2"][2]
    fast_speedup = extra["threads"]["fast path, one store per thread"][2]
    shared_speedup = extra["threads"]["public API, one Plugin shared"][2]
    control = extra["threads"]["control: hashlib.sha256 (releases the GIL), no wasm"][2]
    busy = extra["threads"]["fast path, one store per thread"][3]
    result.append(Target(
        "CPU-bound function from 2 threads at least 1.6x as fast as from 1",
        speedup >= 1.6, f"{speedup:.2f}x with one Plugin, instances=2",
        f"fast path, a store per thread {fast_speedup:.2f}x ({busy:.2f} cores busy)",
        f"with one instance the calls take turns ({shared_speedup:.2f}x); with two the GIL is released "
        f"and the calls overlap, as far as free cores allow: this run's machine had load average "
        f"{extra['load']} on {os.cpu_count()} cores, and the no-wasm control (hashlib from two "
        f"threads) reached {control:.2f}x",
    ))
    return result


def targets_17(groups: list[Group], extra: dict[str, Any]) -> list[Target]:
    """Issue 17's targets, each from rows of this one run (ratios, never absolute times)."""
    us = 1e6
    floor = find(groups, "scalar", "ctypes floor")
    add_public = find(groups, "scalar", "wasmforge public API: plugin.add")
    add_fast = find(groups, "scalar", "wasmforge fast path")
    raw = find(groups, "scalar", "plain wasm numbers")
    function = find(groups, "scalar", "plugin.function")
    result = [Target(
        "1. plugin.add(1, 2) at most 4x the ctypes floor",
        add_public / floor <= 4, f"{add_public / floor:.1f}x ({add_public * us:.2f} µs)",
        f"fast path alone {add_fast / floor:.1f}x; call_raw {raw / floor:.1f}x; function('add') {function / floor:.1f}x",
        f"the fast call alone (one Python frame and wasmtime's C call through ctypes with five prebuilt arguments) "
        f"is already {add_fast / floor:.1f}x the floor; the public call adds {(add_public - add_fast) * us:.2f} µs of "
        "argument checks, the solo-path handshake, the instance check and Ctrl-C's thread check (docs/PERFORMANCE.md)",
    )]
    json_alone = find(groups, "small serde", "JSON encode")
    json_public = find(groups, "small serde", "wasmforge public")
    json_wasm = find(groups, "small serde", "wasmforge fast path, JSON bytes")
    glue = find(groups, "small serde", "floor in wasm: calibrate's glue")
    serde = find(groups, "small serde", "floor in wasm: serde_json")
    packed = find(groups, "small serde", "in wasm: a hand-written MessagePack")
    mp_public = find(groups, "small serde", "wasmforge public API, MessagePack wire")
    mp_glue = find(groups, "small serde", "floor in wasm: calibrate_mp's glue")
    best = min(json_public, mp_public)
    result.append(Target(
        "2. serde struct call at most 2 µs above JSON encode + decode alone (either wire)",
        best - json_alone <= 2e-6,
        f"JSON wire +{(json_public - json_alone) * us:.1f} µs, MessagePack wire "
        f"{'+' if mp_public >= json_alone else '-'}{abs(mp_public - json_alone) * us:.1f} µs",
        f"the JSON wire's wasm side {json_wasm * us:.1f} µs, of which calibrate's glue alone {glue * us:.1f} µs "
        f"(serde_json decode + encode {serde * us:.1f} µs); calibrate_mp's glue {mp_glue * us:.1f} µs "
        f"(MessagePack by hand {packed * us:.1f} µs)",
        "#[plugin_fn(wire = \"msgpack\")] (docs/ABI.md) replaces JSON on both sides: Python's msgpack instead of "
        f"json, the pdk's MessagePack instead of serde_json; JSON's own floor in wasm, {glue * us:.1f} µs, "
        "was over the 2 µs allowed before the call and Python's checks",
    ))
    load_public = find(groups, "loading", "wasmforge.load")
    load_disk = find(groups, "loading", "wasmforge.Plugin.from_bytes(data): compiled form")
    load_first = find(groups, "loading", "wasmforge.Plugin.from_bytes(data): from the disk cache, first")
    load_extism = find(groups, "loading", "Extism Plugin(bytes)")
    floor_memory = find(groups, "loading", "wasmtime-py alone: Store")
    floor_disk = find(groups, "loading", "wasmtime-py alone: SHA-256")
    result.append(Target(
        "3. loading: from the disk cache at least 5x, remembered in-process at least 10x faster than Extism's Plugin(bytes)",
        load_extism / load_disk >= 5 and load_extism / load_public >= 10,
        f"disk {load_extism / load_disk:.2f}x, in-process {load_extism / load_public:.2f}x",
        f"disk, first load of the entry in a process (read and HMAC-checked) {load_extism / load_first:.2f}x",
        f"wasmtime-py alone, with nothing of wasmforge's, is {load_extism / floor_memory:.1f}x Extism for a store, an "
        f"instance from a pre-linked module and the init call, and {load_extism / floor_disk:.1f}x with the SHA-256 of "
        f"the bytes and deserialising the entry first: {_budget('in-process', load_extism / 10, floor_memory)}; "
        f"{_budget('disk', load_extism / 5, floor_disk)}; wasmforge adds {format_time(load_public - floor_memory)} "
        f"and {format_time(load_disk - floor_disk)} to them (limits, Ctrl-C, the content check, memory binding, "
        f"the Plugin: docs/PERFORMANCE.md)",
    ))
    for size, need_floor, need_extism in (("1 MiB", 2, 8), ("1 KiB", None, 10)):
        public = find(groups, f"bytes echo, {size}", "wasmforge public API: plugin.echo")
        into = find(groups, f"bytes echo, {size}", "wasmforge public API, a bytearray")
        ext = find(groups, f"bytes echo, {size}", "Extism")
        copy = find(groups, f"bytes echo, {size}", "floor")
        met = ext / public >= need_extism and (need_floor is None or public / copy <= need_floor)
        text = (f"4. bytes echo {size}: within {need_floor}x of the memoryview copy floor and at least {need_extism}x "
                f"faster than Extism" if need_floor else f"4. bytes echo {size} at least {need_extism}x faster than Extism")
        result.append(Target(
            text, met, f"{public / copy:.1f}x the floor, {ext / public:.1f}x Extism",
            f"a bytearray in, out= a buffer: {into / copy:.1f}x the floor, {ext / into:.1f}x Extism",
            "one copy in and one out on the host; in the guest none: the argument is the input buffer itself and "
            "comes back as the result, and the guest's fresh input buffer reuses the memory the last result freed"
            if size == "1 MiB" else
            "what is left at 1 KiB is the fixed cost of a buffer call: the C call, the guest's bookkeeping (free the "
            "last result, allocate the next input buffer) and the Python side's lock, checks and descriptor",
        ))
    speedup = extra["threads"]["public API, one Plugin with instances=2"][2]
    control = extra["threads"]["control: hashlib.sha256 (releases the GIL), no wasm"][2]
    result.append(Target(
        "5. CPU-bound function from 2 threads with instances=2 at least 1.85x of 1 thread",
        speedup >= 1.85, f"{speedup:.2f}x", f"no-wasm control {control:.2f}x",
        f"the two calls run at once (the GIL is released); what is left is the machine: the no-wasm control "
        f"reached {control:.2f}x in the same run",
    ))
    return result


# ---- reporting ------------------------------------------------------------------------------


def _budget(what: str, target: float, floor: float) -> str:
    """How a target time compares with wasmtime-py's own floor for the same work."""
    if target <= floor:
        return f"the {what} target ({format_time(target)}) is below that floor ({format_time(floor)})"
    return f"the {what} target ({format_time(target)}) leaves {format_time(target - floor)} over the floor for wasmforge"


def format_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} µs"


def table_lines(groups: list[Group], markdown: bool) -> list[str]:
    lines = []
    for group in groups:
        reference = next(r for r in group.rows if r.label.startswith(group.reference))
        if markdown:
            lines += [f"### {group.title}", "", f"| implementation | median | ÷ {group.reference} | noise (IQR) |",
                      "|---|---:|---:|---:|"]
        else:
            lines += ["", group.title, "-" * len(group.title)]
        for row in group.rows:
            ratio = row.median / reference.median
            if markdown:
                lines.append(f"| {row.label} | {format_time(row.median)} | {ratio:.2f}x | ±{row.spread * 50:.0f}% |")
            else:
                lines.append(f"  {row.label:<68} {format_time(row.median):>10}  {ratio:7.2f}x")
        if markdown:
            lines.append("")
    return lines


def _load_average() -> str:
    """1, 5 and 15 minute load averages: above the core count, the figures are inflated."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> dict[str, str]:
    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    load = _load_average()

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    import extism
    import wasmforge

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "OS": platform.platform(),
        "load average at the start": load,
        "Python": platform.python_version(),
        "wasmtime-py": version("wasmtime"),
        "extism": f"{version('extism')} (runtime {extism.extism_version()})",
        "wasmforge": f"{wasmforge.__version__} (commit {commit})",
    }


def write_results(path: Path, info: dict[str, str], groups: list[Group], extra: dict[str, Any],
                  goals: list[Target], rounds: int, baseline: Optional[tuple[str, str, list[str]]] = None,
                  goals_17: Optional[list[Target]] = None) -> None:
    lines = [
        "# wasmforge benchmark results",
        "",
        "Written by `python bench/run.py` (do not edit by hand; re-run it). Medians of "
        f"{rounds} interleaved rounds per work item (fewer for the 1 MiB and loading items); "
        "the noise column is half the interquartile range relative to the median.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        *[f"- size of the {key}: {value:,} bytes" for key, value in extra["sizes"].items()],
        "",
        "## Targets (issue 6)",
        "",
        "Measured on the public API (`wasmforge.load`, `plugin.NAME(...)`); the fast path column is the "
        "same work through `wasmforge.runtime.fastcall` directly, which the public API is built on: its floor.",
        "",
        "| target | met? | measured | fast path | why not |",
        "|---|---|---|---|---|",
    ]
    for goal in goals:
        lines.append(f"| {goal.text} | {'yes' if goal.met else '**no**'} | {goal.measured} | {goal.preview} | "
                     f"{'' if goal.met else goal.why} |")
    if goals_17:
        lines += ["", "## Targets (issue 17)", "",
                  "Each a ratio of rows measured in this run (the floors are rows of the tables below).", "",
                  "| target | met? | measured | beside it | why not |", "|---|---|---|---|---|"]
        for goal in goals_17:
            lines.append(f"| {goal.text} | {'yes' if goal.met else '**no**'} | {goal.measured} | {goal.preview} | "
                         f"{'' if goal.met else goal.why} |")
    lines += ["", "## Timings", ""]
    lines += table_lines(groups, markdown=True)
    threads = extra["threads"]
    lines += [
        "### CPU-bound plugin function from two threads",
        "",
        f"`spin({threads['rounds']:,})`: one thread calling it twice vs two threads calling it once each "
        "(medians of 7). Cores busy: the two threads' CPU time over the wall time of the "
        "two-thread run; above 1.0 the calls ran at the same time.",
        "",
        "| setup | one thread, 2 calls | two threads, 1 call each | speedup | cores busy |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, value in threads.items():
        if key != "rounds":
            one, two, speedup, busy = value
            lines.append(f"| {key} | {format_time(one)} | {format_time(two)} | {speedup:.2f}x | {busy:.2f} |")
    if baseline is not None:
        name, load, table = baseline
        lines += [
            "", f"## Against {name}", "",
            f"The public API's call paths beside {name}'s, in one run (`bench/run.py --baseline`, which runs "
            "bench/compare.py): worker processes of the two checkouts alternate, each timing every row (the fastest "
            "of five runs); medians over the rounds. Ratio: this checkout's time over the baseline's (below 1.00: "
            f"faster now). Load average when it started: {load}.", "", *table,
        ]
    lines += ["", "## Notes", "", *NOTES]
    path.write_text("\n".join(lines) + "\n" + _other_sections(path, lines), encoding="utf-8")


def _other_sections(path: Path, ours: list[str]) -> str:
    """The sections of the existing RESULTS.md that other benchmarks write (bench_processes.py's), kept as they are."""
    try:
        old = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    mine = {line for line in ours if line.startswith("## ")} | {"## Notes"}
    kept, keeping = [], False
    for line in old.splitlines():
        if line.startswith("## "):
            keeping = line not in mine and not line.startswith("## Against ")
        if keeping:
            kept.append(line)
    return ("\n" + "\n".join(kept) + "\n") if kept else ""


NOTES = [
    "- The Extism plugin is `bench/extism_echo.wat`, written against Extism's kernel ABI "
    "(`extism:host/env`). Its echo copies the input to the output inside Extism's kernel, "
    "8 bytes per kernel call; a plugin made with an Extism PDK also copies through its own "
    "memory, so real Extism plugins are slower than this one.",
    "- The Extism plugin is a few hundred bytes, the wasmforge plugin (serde + serde_json) "
    "hundreds of times larger (sizes above), so loading compares a tiny module on Extism's side "
    "with a real one on ours; compiling is roughly proportional to code size.",
    "- 'memories that never move' is the fast path on an engine with "
    "`Config.memory_may_move = False`: FastMemory(stable_base=True) then skips the one C call "
    "per wasm call that re-checks the memory's size.",
    "- 'wasmforge fast path (runtime/fastcall.py)' is `bench/subjects.py: FastPlugin`, the buffer-ABI "
    "recipe from docs/PERFORMANCE.md over `FastFunc`/`FastMemory`, with bounds checks on "
    "every read and write: the floor the public API (built on the same FastFunc) is measured against.",
    "- The fast path rows run the same compiled code as the public API's default: an engine with epoch checks "
    "compiled in, for Ctrl-C (docs/PERFORMANCE.md); their stores are armed far ahead. The public API row "
    "'interruptible=False' is the same call without those checks.",
    "- The serde work item's JSON-alone row is the host's share only (json.dumps of the "
    "arguments, json.loads of the result); the wasm side also decodes and encodes with serde_json.",
    "- The machine is a shared VM: absolute numbers drift from run to run by 10-30%; ratios "
    "within one run are steadier.",
]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; does not write RESULTS.md")
    parser.add_argument("--rounds", type=int, help="rounds per work item (default 31, --quick 5)")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "bench" / ".cache",
                        help="where the benchmark's workspace is built (default bench/.cache)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md")
    parser.add_argument("--baseline", metavar="REF|DIR",
                        help="also time the public API's call paths beside this git ref's (or checkout's), interleaved")
    parser.add_argument("--baseline-rounds", type=int, default=21, help="worker pairs for --baseline (default 21)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 31)
    round_seconds = 0.01 if args.quick else 0.03

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        import extism  # noqa: F401
    except ImportError:
        log("error: the benchmark compares against Extism; install it with: pip install -e '.[bench]'")
        return 2
    wasm = subjects.build_wasmforge_plugin(args.cache_dir, log)
    extism_wasm = subjects.extism_plugin_bytes()
    info = machine()
    gc.collect()
    groups, extra = run_groups(wasm, extism_wasm, rounds, round_seconds, log)
    goals = targets(groups, extra)
    goals_17 = targets_17(groups, extra)
    info["load average at the end"] = _load_average()
    print("\n".join(table_lines(groups, markdown=False)))
    print("\nCPU-bound spin() from two threads (one thread x2 calls, two threads x1 call, speedup, cores busy):")
    for key, value in extra["threads"].items():
        if key != "rounds":
            print(f"  {key:<54} {format_time(value[0]):>10} {format_time(value[1]):>10}  {value[2]:.2f}x  {value[3]:.2f}")
    print("\nTargets (issue 6), on the public API today:")
    for goal in goals:
        print(f"  [{'met' if goal.met else 'NOT met'}] {goal.text}: {goal.measured}" + (f"; {goal.preview}" if goal.preview else ""))
    print("\nTargets (issue 17):")
    for goal in goals_17:
        print(f"  [{'met' if goal.met else 'NOT met'}] {goal.text}: {goal.measured}" + (f"; {goal.preview}" if goal.preview else ""))
    baseline = None
    if args.baseline:
        import compare

        checkout = compare.baseline_checkout(args.baseline, args.cache_dir)
        load = _load_average()
        log(f"against {args.baseline} ({checkout}):")
        samples = compare.compare(wasm, checkout, 5 if args.quick else args.baseline_rounds, 0.05, log)
        table = compare.table_lines(samples)
        print("\n".join(table))
        baseline = (args.baseline, load, table)
    if not args.quick:
        write_results(args.results, info, groups, extra, goals, rounds, baseline, goals_17)
        log(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
