"""What the benchmark runs: the plugins, built or compiled once, and each way to call them.

- ``build_wasmforge_plugin``: `wasmforge new` + the bench's functions + `wasmforge build
  --release`, through the library API, cached between runs.
- ``FastPlugin``: the same plugin driven directly through ``wasmforge.runtime.fastcall``
  (a buffer call in one trip, through the guest's input buffer), with nothing on top: the floor that the public API (host.py, on the same FastFunc) adds
  its argument checks, lock and instance replacement to.
- ``RawWasmtime``: the same plugin through plain wasmtime-py ``Func.__call__`` and
  ``Memory.read``/``write``, with no checks: what a hand-written host costs.
- ``extism_plugin_bytes``: the Extism plugin, from WAT against Extism's kernel ABI.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any, Callable, Optional

import wasmtime

from wasmforge.runtime.fastcall import FastFunc, FastMemory, guard_host_function, lookup_export

BENCH = Path(__file__).resolve().parent
ADDITIONS = BENCH / "plugin_additions.rs"
EXTISM_WAT = BENCH / "extism_echo.wat"
WORKSPACE_NAME = "wfbench"
_DESCRIPTOR = struct.Struct("<III")
#: With the guest's input buffer (docs/ABI.md): [status, out_ptr, out_len, in_ptr, in_cap].
_WIDE_DESCRIPTOR = struct.Struct("<IIIII")


def build_wasmforge_plugin(cache: Path, log: Callable[[str], None]) -> Path:
    """The release .wasm of a fresh template workspace plus bench/plugin_additions.rs.

    The workspace lives in ``cache``; it is re-made when the template or the
    additions change (their hash is the directory name), and cargo rebuilds
    only what changed.
    """
    from wasmforge.workspace.build import build
    from wasmforge.workspace.settings import load_settings
    from wasmforge.workspace.scaffold import new_workspace, templates_root

    digest = hashlib.sha256(ADDITIONS.read_bytes())
    for path in sorted(templates_root().rglob("*")):
        if path.is_file():
            digest.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    root = cache / f"workspace-{digest.hexdigest()[:12]}" / WORKSPACE_NAME
    if not (root / "wasmforge.toml").exists():
        log(f"creating the benchmark workspace in {root}")
        new_workspace(WORKSPACE_NAME, root)
        lib = root / "crates" / f"{WORKSPACE_NAME}-plugin" / "src" / "lib.rs"
        lib.write_text(lib.read_text(encoding="utf-8") + ADDITIONS.read_text(encoding="utf-8"), encoding="utf-8")
    log("building it with `wasmforge build --release` (the first time takes a minute)")
    result = build(load_settings(root, overrides={"profile": "release"}))
    (artifact,) = result.artifacts
    return artifact.path


def extism_plugin_bytes() -> bytes:
    return bytes(wasmtime.wat2wasm(EXTISM_WAT.read_text(encoding="utf-8")))


def _panic_host_function() -> Callable[..., None]:
    def panic(caller: wasmtime.Caller, ptr: int, length: int) -> None:
        pass  # the bench plugin never panics; the import must exist all the same

    return panic


def _instantiate(engine: wasmtime.Engine, module: wasmtime.Module, guarded: bool) -> tuple[wasmtime.Store, wasmtime.Instance]:
    store = wasmtime.Store(engine)
    # The default engine compiles epoch checks in (for Ctrl-C, as Plugin's does): a store starts
    # with a deadline of 0, so without this the first check traps. Far ahead: no tick ever reaches it.
    store.set_epoch_deadline(1 << 62)
    linker = wasmtime.Linker(engine)
    panic = _panic_host_function()
    linker.define_func(
        "wasmforge", "panic", wasmtime.FuncType([wasmtime.ValType.i32()] * 2, []),
        guard_host_function(panic) if guarded else panic, access_caller=True,
    )
    # The template's allocator reports a failed allocation here before Rust aborts.
    linker.define_func("wasmforge", "out_of_memory", wasmtime.FuncType([wasmtime.ValType.i32()], []), lambda size: None)
    return store, linker.instantiate(store, module)


class ProtocolError(Exception):
    pass


class FastPlugin:
    """The plugin through ``wasmforge.runtime.fastcall``: the call path the Plugin uses.

    Functions are bound once (FastFunc per export, one FastMemory); a buffer call
    is alloc, write, call, read the descriptor, read the result, all bounds-checked.
    """

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module, *, stable_base: bool = False) -> None:
        self.store, self.instance = _instantiate(engine, module, guarded=True)
        memory = lookup_export(self.store, self.instance, "memory")
        assert isinstance(memory, wasmtime.Memory)
        # stable_base only for an engine with Config.memory_may_move = False (see FastMemory).
        self.memory = FastMemory(self.store, memory, stable_base=stable_base)
        self._bind("__wf_init", [], [])()
        self._alloc = self._bind("__wf_alloc", ["i32"], ["i32"])
        self._input = self._bind("__wf_input", ["i32"], ["i32"])
        #: Where the guest's input buffer is and how big, as the last descriptor said.
        self._buffer = [0, 0]
        self.add = self._bind("add", ["i32", "i32"], ["i32"])
        self.spin = self._bind("spin", ["i32"], ["i32"])
        self.serde_floor = self._bind("serde_floor", ["i32", "i32"], ["i32"])
        self.set_serde_sample = self.buffer_function("set_serde_sample")
        self.echo = self.buffer_function("echo")
        self.echo_str = self.buffer_function("echo_str", text=True)
        self.calibrate = self.buffer_function("calibrate")

    def _bind(self, name: str, params: list[str], results: list[str]) -> Callable[..., Any]:
        func = lookup_export(self.store, self.instance, name)
        assert isinstance(func, wasmtime.Func), name
        return FastFunc(self.store, func, params, results, memory=self.memory, name=name).call

    def buffer_function(self, name: str, text: bool = False) -> Callable[[Any], Any]:
        """bytes -> bytes; with ``text``, str -> str (decoded straight from memory)."""
        call = self._bind(name, ["i32", "i32"], ["i32"])
        grow, memory, descriptor, buffer = self._input, self.memory, _WIDE_DESCRIPTOR, self._buffer
        read = memory.read_text if text else memory.read

        def buffer_call(argument: Any) -> Any:
            """One trip: the arguments go into the guest's input buffer (grown only when too small), then the call."""
            payload = argument.encode("utf-8") if text else argument
            length = len(payload)
            pointer = 0
            if length:
                if length <= buffer[1]:
                    pointer = buffer[0]
                else:
                    pointer = grow(length) & 0xFFFFFFFF
                    if pointer == 0:
                        raise MemoryError(f"{name}: the plugin could not allocate {length} bytes")
                memory.write(pointer, payload)
            status, out_ptr, out_len, buffer[0], buffer[1] = memory.unpack(descriptor, call(pointer, length) & 0xFFFFFFFF)
            if status != 0:
                raise ProtocolError(memory.read(out_ptr, out_len).decode("utf-8", "replace"))
            return read(out_ptr, out_len)

        return buffer_call


