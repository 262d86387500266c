"""The fast call path gives the same answers, traps and errors as wasmtime-py's
plain ``Func.__call__``, on small inline WAT modules (and, at the end, on the
real template plugin's buffer ABI). Timings are never asserted here."""

from __future__ import annotations

import math
import struct
import threading
from typing import Any, Callable, Iterator, Optional

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from wasmforge.runtime.fastcall import (
    FastFunc,
    FastMemory,
    HostFunctionFailed,
    MemoryBoundsError,
    UnsupportedSignature,
    guard_host_function,
)

WAT = r"""
(module
  (import "env" "plus_one" (func $plus_one (param i32) (result i32)))
  (import "env" "report" (func $report (param i32 i32)))
  (import "env" "fail" (func $fail (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "exploded on 3")

  (func (export "id_i32") (param i32) (result i32) local.get 0)
  (func (export "id_i64") (param i64) (result i64) local.get 0)
  (func (export "id_f32") (param f32) (result f32) local.get 0)
  (func (export "id_f64") (param f64) (result f64) local.get 0)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "mixed") (param i32 i64 f32 f64) (result f64)
    local.get 0 f64.convert_i32_s
    local.get 1 f64.convert_i64_s f64.add
    local.get 2 f64.promote_f32 f64.add
    local.get 3 f64.add)
  (func (export "swap3") (param i64 f32 f64) (result f64 i64 f32)
    local.get 2 local.get 0 local.get 1)
  (func (export "nothing"))
  (func (export "unreachable") unreachable)
  (func (export "load") (param i32) (result i32) local.get 0 i32.load)
  (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store)
  (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "via_host") (param i32) (result i32) local.get 0 call $plus_one)
  (func (export "panics") i32.const 16 i32.const 13 call $report unreachable)
  (func (export "host_fails") (param i32) local.get 0 call $fail)
  (func (export "count") (param i64) (result i64) (local $sum i64)
    (block $done (loop $next
      local.get 0 i64.eqz br_if $done
      local.get $sum local.get 0 i64.add local.set $sum
      local.get 0 i64.const 1 i64.sub local.set 0
      br $next))
    local.get $sum)
)
"""

SPIN_WAT = r"""
(module
  (import "env" "entered" (func $entered))
  (func (export "spin") call $entered (loop br 0))
  (func (export "count") (param i64) (result i64) (local $sum i64)
    (block $done (loop $next
      local.get 0 i64.eqz br_if $done
      local.get $sum local.get 0 i64.add local.set $sum
      local.get 0 i64.const 1 i64.sub local.set 0
      br $next))
    local.get $sum)
)
"""


class HostFailure(Exception):
    """What the `fail` import raises, carrying the argument it got."""


class Module:
    """One instance of WAT with the imports above; ``slow(name)`` and ``fast(name)`` call the same export."""

    def __init__(self, engine: Optional[wasmtime.Engine] = None, *, guarded: bool = False,
                 plus_one: Optional[Callable[[int], int]] = None) -> None:
        self.engine = engine or wasmtime.Engine()
        self.store = wasmtime.Store(self.engine)
        self.reports: list[bytes] = []
        linker = wasmtime.Linker(self.engine)
        i32 = wasmtime.ValType.i32()

        def report(caller: wasmtime.Caller, ptr: int, length: int) -> None:
            memory = caller.get("memory")
            assert isinstance(memory, wasmtime.Memory)
            self.reports.append(bytes(memory.read(caller, ptr, ptr + length)))

        def fail(value: int) -> None:
            raise HostFailure(value)

        wrap = guard_host_function if guarded else (lambda f: f)
        linker.define_func("env", "plus_one", wasmtime.FuncType([i32], [i32]), wrap(plus_one or (lambda x: x + 1)))
        linker.define_func("env", "report", wasmtime.FuncType([i32, i32], []), wrap(report), access_caller=True)
        linker.define_func("env", "fail", wasmtime.FuncType([i32], []), wrap(fail))
        self.instance = linker.instantiate(self.store, wasmtime.Module(self.engine, bytes(wasmtime.wat2wasm(WAT))))
        memory = self.instance.exports(self.store)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        self.memory = memory
        self.fast_memory = FastMemory(self.store, memory)

    def func(self, name: str) -> wasmtime.Func:
        func = self.instance.exports(self.store)[name]
        assert isinstance(func, wasmtime.Func)
        return func

    def slow(self, name: str) -> Callable[..., Any]:
        func = self.func(name)
        return lambda *args: func(self.store, *args)

    def fast(self, name: str) -> FastFunc:
        return FastFunc(self.store, self.func(name), memory=self.fast_memory, name=name)


