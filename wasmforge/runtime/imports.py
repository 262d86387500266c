"""What a plugin imports, and the host side of each import.

Three kinds of imports are provided:
- ``wasmforge.panic``: the guest's panic hook reports the message and file:line;
- ``wasmforge:host.*``: functions the plugin declared with ``#[host_fn]``,
  marshalled per their metadata, implemented by the Python callables passed
  as ``host_functions``;
- ``wasi_snapshot_preview1.*``: WASI, for plugins built for wasm32-wasi, with
  stdout/stderr forwarded to Python (wasi.py).
Anything else must be supplied in ``host_functions`` by "module.name" (or
bare name) and is called with plain wasm numbers.

The plan is worked out once per Plugin (:class:`ImportPlan`). A module whose
only function imports are wasmforge's runtime ones (and WASI) is linked once per
compiled module (:meth:`ImportPlan.prelinked`, a wasmtime ``InstancePre``) and
every instance, of every load of it, is made from that: its host side finds the
instance's :class:`CallState` as the store's data (:func:`state_of`), not in a
closure. Other modules get a fresh Linker per instance, bound to its own state.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import _func as wasmtime_func
from wasmtime import _value as wasmtime_value

from .. import _json
from .._text import describe_value
from ..abi import wasmtypes
from ..abi.codec import check_number_result, decode_input, encode_output, number_from_wasm
from ..abi.signature import HOST_IMPORT_MODULE, Signature, raw_signature
from ..errors import (
    ArgumentError,
    HostFunctionError,
    HostFunctionResultError,
    MemoryAccessError,
    PluginCallError,
    PluginLoadError,
    PluginProtocolError,
)
from .caller import call_with_caller, wants_caller
from .fastcall import guard_host_function
from .wasi import CapturedStream, OutputSink

log = logging.getLogger(__name__)

RUNTIME_MODULE = "wasmforge"
WASI_MODULES = ("wasi_snapshot_preview1", "wasi_unstable")
_SLOT = struct.Struct("<II")
#: The runtime imports' types, one pair per engine: wasmtime ties a FuncType to the first
#: engine it is used with, and aborts the process if it is used with another.
_runtime_types: "weakref.WeakKeyDictionary[wasmtime.Engine, tuple[wasmtime.FuncType, wasmtime.FuncType]]" = (
    weakref.WeakKeyDictionary()
)


def _runtime_import_types(engine: wasmtime.Engine) -> tuple[wasmtime.FuncType, wasmtime.FuncType]:
    types = _runtime_types.get(engine)
    if types is None:
        i32 = wasmtime.ValType.i32()
        types = _runtime_types[engine] = (wasmtime.FuncType([i32, i32], []), wasmtime.FuncType([i32], []))
    return types


#: The linkers pre-linked modules of a shared engine (engines.py) are linked with, with WASI or
#: without. They define only the runtime imports (which find their instance through the store)
#: and WASI (configured per store), so one serves every module of the engine, and a module
#: deserialized afresh (``Plugin.from_bytes`` from the disk cache) costs its own
#: ``instantiate_pre``, not a linker and its definitions. Only shared engines, which live as long
#: as the process: a linker holds its engine, and an engine of one plugin must be freed with it.
_shared_linkers: dict[tuple[wasmtime.Engine, bool], wasmtime.Linker] = {}


def _runtime_linker(engine: wasmtime.Engine, wasi: bool, shared: bool) -> wasmtime.Linker:
    linker = _shared_linkers.get((engine, wasi)) if shared else None
    if linker is None:
        linker = wasmtime.Linker(engine)
        panic_type, out_of_memory_type = _runtime_import_types(engine)
        linker.define_func(RUNTIME_MODULE, "panic", panic_type, guard_host_function(_shared_panic_hook),
                           access_caller=True)
        linker.define_func(RUNTIME_MODULE, "out_of_memory", out_of_memory_type, guard_host_function(_shared_out_of_memory),
                           access_caller=True)
        if wasi:
            linker.define_wasi()
        if shared:
            linker = _shared_linkers.setdefault((engine, wasi), linker)
    return linker


def _forget_linkers_in_child() -> None:
    """A forked child makes engines of its own (engines.py); the parent's linkers would only keep theirs alive."""
    _shared_linkers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_linkers_in_child)

