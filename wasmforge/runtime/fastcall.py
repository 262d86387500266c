"""Fast calls into wasm: wasmtime's unchecked C call through ctypes, set up once.

wasmtime-py's ``Func.__call__`` re-reads the function type and builds ``Val``
objects on every call (about 24 µs). :class:`FastFunc` checks the signature
once, builds the ``wasmtime_val_raw_t`` buffer once, and generates a small
Python function per signature that only stores the arguments, calls
``wasmtime_func_call_unchecked`` and reads the results (under 1 µs).
:class:`FastMemory` reads and writes linear memory through a memoryview.

What stays as it was on the plain path:

- Failures come back as the very objects ``Func.__call__`` raises: a
  :class:`wasmtime.Trap` (trap code, message, frames) for a wasm trap,
  including epoch interruption (``TrapCode.INTERRUPT``); the host function's
  own Python exception when a host function raised (wasmtime 50 reports that
  call as a :class:`wasmtime.WasmtimeError`, which is raised when there is no
  Python exception to raise).
- The library is loaded with :class:`ctypes.CDLL`, so the GIL is released for
  the whole call: other threads run, an epoch ticker thread can interrupt the
  call, and host functions (ctypes callbacks) take the GIL back while they run.

What the caller must guarantee (the Plugin does, with its lock):

- One thread at a time per store. wasmtime stores are not thread-safe, and
  with the GIL released nothing else serialises two calls into one store.
- Numbers only: i32, i64, f32 and f64 (no GC references, so nothing in the
  argument buffer needs rooting). Anything else raises
  :class:`UnsupportedSignature`; use ``Func.__call__`` for those.
- Host functions that may raise are wrapped with :func:`guard_host_function`:
  wasmtime-py parks a host function's exception in one process-wide global,
  and with the GIL released another thread's failing call can take it.
"""

from __future__ import annotations

import ctypes
import functools
import struct
import threading
import weakref
from typing import Any, Callable, Optional, Sequence, Union

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import _func as wasmtime_func
from wasmtime._extern import wrap_extern

from ..abi.wasmtypes import func_type, value_type

__all__ = [
    "FAST_CALL_FILE",
    "FastFunc",
    "FastMemory",
    "HostFunctionFailed",
    "MemoryBoundsError",
    "UnsupportedSignature",
    "guard_host_function",
    "inline_call",
    "lookup_export",
    "note_store_of",
]

#: Our own handle on wasmtime's library: CDLL (not PyDLL) releases the GIL around calls.
_lib = ctypes.CDLL(str(ffi.filename))

_call_unchecked = _lib.wasmtime_func_call_unchecked
# No argtypes (the default): every argument is passed as a prebuilt ctypes object,
# which is the cheapest conversion ctypes has. restype c_void_p gives None or an int.
_call_unchecked.restype = ctypes.c_void_p

# Also called with prebuilt arguments only (see _by_value).
_memory_data = _lib.wasmtime_memory_data
_memory_data.restype = ctypes.c_void_p
_memory_data_size = _lib.wasmtime_memory_data_size
_memory_data_size.restype = ctypes.c_size_t