@pytest.fixture
def module() -> Module:
    return Module()


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", value) or (exception type, the details that must agree between paths)."""
    try:
        return ("ok", call())
    except wasmtime.Trap as trap:
        frames = [(f.func_index, f.module_offset) for f in trap.frames]
        return ("Trap", (trap.trap_code, trap.message, frames))
    except wasmtime.WasmtimeError as error:
        return ("WasmtimeError", str(error))
    except Exception as error:  # noqa: BLE001 - comparing whatever each path raises
        return (type(error).__name__, error.args)


def same_number(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


# ---- values -------------------------------------------------------------------------------

EDGES: dict[str, list[Any]] = {
    "i32": [0, 1, -1, 2**31 - 1, -(2**31), 2**31, 2**32 - 1, 2**32 + 5, -(2**40) + 3, True],
    "i64": [0, -1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**70 + 9],
    "f32": [0.0, -0.0, 0.1, 1.5, 3.4e38, 1e39, -1e-46, math.inf, -math.inf, math.nan],
    "f64": [0.0, -0.0, 0.1, 1e308, 5e-324, math.inf, -math.inf, math.nan],
}


@pytest.mark.parametrize("kind, value", [(kind, value) for kind, values in EDGES.items() for value in values])
def test_each_number_type_round_trips_as_on_the_plain_path(module: Module, kind: str, value: Any) -> None:
    fast = module.fast(f"id_{kind}")
    expected = module.slow(f"id_{kind}")(value)
    assert same_number(fast(value), expected)
    assert same_number(fast.call(value), expected)


def test_mixed_parameters_and_multiple_results(module: Module) -> None:
    assert module.fast("mixed")(1, -2, 0.5, 0.25) == module.slow("mixed")(1, -2, 0.5, 0.25) == -0.25
    fast, slow = module.fast("swap3"), module.slow("swap3")
    assert fast(7, 1.5, 2.25) == slow(7, 1.5, 2.25) == [2.25, 7, 1.5]
    assert module.fast("nothing")() is None and module.slow("nothing")() is None
    assert repr(fast) == "<FastFunc swap3(i64, f32, f64) -> (f64, i64, f32)>"


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**31), 2**32 - 1), st.integers(-(2**31), 2**32 - 1))
def test_add_agrees_with_the_plain_path(a: int, b: int) -> None:
    module = _shared_module()
    assert module.fast("add")(a, b) == module.slow("add")(a, b)


_SHARED: list[Module] = []


def _shared_module() -> Module:
    if not _SHARED:
        _SHARED.append(Module())
    return _SHARED[0]


@pytest.mark.parametrize(
    "name, args",
    [
        ("id_i32", ("1",)),
        ("id_i32", (1.5,)),
        ("id_i64", (None,)),
        ("id_f64", (1,)),  # the plain path takes only float for a float parameter
        ("id_f32", ("x",)),
        ("add", (1,)),
        ("add", (1, 2, 3)),
    ],
)
def test_bad_arguments_raise_what_the_plain_path_raises(module: Module, name: str, args: tuple[Any, ...]) -> None:
    fast_kind, _ = outcome(lambda: module.fast(name)(*args))
    slow_kind, slow_details = outcome(lambda: module.slow(name)(*args))
    assert fast_kind == slow_kind and fast_kind != "ok"
    if fast_kind == "WasmtimeError":
        assert outcome(lambda: module.fast(name)(*args))[1] == slow_details