HostFunctionsArg = Union[None, Mapping[str, Callable[..., Any]], Iterable[Callable[..., Any]]]


class HostFunctions(dict):  # type: ignore[type-arg]
    """A registry of host functions, filled with a decorator.

    ``@host.function`` registers a callable under its ``__name__``;
    ``@host.function("name")`` under another name.
    """

    def function(self, target: Union[str, Callable[..., Any]]) -> Any:
        if isinstance(target, str):
            def register(fn: Callable[..., Any]) -> Callable[..., Any]:
                self[target] = fn
                return fn
            return register
        self[target.__name__] = target
        return target


def normalize_host_functions(functions: HostFunctionsArg) -> dict[str, Callable[..., Any]]:
    if functions is None:
        return {}
    if isinstance(functions, Mapping):
        items = dict(functions)
    elif isinstance(functions, (str, bytes)) or not isinstance(functions, Iterable):
        raise ArgumentError(f"host_functions must be a mapping of import names to callables, or a list of "
                            f"functions; got {describe_value(functions)}")
    else:
        items = {getattr(fn, "__name__", repr(fn)): fn for fn in functions}
    for name, fn in items.items():
        if not isinstance(name, str):
            raise ArgumentError(f"host_functions keys are import names (str), got {describe_value(name)}")
        if not callable(fn):
            raise ArgumentError(f"host function {name!r} is {describe_value(fn)}, not a callable")
    return items


@dataclass
class CallState:
    """Per-instance facts a call leaves behind: a panic report, a host function's failure, output."""

    panic_report: Optional[dict[str, Any]] = None
    host_error: Optional[BaseException] = None
    #: The instance's memory 0, for host functions that take a Caller (set once it is known).
    memory: Optional[wasmtime.Memory] = None
    #: Bytes the guest's allocator asked for and could not get.
    out_of_memory: Optional[int] = None
    outputs: list[CapturedStream] = field(default_factory=list)

    def drain_output(self, deadline: Optional[float] = None) -> bool:
        """Delivers each stream's output; False if the deadline passed with output undelivered."""
        in_time = True
        for captured in self.outputs:
            in_time = captured.drain(deadline if in_time else time.monotonic()) and in_time
        return in_time


@dataclass(frozen=True)
class ImportFact:
    """One import of a module, with its types as text: read once per compiled module."""

    module: str
    name: str
    type: Any
    params: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    #: "function", "memory", "table", "global" or "tag".
    kind: str = "function"

    @classmethod
    def all_of(cls, module: wasmtime.Module) -> tuple["ImportFact", ...]:
        facts = []
        for item in module.imports:
            kind = item.type
            if isinstance(kind, wasmtime.FuncType):
                facts.append(cls(item.module, item.name or "", kind, *wasmtypes.func_type(kind)))
            else:
                facts.append(cls(item.module, item.name or "", kind, kind=wasmtypes.extern_kind(kind)))
        return tuple(facts)

    @property
    def key(self) -> str:
        """"module.name", as host_functions= takes it."""
        return f"{self.module}.{self.name}"

    def describe(self) -> str:
        """"env.f(i32) -> (i64)" for a function; "env.memory (a memory: 1 pages ...)" for the rest."""
        if self.kind == "function":
            return f"{self.key}{wasmtypes.show_func_type(self.params, self.results)}"
        return f"{self.key} (a {self.kind}: {wasmtypes.describe_extern(self.type)})"


@dataclass
class _Planned:
    module: str
    name: str
    func_type: wasmtime.FuncType
    signature: Signature
    implementation: Optional[Callable[..., Any]]
    #: The implementation's first parameter is a wasmforge.Caller.
    wants_caller: bool = False