_RAW_SIZE = ctypes.sizeof(ffi.wasmtime_val_raw_t)  # 16: every slot fits a v128
#: wasm type -> (ctypes element type, elements per raw slot, Python type the plain path accepts)
_KINDS: dict[str, tuple[Any, int, type]] = {
    "i32": (ctypes.c_int32, _RAW_SIZE // 4, int),
    "i64": (ctypes.c_int64, _RAW_SIZE // 8, int),
    "f32": (ctypes.c_float, _RAW_SIZE // 4, float),
    "f64": (ctypes.c_double, _RAW_SIZE // 8, float),
}

WasmType = Union[str, wasmtime.ValType]
#: The file name of every generated call function: a frame with it is a thread inside wasm (see _interrupt).
FAST_CALL_FILE = "<wasmforge fast call>"


class UnsupportedSignature(TypeError):
    """The function's types are not plain numbers (or do not match): use ``Func.__call__``."""


class MemoryBoundsError(IndexError):
    """A read or write outside the memory's current size."""


def lookup_export(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> Optional[Any]:
    """One export by name, or None, without wrapping every export.

    ``instance.exports(store)`` wraps all of them (about 8 µs each); a plugin
    needs a handful, and loading time counts.
    """
    encoded = name.encode("utf-8")
    item = ffi.wasmtime_extern_t()
    found = ffi.wasmtime_instance_export_get(
        store._context(), ctypes.byref(instance._instance), encoded, len(encoded), ctypes.byref(item)
    )
    return wrap_extern(item) if found else None


# ---- host functions: exceptions per thread -----------------------------------------------

_pending = threading.local()


class HostFunctionFailed(Exception):
    """Raised in place of a guarded host function's exception, which travels per thread.

    wasmtime-py keeps a host function's exception in ONE module global until the
    call that trapped picks it up; with the GIL released during calls, another
    thread's trap can pick it up first. :func:`guard_host_function` keeps it in a
    thread-local instead, and FastFunc re-raises it on the thread it belongs to.
    Seen only when a guarded host function fails under plain ``Func.__call__``;
    ``original`` is the real exception.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"host function raised {type(original).__name__}: {original}")
        self.original = original


def guard_host_function(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a host function for ``Linker.define_func`` so its exceptions are kept per thread."""

    @functools.wraps(function)
    def guarded(*args: Any) -> Any:
        try:
            return function(*args)
        except BaseException as error:
            _pending.error = error
            raise HostFunctionFailed(error) from None

    return guarded


def _raise_failure(error_address: Optional[int], trap_slot: ctypes.c_void_p) -> None:
    """Raises what ``Func.__call__`` would raise for a failed call; always raises."""
    trap_address = trap_slot.value
    trap_slot.value = None
    failure: BaseException
    if error_address:
        failure = wasmtime.WasmtimeError._from_ptr(ctypes.cast(error_address, ctypes.POINTER(ffi.wasmtime_error_t)))
    else:
        failure = wasmtime.Trap._from_ptr(ctypes.cast(trap_address or 0, ctypes.POINTER(ffi.wasm_trap_t)))
    guarded = getattr(_pending, "error", None)
    if guarded is not None:
        _pending.error = None
    last = wasmtime_func.LAST_EXCEPTION
    if isinstance(last, HostFunctionFailed):
        # A marker: the real exception went to its own thread's slot. Never raise it here.
        wasmtime_func.LAST_EXCEPTION = None
        last = None
    # A host function's failure always ends the call with an error (not a wasm trap).
    if guarded is not None and error_address:
        raise guarded
    if last is not None:
        wasmtime_func.maybe_raise_last_exn()
    raise failure


# ---- functions ----------------------------------------------------------------------------


_store_ids: "weakref.WeakKeyDictionary[wasmtime.Store, int]" = weakref.WeakKeyDictionary()


def note_store_of(store: wasmtime.Store, item: Any) -> None:
    """Records ``store``'s id from an extern just taken out of it (say, by :func:`lookup_export`),
    so the first same-store check needs no probe global."""
    inner = getattr(item, "_func", None) or getattr(getattr(item, "_memory", None), "_anon_1", None)
    store_id = getattr(inner, "store_id", None)
    if store_id is not None and store not in _store_ids:
        _store_ids[store] = int(store_id)


def _check_same_store(store: wasmtime.Store, owner_id: int, what: str) -> None:
    """Raises if the handle belongs to another store.

    wasmtime panics on a handle used with the wrong store, and a panic in the C
    API aborts the whole process (plain ``Func.__call__`` included). wasmtime-py
    does not expose a store's id, so it is read once per store from a tiny
    global made in it (a few bytes the store frees with itself).
    """
    if not isinstance(store, wasmtime.Store):
        raise TypeError(f"expected a wasmtime.Store, got {type(store).__name__}")
    store_id = _store_ids.get(store)
    if store_id is None:
        probe = wasmtime.Global(store, wasmtime.GlobalType(wasmtime.ValType.i32(), False), 0)
        store_id = int(probe._global.store_id)
        _store_ids[store] = store_id
    if owner_id != store_id:
        raise ValueError(f"{what} belongs to another store")


def _type_name(kind: WasmType) -> str:
    # Never str(ValType): for v128 and GC references wasmtime-py's str() aborts the process.
    name = kind if isinstance(kind, str) else value_type(kind)
    if name not in _KINDS:
        raise UnsupportedSignature(f"{name} values cannot go through the fast path (numbers only)")
    return name


class FastFunc:
    """One wasm function in one store, ready to call fast.

    ``FastFunc(store, func)`` (a ``wasmtime.Func`` or its raw ``wasmtime_func_t``)
    reads the types from ``func``; passing ``params``
    and ``results`` (``"i32"``... or ValTypes) checks them against the real type
    once. ``call`` is the generated function (positional arguments, no ``*args``):
    keep it, not the FastFunc, where every nanosecond counts. Results follow
    ``Func.__call__``: None, one value, or a list.

    With ``memory``, each call marks that FastMemory stale (the call may have
    grown or moved the memory), so its next access re-takes the view.
    """

    def __init__(
        self,
        store: wasmtime.Store,
        func: Union[wasmtime.Func, "ffi.wasmtime_func_t"],
        params: Optional[Sequence[WasmType]] = None,
        results: Optional[Sequence[WasmType]] = None,
        *,
        memory: Optional["FastMemory"] = None,
        name: str = "function",
    ) -> None:
        if isinstance(func, ffi.wasmtime_func_t):
            func = wasmtime.Func._from_raw(func)  # the export's raw handle
        if not isinstance(func, wasmtime.Func):
            raise TypeError(f"expected a wasmtime.Func, got {type(func).__name__}")
        _check_same_store(store, func._func.store_id, name)
        params_of, results_of = func_type(func.type(store))
        actual_params, actual_results = list(params_of), list(results_of)
        for kind in actual_params + actual_results:
            _type_name(kind)
        if params is not None and [_type_name(t) for t in params] != actual_params:
            raise UnsupportedSignature(f"{name} takes ({', '.join(actual_params)}), not ({', '.join(map(str, params))})")
        if results is not None and [_type_name(t) for t in results] != actual_results:
            raise UnsupportedSignature(f"{name} returns ({', '.join(actual_results)}), not ({', '.join(map(str, results))})")
        self.store = store
        self.name = name
        self.params = tuple(actual_params)
        self.results = tuple(actual_results)
        # Our own copy of the handle: {store id, index}. It is not a GC root and
        # needs none; it stays valid as long as the store does, and we hold the store.
        self._func = ffi.wasmtime_func_t()
        ctypes.pointer(self._func)[0] = func._func
        self.call: Callable[..., Any] = self._generate(memory)

    def __call__(self, *values: Any) -> Any:
        """Calls with wasm values; wrong counts raise what ``Func.__call__`` raises."""
        if len(values) != len(self.params):
            word = "many" if len(values) > len(self.params) else "few"
            raise wasmtime.WasmtimeError(
                f"too {word} parameters provided: given {len(values)}, expected {len(self.params)}"
            )
        return self.call(*values)

    def __repr__(self) -> str:
        return f"<FastFunc {self.name}({', '.join(self.params)}) -> ({', '.join(self.results)})>"

    def _generate(self, memory: Optional["FastMemory"]) -> Callable[..., Any]:
        slots = max(len(self.params), len(self.results), 1)
        buffer = (ffi.wasmtime_val_raw_t * slots)()
        views = {kind: (ctype * (per_slot * slots)).from_buffer(buffer) for kind, (ctype, per_slot, _) in _KINDS.items()}
        trap_slot = ctypes.c_void_p()
        context = self.store._context()
        if not hasattr(self.store, "_Managed__ptr"):
            raise UnsupportedSignature("this wasmtime-py has no Store._Managed__ptr; the fast path needs it")
        namespace: dict[str, Any] = {
            "_call": _call_unchecked,
            "_context": _by_value(ctypes.cast(context, ctypes.c_void_p).value or 0),
            "_func": ctypes.byref(self._func),
            "_buffer": ctypes.byref(buffer),
            "_length": _by_value(slots),
            "_trap": trap_slot,
            "_trap_ref": ctypes.byref(trap_slot),
            "_store": self.store,
            "_fail": _raise_failure,
            "_abandon": _abandon_trap,
            "_closed": _store_closed,
            "_wrong_type": _wrong_type,
            "_memory": memory if memory is not None and not memory.stable_base else None,
            "_keep": (buffer, views),
            **{f"_{kind}": view for kind, view in views.items()},
        }
        #: What the generated call reads, by name: a caller that generates its own function
        #: around :func:`inline_call`'s lines gives it these as globals.
        self.parts: dict[str, Any] = {"wasm_" + name.lstrip("_"): value for name, value in namespace.items()}
        exec(_call_code(self.params, self.results, namespace["_memory"] is not None), namespace)  # noqa: S102
        call = namespace["call"]
        call.__name__ = call.__qualname__ = f"fast_{self.name}"
        return call  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _call_code(params: tuple[str, ...], results: tuple[str, ...], marks_memory: bool) -> Any:
    """The compiled code of a call function for one signature: compiled once, run per binding.

    Compiling is most of the cost of binding a function; every instance of a
    plugin binds the same signatures again.
    """
    args = [f"a{i}" for i in range(len(params))]
    lines = [f"def call({', '.join(args)}):"]
    lines.append("    if _store._Managed__ptr is None: _closed()")
    for index, (arg, kind) in enumerate(zip(args, params)):
        per_slot, accepted = _KINDS[kind][1], _KINDS[kind][2]
        # The plain path takes only float for f32/f64, where ctypes would take an int too.
        # For i32/i64 ctypes itself raises TypeError for a non-int, and wraps as the plain path does.
        if accepted is float:
            lines.append(f"    if type({arg}) is not float: _wrong_type({arg}, '{kind}', {index})")
        lines.append(f"    _{kind}[{index * per_slot}] = {arg}")
    # KeyboardInterrupt can be raised the moment the C call returns (the SIGINT handler runs
    # there): then a trap it left behind must not be taken for the next call's.
    lines.append("    try:")
    lines.append("        error = _call(_context, _func, _buffer, _length, _trap_ref)")
    lines.append("    except BaseException:")
    lines.append("        _abandon(_trap)")
    if marks_memory:
        lines.append("        _memory.stale = True")
    lines.append("        raise")
    if marks_memory:
        lines.append("    _memory.stale = True")
    lines.append("    if error or _trap.value: _fail(error, _trap)")
    reads = [f"_{kind}[{index * _KINDS[kind][1]}]" for index, kind in enumerate(results)]
    if not reads:
        lines.append("    return None")
    elif len(reads) == 1:
        lines.append(f"    return {reads[0]}")
    else:
        lines.append(f"    return [{', '.join(reads)}]")
    return compile("\n".join(lines), FAST_CALL_FILE, "exec")


def inline_call(params: Sequence[str], results: Sequence[str], args: Sequence[str], result: str) -> list[str]:
    """The body of a FastFunc's call, to inline into a caller's own generated function.

    The lines (indent them as needed) read the names of :attr:`FastFunc.parts` (``wasm_call``,
    ``wasm_context``...) as globals, the arguments from the variables ``args`` (already of the
    right Python type: ints for i32/i64, floats for f32/f64), and leave the result (one or None)
    in the variable ``result``. The local ``calling`` holds the store while the C call runs
    (Ctrl-C looks for it: compile the code with the file name :data:`FAST_CALL_FILE`). The
    buffer view and trap slot are read into locals first, so a nested call that re-binds the
    globals (a host function calling the plugin on a fresh instance) cannot change what this
    call reads back.

    Unlike :attr:`FastFunc.call` these lines do not check that the store is open: only for a
    caller that owns the store and never closes it while it binds it (runtime/instance.py's
    LiveInstance). Only for a FastFunc whose memory never moves (``parts["wasm_memory"] is
    None``) and at most one result.
    """
    if len(results) > 1:
        raise UnsupportedSignature("inline_call takes at most one result")
    kinds = sorted(set(params) | set(results))
    lines = ["trap = wasm_trap"]
    lines += [f"view_{kind} = wasm_{kind}" for kind in kinds]
    for index, (arg, kind) in enumerate(zip(args, params)):
        if _KINDS[kind][2] is float:
            lines.append(f"if type({arg}) is not float: wasm_wrong_type({arg}, '{kind}', {index})")
        lines.append(f"view_{kind}[{index * _KINDS[kind][1]}] = {arg}")
    lines += [
        "calling = wasm_store",
        "try:",
        "    error = wasm_call(wasm_context, wasm_func, wasm_buffer, wasm_length, wasm_trap_ref)",
        "except BaseException:",
        "    calling = None",
        "    wasm_abandon(trap)",
        "    raise",
        "calling = None",
        "if error or trap.value: wasm_fail(error, trap)",
        f"{result} = view_{results[0]}[0]" if results else f"{result} = None",
    ]
    return lines


def _abandon_trap(trap_slot: ctypes.c_void_p) -> None:
    """Frees the trap a call left in ``trap_slot``, if any, when no one will raise it."""
    address = trap_slot.value
    trap_slot.value = None
    if address:
        ffi.wasm_trap_delete(ctypes.cast(address, ctypes.POINTER(ffi.wasm_trap_t)))


def _by_value(number: int) -> Any:
    """A prebuilt ctypes argument that passes ``number`` in a pointer-sized register.

    ctypes converts a c_void_p or c_size_t argument into a fresh argument object
    on every call; a ``byref`` object is passed as is, and ``byref`` of an object
    "at" address N passes N. Nothing is ever read at N. This saves about 0.1 µs
    per call; it relies on pointers and size_t travelling alike, as they do on
    every 64-bit ABI wasmtime-py supports (x86_64 and aarch64).
    """
    if number <= 0:
        raise ValueError("a prebuilt argument must be a positive number")
    return ctypes.byref(ctypes.c_char.from_address(number))


def _store_closed() -> None:
    raise ValueError("the store is closed")


def _wrong_type(value: Any, kind: str, index: int) -> None:
    # Same type as Func.__call__ raises; a float for an int parameter is refused there too.
    if isinstance(value, float) and kind in ("f32", "f64"):
        return
    raise TypeError(f"don't know how to convert {value!r} to {kind} (argument {index + 1})")


# ---- memory -------------------------------------------------------------------------------


class FastMemory:
    """Bounds-checked access to a linear memory through a memoryview.

    A call into wasm may grow the memory, and growing may move it, which leaves
    an old view pointing at freed pages. So the view is re-taken (one C call for
    the size, a second only if it changed) before the first access after a call:
    FastFunc marks the memory ``stale`` when built with ``memory=``; after
    growing the memory from Python, call :meth:`sync`.

    ``stable_base=True`` is for engines built with ``Config.memory_may_move =
    False``: the memory then never moves, an old view stays valid for the
    bytes it covers, and the view is re-taken only when an access falls past
    its end (no C call on the common path).
    """

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory, *, stable_base: bool = False) -> None:
        if not isinstance(memory, wasmtime.Memory):
            raise TypeError(f"expected a wasmtime.Memory, got {type(memory).__name__}")
        _check_same_store(store, memory._memory._anon_1.store_id, "memory")
        self.store = store
        self.stable_base = stable_base
        self._memory = ffi.wasmtime_memory_t()
        ctypes.pointer(self._memory)[0] = memory._memory
        self._context = _by_value(ctypes.cast(store._context(), ctypes.c_void_p).value or 0)
        self._memory_ref = ctypes.byref(self._memory)
        self.size = 0
        self.view = memoryview(b"")
        self.stale = True
        self.sync()

    def sync(self) -> memoryview:
        """Re-takes the view if the memory grew; returns it. Valid until the next call into wasm."""
        if self.store._Managed__ptr is None:  # type: ignore[attr-defined]
            _store_closed()
        size = _memory_data_size(self._context, self._memory_ref)
        # A memory only moves when it grows, and growing always changes the size.
        if size != self.size:
            base = _memory_data(self._context, self._memory_ref) if size else None
            self.view = memoryview((ctypes.c_ubyte * size).from_address(base)).cast("B") if base else memoryview(b"")
            self.size = size
        self.stale = False
        return self.view

    def _check(self, offset: int, length: int, action: str) -> memoryview:
        if self.stale:
            self.sync()
        if offset < 0 or length < 0 or offset + length > self.size:
            self.sync()  # it may have grown (stable_base skips the per-call sync)
            if offset < 0 or length < 0 or offset + length > self.size:
                raise MemoryBoundsError(
                    f"{action} of {length} bytes at {offset} is outside the memory ({self.size} bytes)"
                )
        return self.view

    def read(self, offset: int, length: int) -> bytes:
        """A copy of ``length`` bytes at ``offset``; MemoryBoundsError past the end."""
        view = self._check(offset, length, "read")
        return view[offset : offset + length].tobytes()

    def read_text(self, offset: int, length: int) -> str:
        """UTF-8 text decoded straight from memory (no intermediate bytes); UnicodeDecodeError if invalid."""
        view = self._check(offset, length, "read")
        return str(view[offset : offset + length], "utf-8")

    def read_into(self, offset: int, length: int, target: memoryview) -> None:
        """Copies ``length`` bytes at ``offset`` into the start of the byte view ``target`` (no bytes object
        made); MemoryBoundsError past the end of memory. ``target`` must hold ``length`` bytes."""
        view = self._check(offset, length, "read")
        target[:length] = view[offset : offset + length]

    def write(self, offset: int, data: Union[bytes, bytearray, memoryview]) -> None:
        """Copies ``data`` to ``offset``; MemoryBoundsError past the end, nothing written."""
        length = len(data)
        view = self._check(offset, length, "write")
        view[offset : offset + length] = data

    def unpack(self, layout: struct.Struct, offset: int) -> tuple[Any, ...]:
        """``layout.unpack_from`` at ``offset``, bounds-checked (e.g. a result descriptor)."""
        view = self._check(offset, layout.size, "read")
        return layout.unpack_from(view, offset)

    def __repr__(self) -> str:
        return f"<FastMemory {self.size} bytes{' (stale)' if self.stale else ''}>"