def test_unsupported_and_mismatched_signatures_are_refused() -> None:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    wat = '(module (func (export "ref") (param externref) (result externref) local.get 0))'
    instance = wasmtime.Instance(store, wasmtime.Module(engine, bytes(wasmtime.wat2wasm(wat))), [])
    func = instance.exports(store)["ref"]
    assert isinstance(func, wasmtime.Func)
    with pytest.raises(UnsupportedSignature, match="values cannot go through the fast path"):
        FastFunc(store, func)
    module = Module()
    with pytest.raises(UnsupportedSignature, match=r"add takes \(i32, i32\), not \(i64, i32\)"):
        FastFunc(module.store, module.func("add"), ["i64", "i32"], ["i32"], name="add")
    with pytest.raises(UnsupportedSignature, match=r"returns \(i32\), not \(\)"):
        FastFunc(module.store, module.func("add"), ["i32", "i32"], [], name="add")
    typed = FastFunc(module.store, module.func("add"), [wasmtime.ValType.i32()] * 2, ["i32"])
    assert typed(2, 3) == 5
    raw_handle = FastFunc(module.store, module.func("add")._func)
    assert raw_handle(2, 4) == 6


# ---- traps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, args, code",
    [
        ("unreachable", (), wasmtime.TrapCode.UNREACHABLE),
        ("load", (65535,), wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS),
        ("store", (-1, 5), wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS),
        ("div", (1, 0), wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO),
        ("div", (-(2**31), -1), wasmtime.TrapCode.INTEGER_OVERFLOW),
    ],
)
def test_traps_are_the_same_trap_objects(module: Module, name: str, args: tuple[Any, ...], code: wasmtime.TrapCode) -> None:
    fast = outcome(lambda: module.fast(name)(*args))
    slow = outcome(lambda: module.slow(name)(*args))
    assert fast == slow
    assert fast[0] == "Trap" and fast[1][0] == code
    # The store is still usable after a trap, on both paths.
    assert module.fast("add")(1, 2) == 3


def test_a_trap_raises_wasmtime_trap_itself(module: Module) -> None:
    with pytest.raises(wasmtime.Trap) as caught:
        module.fast("unreachable")()
    assert caught.value.trap_code == wasmtime.TrapCode.UNREACHABLE
    assert "unreachable" in caught.value.message


# ---- host functions -----------------------------------------------------------------------


def test_host_function_called_from_wasm(module: Module) -> None:
    assert module.fast("via_host")(41) == module.slow("via_host")(41) == 42


def test_panic_report_through_a_host_function_then_the_trap(module: Module) -> None:
    """The wasmforge.panic pattern: the host reads the message from memory, then wasm traps."""
    fast = outcome(module.fast("panics"))
    slow = outcome(module.slow("panics"))
    assert module.reports == [b"exploded on 3", b"exploded on 3"]
    assert fast == slow and fast[1][0] == wasmtime.TrapCode.UNREACHABLE


def test_host_function_exception_reaches_the_caller_as_itself(module: Module) -> None:
    for call in (module.fast("host_fails"), module.slow("host_fails")):
        with pytest.raises(HostFailure) as caught:
            call(7)
        assert caught.value.args == (7,)
    # Nothing left behind: the next failure is a plain trap, the next call works.
    assert outcome(module.fast("unreachable"))[0] == "Trap"
    assert module.fast("via_host")(1) == 2


def test_host_function_exception_of_an_unguarded_import_keeps_the_plain_semantics() -> None:
    def broken(value: int) -> int:
        raise ZeroDivisionError("host bug")

    module = Module(plus_one=broken)
    for call in (module.fast("via_host"), module.slow("via_host")):
        with pytest.raises(ZeroDivisionError, match="host bug"):
            call(1)


def test_guarded_host_function_exception_on_both_paths() -> None:
    module = Module(guarded=True)
    with pytest.raises(HostFailure) as caught:
        module.fast("host_fails")(9)
    assert caught.value.args == (9,)
    with pytest.raises(HostFunctionFailed) as wrapped:
        module.slow("host_fails")(9)
    assert isinstance(wrapped.value.original, HostFailure)
    assert module.fast("via_host")(1) == 2
    assert outcome(module.fast("unreachable"))[0] == "Trap"


def test_guarded_host_exceptions_stay_on_their_own_thread() -> None:
    """wasmtime-py keeps a host exception in one global; guarded ones travel per thread."""
    engine = wasmtime.Engine()
    errors: list[BaseException] = []

    def worker(tag: int) -> None:
        module = Module(engine, guarded=True)
        fails, traps = module.fast("host_fails"), module.fast("unreachable")
        try:
            for _ in range(1000):
                try:
                    fails(tag)
                except HostFailure as failure:
                    assert failure.args == (tag,), f"thread {tag} got {failure.args}"
                else:
                    raise AssertionError("no exception")
                # Unguarded, this trap sometimes raised the other thread's HostFailure.
                with pytest.raises(wasmtime.Trap):
                    traps()
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(tag,)) for tag in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