#: Shown at most this many missing imports by name (Emscripten modules import dozens).
_LISTED = 8


@dataclass
class ImportPlan:
    """How each import of a module is satisfied; built once, bound per instance."""

    plugin: str
    functions: list[_Planned] = field(default_factory=list)
    wasi: bool = False
    stdout: OutputSink = None
    stderr: OutputSink = None
    #: Imported memories and tables: wasmforge makes one of the declared type per instance.
    memories: list[ImportFact] = field(default_factory=list)
    tables: list[ImportFact] = field(default_factory=list)
    #: The export that is the module's memory 0 (None: memory 0 is imported, or not exported).
    main_memory: Optional[str] = None
    #: Bytes of captured output a call may deliver per stream.
    max_output: Optional[int] = None

    @classmethod
    def build(
        cls,
        imports: Sequence[ImportFact],
        plugin: str,
        declared: Mapping[str, Signature],
        host_functions: Mapping[str, Callable[..., Any]],
        stdout: OutputSink = None,
        stderr: OutputSink = None,
        main_memory: Optional[str] = None,
        max_output: Optional[int] = None,
    ) -> "ImportPlan":
        plan = cls(plugin=plugin, stdout=stdout, stderr=stderr, main_memory=main_memory, max_output=max_output)
        unknown: list[ImportFact] = []  # functions nobody supplied
        impossible: list[str] = []  # imports no Python value can satisfy, each with the reason
        missing: list[str] = []
        seen: dict[tuple[str, str], ImportFact] = {}
        for item in imports:
            module_name, name, kind = item.module, item.name, item.type
            if module_name in WASI_MODULES:
                plan.wasi = True
                continue
            earlier = seen.setdefault((module_name, name), item)
            if earlier is not item:
                # One definition serves every import of a name (Go's gojs imports some twice), if the types agree.
                if earlier.describe() != item.describe():
                    raise PluginLoadError(f"{plugin} imports {earlier.key} twice with different types "
                                          f"({earlier.describe()} and {item.describe()}); one host function cannot be both")
                continue
            reason = _unprovidable(item)
            if reason:
                impossible.append(f"{item.describe()}, {reason}")
                continue
            if item.kind == "memory":
                plan.memories.append(item)
                continue
            if item.kind == "table":
                plan.tables.append(item)
                continue
            if module_name == RUNTIME_MODULE and name in ("panic", "out_of_memory"):
                continue
            types = (list(item.params), list(item.results))
            if module_name == HOST_IMPORT_MODULE:
                signature = declared.get(name)
                if signature is None:
                    signature = raw_signature(name, *types, kind="import")
                else:
                    _check_declared_import(plugin, signature, item)
                implementation = host_functions.get(name)
                if implementation is None:
                    missing.append(str(signature))
                plan.functions.append(_Planned(module_name, name, kind, signature, implementation,
                                               implementation is not None and wants_caller(implementation)))
                continue
            implementation = host_functions.get(item.key) or host_functions.get(name)
            if implementation is None:
                unknown.append(item)
                continue
            plan.functions.append(_Planned(module_name, name, kind, raw_signature(name, *types, kind="import"),
                                           implementation, wants_caller(implementation)))
        if missing:
            log.warning("%s needs host functions that were not provided (calls that use them will fail): %s",
                        plugin, "; ".join(missing))
        if unknown or impossible:
            raise PluginLoadError(_refusal(plugin, unknown, impossible))
        return plan

    @property
    def prelinkable(self) -> bool:
        """Whether no import is bound to one instance: then every instance can share a pre-linked module.

        Host functions (closures over their instance's state, which they pass to Python callables)
        and imported memories and tables (objects of one store) are; the runtime imports and WASI are not.
        """
        return PRELINK_SUPPORTED and not self.functions and not self.memories and not self.tables

    def prelinked(self, engine: wasmtime.Engine, module: wasmtime.Module, reused: dict[Any, Any],
                  shared_engine: bool = False) -> wasmtime.InstancePre:
        """The module with its imports resolved once, kept in ``reused`` (the compiled module's): only if
        :attr:`prelinkable`. Its stores must be made by :func:`store_for`. ``shared_engine``: the engine
        is one of engines.py's shared ones, which outlive any plugin (so its linker may be kept)."""
        key = ("prelinked", self.wasi)
        pre = reused.get(key)
        if pre is None:
            pre = reused.setdefault(key, _runtime_linker(engine, self.wasi, shared_engine).instantiate_pre(module))
        assert isinstance(pre, wasmtime.InstancePre)
        return pre

    def set_up_store(self, store: wasmtime.Store, state: CallState) -> None:
        """What a pre-linked instance's store needs of the plan: WASI's configuration, output captured into ``state``."""
        if self.wasi:
            store.set_wasi(self._wasi_config(state))

    @property
    def captures_output(self) -> bool:
        """WASI output that is forwarded after each call (not inherited)."""
        return self.wasi and not (self.stdout == "inherit" and self.stderr == "inherit")

    def link(self, engine: wasmtime.Engine, store: wasmtime.Store, state: CallState) -> wasmtime.Linker:
        """A linker with every import defined, bound to one instance's ``state``."""
        linker = wasmtime.Linker(engine)
        panic_type, out_of_memory_type = _runtime_import_types(engine)
        # Guarded: with the GIL released during calls, wasmtime-py's one global slot for a host
        # function's exception could hand it to another thread's call (see _fastcall).
        linker.define_func(RUNTIME_MODULE, "panic", panic_type, guard_host_function(_panic_hook(state)),
                           access_caller=True)
        linker.define_func(RUNTIME_MODULE, "out_of_memory", out_of_memory_type,
                           lambda size: setattr(state, "out_of_memory", size & 0xFFFFFFFF))
        for planned in self.functions:
            linker.define_func(planned.module, planned.name, planned.func_type,
                               guard_host_function(self._host_function(planned, state)), access_caller=True)
        for item in self.memories:
            memory = _provided(self.plugin, item, lambda: wasmtime.Memory(store, item.type))
            state.memory = state.memory or memory  # memory 0: imports come first in the index space
            linker.define(store, item.module, item.name, memory)
        for item in self.tables:
            table = _provided(self.plugin, item, lambda: wasmtime.Table(store, item.type, None))
            linker.define(store, item.module, item.name, table)
        if self.wasi:
            linker.define_wasi()
            store.set_wasi(self._wasi_config(state))
        return linker

    def _wasi_config(self, state: CallState) -> wasmtime.WasiConfig:
        """No arguments, no environment, no files, no sockets: only the clock, randomness and output."""
        config = wasmtime.WasiConfig()
        for stream, sink in (("stdout", self.stdout), ("stderr", self.stderr)):
            if sink == "inherit":
                getattr(config, f"inherit_{stream}")()
            else:
                captured = CapturedStream(stream, sink, self.plugin, self.max_output)
                setattr(config, f"{stream}_file", captured.path)  # a property in wasmtime-py
                state.outputs.append(captured)
        return config

    def _host_function(self, planned: _Planned, state: CallState) -> Callable[..., Any]:
        signature, implementation, plugin = planned.signature, planned.implementation, self.plugin
        names = {"plugin": plugin, "function": signature.name}

        def fail(exc: BaseException, what: str, kind: type[PluginCallError] = HostFunctionError) -> PluginCallError:
            error = kind(f"host function {signature.name} {what}", **names)
            error.__cause__ = exc
            state.host_error = error
            return error

        if implementation is None:
            def missing(caller: wasmtime.Caller, *args: Any) -> Any:
                error = HostFunctionError(
                    f"{plugin} called host function {signature}, which was not provided; "
                    f"pass host_functions={{'{signature.name}': ...}} to wasmforge.load",
                    **names,
                )
                state.host_error = error
                raise error
            return missing

        run = self._runner(planned, implementation, state)

        if signature.abi in ("native", "raw"):
            def bad_argument(param: Any) -> Callable[[Any], BaseException]:
                def invalid(value: Any) -> BaseException:
                    error = PluginProtocolError(
                        f"{plugin} passed {value} as {param} to host function {signature.name}, "
                        f"which a {param.type} cannot hold", **names)
                    state.host_error = error
                    return error
                return invalid

            native = signature.abi == "native"
            convert_args = [number_from_wasm(p.type, bad_argument(p)) if native else None for p in signature.params]

            def numeric(caller: wasmtime.Caller, *args: Any) -> Any:
                values = [c(a) if c is not None else a for c, a in zip(convert_args, args)]
                try:
                    result = run(caller, values)
                except Exception as exc:
                    raise fail(exc, f"raised {type(exc).__name__}: {exc}") from exc
                if not signature.result_wasm:
                    return None  # nothing goes back to wasm, whatever Python returned
                try:
                    return check_number_result(signature, result)
                except ArgumentError as exc:
                    raise fail(exc, str(exc).removeprefix(f"host function {signature.name} "),
                               HostFunctionResultError) from None
            return numeric

        allocator: list[wasmtime.Func] = []  # __wf_alloc, once its type is checked

        def allocate(caller: wasmtime.Caller, length: int) -> int:
            if not allocator:
                alloc = caller.get("__wf_alloc")
                if not isinstance(alloc, wasmtime.Func):
                    raise fail(LookupError("__wf_alloc"), "cannot return a value: the plugin exports no __wf_alloc")
                types = wasmtypes.func_type(alloc.type(caller))
                if types != (("i32",), ("i32",)):
                    raise fail(TypeError("__wf_alloc"), "cannot return a value: the plugin's __wf_alloc is "
                               f"{wasmtypes.show_func_type(*types)}, not (i32) -> (i32)", PluginProtocolError)
                allocator.append(alloc)
            return int(allocator[0](caller, length)) & 0xFFFFFFFF

        def buffered(caller: wasmtime.Caller, ptr: int, length: int, slot: int) -> None:
            try:
                memory = _memory(caller)
                args = decode_input(signature, _read(memory, caller, ptr, length))
            except (ValueError, MemoryAccessError) as exc:
                raise fail(exc, f"received arguments that do not fit {signature}: {exc}") from exc
            try:
                result = run(caller, args)
            except Exception as exc:
                raise fail(exc, f"raised {type(exc).__name__}: {exc}") from exc
            try:
                data = encode_output(signature, result)
            except TypeError as exc:
                raise fail(exc, str(exc).removeprefix(f"host function {signature.name} "),
                           HostFunctionResultError) from None
            address = 0
            try:
                if data:
                    address = allocate(caller, len(data))
                    if not address:
                        raise fail(MemoryError(len(data)),
                                   f"result of {len(data)} bytes does not fit in the plugin's memory")
                    _write(memory, caller, address, data)
                _write(memory, caller, slot & 0xFFFFFFFF, _SLOT.pack(address, len(data)))
            except MemoryAccessError as exc:
                raise fail(exc, f"cannot return its result: {exc}", PluginProtocolError) from exc
        return buffered

    def _runner(self, planned: _Planned, implementation: Callable[..., Any],
                state: CallState) -> Callable[[wasmtime.Caller, Sequence[Any]], Any]:
        """Calls ``implementation`` with the arguments, after a :class:`Caller` if it asked for one."""
        if not planned.wants_caller:
            return lambda caller, args: implementation(*args)
        plugin, main_memory = self.plugin, self.main_memory

        def find_memory(caller: wasmtime.Caller) -> Optional[wasmtime.Memory]:
            if state.memory is not None:
                return state.memory
            found = caller.get(main_memory) if main_memory is not None else None
            return found if isinstance(found, wasmtime.Memory) else None

        return lambda caller, args: call_with_caller(plugin, caller, find_memory, implementation, args)