class RawWasmtime:
    """The plugin through plain wasmtime-py: ``Func.__call__`` and ``Memory.read``/``write``."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module) -> None:
        self.store, instance = _instantiate(engine, module, guarded=False)
        exports: Any = instance.exports(self.store)
        self.memory: Any = exports["memory"]
        exports["__wf_init"](self.store)
        self.add_func: Any = exports["add"]
        self._alloc: Any = exports["__wf_alloc"]
        self._funcs = exports

    def add(self, a: int, b: int) -> Any:
        return self.add_func(self.store, a, b)

    def buffer_call(self, name: str, payload: bytes) -> bytes:
        store, memory = self.store, self.memory
        pointer = self._alloc(store, len(payload)) if payload else 0
        if payload:
            memory.write(store, payload, pointer)
        address = self._funcs[name](store, pointer, len(payload))
        status, out_ptr, out_len = _DESCRIPTOR.unpack(memory.read(store, address, address + _DESCRIPTOR.size))
        return bytes(memory.read(store, out_ptr, out_ptr + out_len))


def fixed_memory_engine() -> wasmtime.Engine:
    """An engine whose memories never move, so FastMemory can skip the per-call size check."""
    config = wasmtime.Config()
    config.memory_may_move = False
    return wasmtime.Engine(config)


def reading() -> dict[str, Any]:
    """The small record of the serde work item."""
    return {"sensor": "t-101", "value": 21.5, "unit": "C", "tags": ["north", "roof"], "ok": True}


def json_encode_arguments(*args: Any) -> bytes:
    """What wasmforge's host sends for JSON arguments (abi.encode_arguments' format)."""
    return json.dumps(list(args), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def check_same_answers(public: Any, fast: FastPlugin, raw: RawWasmtime, extism: Optional[Any]) -> None:
    """Every implementation computes the same thing before anything is timed."""
    assert public.add(1, 2) == fast.add(1, 2) == raw.add(1, 2) == 3
    for data in (b"", b"x", bytes(range(256)) * 4, b"\xfe" * (1 << 20)):
        assert public.echo(data) == fast.echo(data) == data
        if data:
            assert raw.buffer_call("echo", data) == data
        if extism is not None:
            assert extism.call("echo", data) == data
    text = "héllo wörld " * 100
    assert public.echo_str(text) == fast.echo_str(text) == text
    expected = dict(reading(), value=21.5 * 1.5 + 0.25)
    assert public.calibrate(reading()) == json.loads(fast.calibrate(json_encode_arguments(reading()))) == expected
    assert public.spin(1000) == fast.spin(1000) & 0xFFFFFFFF