def test_reentrant_call_from_a_host_function() -> None:
    holder: list[FastFunc] = []

    def plus_one(value: int) -> int:
        # A host function calling back into the same store, through the same bound function.
        return holder[0](value - 1) + 2 if value > 0 else 1

    module = Module(plus_one=plus_one)
    holder.append(module.fast("via_host"))
    slow = module.slow("via_host")
    assert holder[0](5) == slow(5) == 11


def test_closed_store_raises_instead_of_crashing(module: Module) -> None:
    add = module.fast("add")
    module.store.close()
    with pytest.raises(ValueError, match="closed"):
        add(1, 2)
    with pytest.raises(ValueError, match="closed"):
        module.fast_memory.sync()


# ---- epoch interruption and threads -------------------------------------------------------


class Spinner:
    """SPIN_WAT in its own store on ``engine``; ``entered`` is set once wasm is looping."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self.store = wasmtime.Store(engine)
        self.entered = threading.Event()
        linker = wasmtime.Linker(engine)
        linker.define_func("env", "entered", wasmtime.FuncType([], []), self.entered.set)
        self.instance = linker.instantiate(self.store, wasmtime.Module(engine, bytes(wasmtime.wat2wasm(SPIN_WAT))))
        self.store.set_epoch_deadline(1)

    def func(self, name: str) -> wasmtime.Func:
        func = self.instance.exports(self.store)[name]
        assert isinstance(func, wasmtime.Func)
        return func


@pytest.fixture
def epoch_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.epoch_interruption = True
    return wasmtime.Engine(config)


def interrupt_when_entered(engine: wasmtime.Engine, entered: threading.Event) -> threading.Thread:
    def tick() -> None:
        if entered.wait(30):
            engine.increment_epoch()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(60)
def test_epoch_interruption_from_another_thread_stops_a_looping_call(epoch_engine: wasmtime.Engine) -> None:
    spinner = Spinner(epoch_engine)
    results = []
    for call in (FastFunc(spinner.store, spinner.func("spin")), lambda: spinner.func("spin")(spinner.store)):
        spinner.entered.clear()
        spinner.store.set_epoch_deadline(1)
        ticker = interrupt_when_entered(epoch_engine, spinner.entered)
        results.append(outcome(call))
        ticker.join(30)
    assert results[0] == results[1]
    assert results[0][0] == "Trap" and results[0][1][0] == wasmtime.TrapCode.INTERRUPT
    spinner.store.set_epoch_deadline(1000)
    assert FastFunc(spinner.store, spinner.func("count"))(10) == 55


@pytest.mark.timeout(60)
def test_the_gil_is_released_while_wasm_runs(epoch_engine: wasmtime.Engine) -> None:
    """While one thread loops in wasm, another thread enters wasm in its own store and
    finishes: impossible if the looping call held the GIL. Proven by order, not by time."""
    looping, other = Spinner(epoch_engine), Spinner(epoch_engine)
    spin = FastFunc(looping.store, looping.func("spin"))
    count = FastFunc(other.store, other.func("count"))
    other.store.set_epoch_deadline(1_000_000)
    outcomes: list[tuple[str, Any]] = []
    thread = threading.Thread(target=lambda: outcomes.append(outcome(spin)))
    thread.start()
    assert looping.entered.wait(30)
    assert count(1000) == 500500  # runs while `spin` is still inside wasm
    assert thread.is_alive() and outcomes == []
    epoch_engine.increment_epoch()
    thread.join(30)
    assert outcomes[0][0] == "Trap" and outcomes[0][1][0] == wasmtime.TrapCode.INTERRUPT


@pytest.mark.timeout(60)
def test_two_threads_run_cpu_bound_wasm_at_the_same_time(epoch_engine: wasmtime.Engine) -> None:
    """Both threads are inside a CPU-bound wasm loop at once (each in its own store),
    which needs the GIL released by both calls; the epoch then stops both."""
    spinners = [Spinner(epoch_engine), Spinner(epoch_engine)]
    outcomes: dict[int, tuple[str, Any]] = {}
    threads = [
        threading.Thread(target=lambda i=i, s=s: outcomes.__setitem__(i, outcome(FastFunc(s.store, s.func("spin")))))
        for i, s in enumerate(spinners)
    ]
    for thread in threads:
        thread.start()
    assert all(spinner.entered.wait(30) for spinner in spinners)
    assert all(thread.is_alive() for thread in threads) and outcomes == {}
    epoch_engine.increment_epoch()
    for thread in threads:
        thread.join(30)
    assert [outcomes[i][1][0] for i in (0, 1)] == [wasmtime.TrapCode.INTERRUPT] * 2


def test_two_threads_with_their_own_stores_compute_and_trap_correctly() -> None:
    engine = wasmtime.Engine()
    results: dict[int, list[Any]] = {}

    def worker(tag: int) -> None:
        module = Module(engine)
        count, load = module.fast("count"), module.fast("load")
        results[tag] = [count(n) for n in range(tag * 1000, tag * 1000 + 200)]
        # Traps on a thread other than the main one (SIGSEGV for out-of-bounds) come back alike.
        results[tag].append(outcome(lambda: load(70000))[1][0])

    threads = [threading.Thread(target=worker, args=(tag,)) for tag in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for tag in (1, 2):
        expected = [n * (n + 1) // 2 for n in range(tag * 1000, tag * 1000 + 200)]
        assert results[tag] == [*expected, wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS]


# ---- memory -------------------------------------------------------------------------------


def test_memory_reads_and_writes_like_memory_read_write(module: Module) -> None:
    memory = module.fast_memory
    memory.write(100, b"hello")
    assert memory.read(100, 5) == b"hello" == bytes(module.memory.read(module.store, 100, 105))
    module.memory.write(module.store, b"world", 200)
    assert memory.read(200, 5) == b"world"
    assert memory.read(16, 13) == b"exploded on 3"
    assert memory.unpack(struct.Struct("<II"), 100) == struct.unpack("<II", b"hello\0\0\0")
    assert memory.read(0, 0) == b""
    memory.write(400, "héllo".encode())
    assert memory.read_text(400, 6) == "héllo" and memory.read_text(0, 0) == ""
    with pytest.raises(UnicodeDecodeError):
        memory.read_text(402, 2)  # starts in the middle of "é"
    module.fast("store")(300, 0x01020304)
    assert memory.read(300, 4) == b"\x04\x03\x02\x01"


@pytest.mark.parametrize(
    "action",
    [
        lambda m: m.read(65535, 2),
        lambda m: m.read(-1, 1),
        lambda m: m.read(0, -1),
        lambda m: m.read_text(65535, 2),
        lambda m: m.write(65534, b"abc"),
        lambda m: m.write(-3, b"abc"),
        lambda m: m.unpack(struct.Struct("<III"), 65530),
    ],
)
def test_memory_bounds_are_checked(module: Module, action: Callable[[FastMemory], Any]) -> None:
    before = module.fast_memory.read(65530, 6)
    with pytest.raises(MemoryBoundsError, match=r"outside the memory \(65536 bytes\)"):
        action(module.fast_memory)
    assert module.fast_memory.read(65530, 6) == before
    assert isinstance(MemoryBoundsError("x"), IndexError)


def test_memory_growth_inside_a_call_then_access(module: Module) -> None:
    memory = module.fast_memory
    assert memory.size == 65536
    assert module.fast("grow")(3) == 1
    assert memory.stale
    memory.write(4 * 65536 - 4, b"\x2a\0\0\0")  # in the new pages: re-taken after the call
    assert memory.size == 4 * 65536
    assert module.fast("load")(4 * 65536 - 4) == 42
    # Growth from Python, outside any FastFunc call: sync() re-takes the view.
    module.memory.grow(module.store, 1)
    view = memory.sync()
    assert len(view) == memory.size == 5 * 65536
    memory.write(5 * 65536 - 1, b"!")
    assert bytes(module.memory.read(module.store, 5 * 65536 - 1, 5 * 65536)) == b"!"


def test_stable_base_memory_grows_lazily() -> None:
    config = wasmtime.Config()
    config.memory_may_move = False
    module = Module(wasmtime.Engine(config))
    memory = FastMemory(module.store, module.memory, stable_base=True)
    grow = FastFunc(module.store, module.func("grow"), memory=memory)
    assert grow(2) == 1
    assert not memory.stale and memory.size == 65536  # no C call after the call...
    memory.write(3 * 65536 - 2, b"ok")  # ...the access past the old end re-takes the view
    assert memory.size == 3 * 65536
    assert module.slow("load")(3 * 65536 - 4) == int.from_bytes(b"\0\0ok", "little")


# ---- the real plugin's buffer ABI ----------------------------------------------------------


@pytest.fixture
def template_instance(demo: Any) -> Iterator[tuple[wasmtime.Store, wasmtime.Instance, list[str]]]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    panics: list[str] = []
    linker = wasmtime.Linker(engine)

    def panic(caller: wasmtime.Caller, ptr: int, length: int) -> None:
        memory = caller.get("memory")
        assert isinstance(memory, wasmtime.Memory)
        panics.append(bytes(memory.read(caller, ptr, ptr + length)).decode())

    linker.define_func("wasmforge", "panic", wasmtime.FuncType([wasmtime.ValType.i32()] * 2, []), panic,
                       access_caller=True)
    linker.define_func("wasmforge", "out_of_memory", wasmtime.FuncType([wasmtime.ValType.i32()], []), lambda size: None)
    instance = linker.instantiate(store, wasmtime.Module.from_file(engine, str(demo.wasm)))
    yield store, instance, panics


@pytest.mark.cargo
def test_buffer_abi_of_the_template_plugin_through_the_fast_path(template_instance: Any, demo_plugin: Any) -> None:
    store, instance, _ = template_instance

    def export(name: str) -> wasmtime.Func:
        item = instance.exports(store)[name]
        assert isinstance(item, wasmtime.Func)
        return item

    raw_memory = instance.exports(store)["memory"]
    assert isinstance(raw_memory, wasmtime.Memory)
    memory = FastMemory(store, raw_memory)
    FastFunc(store, export("__wf_init"), [], [], memory=memory)()
    alloc = FastFunc(store, export("__wf_alloc"), ["i32"], ["i32"], memory=memory).call
    descriptor = struct.Struct("<III")

    def call(name: str, payload: bytes) -> tuple[int, bytes]:
        function = FastFunc(store, export(name), ["i32", "i32"], ["i32"], memory=memory).call
        pointer = alloc(len(payload))
        assert pointer != 0
        memory.write(pointer, payload)
        status, out_ptr, out_len = memory.unpack(descriptor, function(pointer, len(payload)) & 0xFFFFFFFF)
        return status, memory.read(out_ptr, out_len)

    assert call("greet", b"wasm") == (0, b"Hello, wasm!") and demo_plugin.greet("wasm") == "Hello, wasm!"
    word = "supercalifragilisticexpialidocious".encode()
    assert call("length", word) == (0, b"34") and demo_plugin.length(word.decode()) == 34
    big = b"x" * (3 << 20)  # larger than the initial memory: the plugin grows it inside alloc
    status, data = call("length", big)
    assert (status, data) == (0, str(len(big)).encode())
    status, data = call("length", b"\xff")
    assert status == 2 and b"UTF-8" in data
    assert FastFunc(store, export("add"))(40, 2) == demo_plugin.add(40, 2) == 42


def test_lookup_export_finds_one_export_by_name(module: Module) -> None:
    from wasmforge.runtime.fastcall import lookup_export

    add = lookup_export(module.store, module.instance, "add")
    assert isinstance(add, wasmtime.Func)
    assert FastFunc(module.store, add)(2, 3) == 5
    assert isinstance(lookup_export(module.store, module.instance, "memory"), wasmtime.Memory)
    assert lookup_export(module.store, module.instance, "nope") is None
    assert lookup_export(module.store, module.instance, "héllo") is None


def test_handles_from_another_store_are_refused_not_fatal(module: Module) -> None:
    """wasmtime aborts the process on a handle used with the wrong store; binding checks first."""
    other = wasmtime.Store(module.engine)
    with pytest.raises(ValueError, match="add belongs to another store"):
        FastFunc(other, module.func("add"), name="add")
    with pytest.raises(ValueError, match="memory belongs to another store"):
        FastMemory(other, module.memory)
    with pytest.raises(TypeError, match="expected a wasmtime.Store"):
        FastFunc(module.instance, module.func("add"))  # type: ignore[arg-type]
    assert FastFunc(module.store, module.func("add"))(1, 1) == 2