def _unprovidable(item: ImportFact) -> str:
    """Why no host value can satisfy ``item``, or "" if wasmforge can."""
    if item.kind == "function":
        odd = wasmtypes.not_numbers(item.params, item.results)
        return f"whose {', '.join(odd)} values cannot cross into Python" if odd else ""
    if item.kind == "memory":
        return "a shared memory (threads), which wasmforge does not run" if getattr(item.type, "is_shared", False) else ""
    if item.kind == "table":
        element = wasmtypes.value_type(item.type.element)
        return "" if element in ("funcref", "externref") else f"a table of {element}, which wasmforge cannot make"
    if item.kind == "global":
        return "an imported global, which wasmforge does not provide"
    return f"an imported {item.kind}, which wasmforge does not provide"


def _check_declared_import(plugin: str, signature: Signature, item: ImportFact) -> None:
    """A #[host_fn] import's wasm type must be what its metadata says; a module that lies is refused."""
    if signature.abi == "buffer":
        expected: tuple[tuple[str, ...], tuple[str, ...]] = (("i32", "i32", "i32"), ())
    else:
        expected = (tuple(p.wasm or "?" for p in signature.params), signature.result_wasm)
    if (item.params, item.results) != expected:
        raise PluginLoadError(
            f"host function {signature.name} is described as {signature} ({signature.abi} call, wasm type "
            f"{wasmtypes.show_func_type(*expected)}) but {plugin} imports it as "
            f"{wasmtypes.show_func_type(item.params, item.results)}; the module's wasmforge metadata does not match its code"
        )


def _refusal(plugin: str, unknown: Sequence[ImportFact], impossible: Sequence[str]) -> str:
    """The load error for imports nothing was given for, and imports nothing can be given for."""
    parts = []
    if unknown:
        listed = ", ".join(item.describe() for item in unknown[:_LISTED])
        more = f" and {len(unknown) - _LISTED} more" if len(unknown) > _LISTED else ""
        keys = ", ".join(f"'{item.key}': callable" for item in unknown[:2]) + (", ..." if len(unknown) > 2 else "")
        parts.append(f"{plugin} imports {listed}{more}, which wasmforge does not provide; "
                     f"supply {'it' if len(unknown) == 1 else 'them'} as host_functions={{{keys}}}")
    if impossible:
        parts.append(f"{plugin if not parts else 'it also'} imports {'; '.join(impossible)}: rebuild the module without "
                     f"{'it' if len(impossible) == 1 else 'them'}")
    return "; ".join(parts)


def _provided(plugin: str, item: ImportFact, make: Callable[[], Any]) -> Any:
    """A memory or table made for an import; PluginLoadError if the store's limits refuse it."""
    try:
        return make()
    except wasmtime.WasmtimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "refused"
        raise PluginLoadError(f"{plugin} imports {item.describe()}, which wasmforge could not make: {reason}") from error


def _panic_hook(state: CallState) -> Callable[..., None]:
    def on_panic(caller: wasmtime.Caller, ptr: int, length: int) -> None:
        try:
            raw = _read(_memory(caller), caller, ptr, length)
            report = _json.loads(raw.decode("utf-8", errors="replace"))
            state.panic_report = report if isinstance(report, dict) else {"message": str(report)}
        except (ValueError, MemoryAccessError):
            state.panic_report = {"message": "(the plugin's panic report could not be read)"}
    return on_panic


#: Whether :func:`call_setup` can call through wasmtime's C API inside wasmtime-py's own trap handling.
_RAW_SETUP_CALL = hasattr(wasmtime_func, "enter_wasm") and hasattr(ffi, "wasmtime_func_call") \
    and hasattr(ffi, "wasmtime_val_t") and hasattr(wasmtime.Func, "_func")
#: No arguments, no results: the (read-only) arrays a () -> () call passes.
_NO_VALUES = (ffi.wasmtime_val_t * 0)() if _RAW_SETUP_CALL else None


def call_setup(store: wasmtime.Store, func: wasmtime.Func) -> None:
    """Calls ``func``, an export of type () -> () (the caller checked it), as ``Func.__call__`` would.

    Its trap, error or host function's exception is raised by wasmtime-py's own ``enter_wasm``,
    as in ``Func.__call__``, which first builds the function's type and argument arrays on every
    call (about 5-8 µs: a load calls the panic-hook setup once). Where wasmtime-py lacks these
    internals, ``Func.__call__`` itself.
    """
    if not _RAW_SETUP_CALL:
        func(store)
        return
    with wasmtime_func.enter_wasm(store) as trap:
        error = ffi.wasmtime_func_call(store._context(), ctypes.byref(func._func), _NO_VALUES, 0, _NO_VALUES, 0, trap)
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)


#: Whether this wasmtime-py lets a host function find its store's data (:func:`state_of` reads it through
#: wasmtime-py internals: the C API's context data and the slab ``Store(data=)`` keeps it in). Where a
#: version lacks them, every instance gets a linker of its own, as host-function plugins do: slower, not wrong.
PRELINK_SUPPORTED = (hasattr(ffi, "wasmtime_context_get_data") and hasattr(wasmtime_value, "SLAB")
                     and hasattr(wasmtime.Caller, "_context") and hasattr(wasmtime.Linker, "instantiate_pre"))


def store_for(engine: wasmtime.Engine, state: CallState) -> wasmtime.Store:
    """A store whose data is ``state``: how the host side of a pre-linked module finds its instance's state."""
    if not PRELINK_SUPPORTED:  # nothing will look for it (and Store(data=) may be missing too)
        return wasmtime.Store(engine)
    return wasmtime.Store(engine, data=state)  # a dataclass instance: always true, so always kept


def state_of(caller: wasmtime.Caller) -> CallState:
    """The calling instance's state, from its store's data (:func:`store_for`).

    wasmtime-py's ``Store.data()`` reads it from a Store; a Caller has the same context, so the
    same two steps read it from the Caller.
    """
    index: Any = ffi.wasmtime_context_get_data(caller._context())  # an int: the restype is c_void_p
    state = wasmtime_value.SLAB.get(index - 1)  # Store(data=) keeps it at SLAB.allocate(data) + 1
    assert isinstance(state, CallState), "a pre-linked module instantiated in a store without a CallState"
    return state


def _shared_panic_hook(caller: wasmtime.Caller, ptr: int, length: int) -> None:
    _panic_hook(state_of(caller))(caller, ptr, length)


def _shared_out_of_memory(caller: wasmtime.Caller, size: int) -> None:
    state_of(caller).out_of_memory = size & 0xFFFFFFFF


def _memory(caller: wasmtime.Caller) -> wasmtime.Memory:
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        raise MemoryAccessError("the plugin exports no memory")
    return memory


def _read(memory: wasmtime.Memory, store: Any, offset: int, length: int) -> bytes:
    offset &= 0xFFFFFFFF
    length &= 0xFFFFFFFF
    size = memory.data_len(store)
    if offset + length > size:
        raise MemoryAccessError(f"{length} bytes at {offset} run past the end of memory ({size} bytes)")
    return bytes(memory.read(store, offset, offset + length)) if length else b""


def _write(memory: wasmtime.Memory, store: Any, offset: int, data: bytes) -> None:
    """Writes ``data`` at the unsigned guest address ``offset``, nothing unless all of it fits."""
    size = memory.data_len(store)
    if not 0 <= offset <= size - len(data):
        raise MemoryAccessError(f"{len(data)} bytes at {offset} run past the end of memory ({size} bytes)")
    memory.write(store, data, offset)
