"""One live instance of a plugin: a store, its instance and its memory.

A trap throws the whole thing away; the holder of the plugin's instances
(instances.py) makes a new one for the next call. The store gets the plugin's
limits before any wasm runs, because a store with epochs or fuel enabled
starts with a deadline and a tank of zero.

Calls go through the fast path (fastcall.py): each export is bound once per
instance to a generated function that makes wasmtime's unchecked C call with
the GIL released, and memory is read and written through a memoryview.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import wasmtime

from .._text import first_line
from ..abi.wasmtypes import func_type, show_func_type
from ..errors import MemoryAccessError, PluginLoadError, PluginProtocolError
from ..limits import DEFAULT_TABLE_ELEMENTS, Limits
from . import interrupt
from .compiled import SETUP_EXPORTS, SETUP_TYPES
from .engines import TICKER
from .fastcall import FastFunc, FastMemory, MemoryBoundsError, UnsupportedSignature, lookup_export, note_store_of
from .imports import CallState, call_setup, store_for
from .loaded import LoadedPlugin
from .wasi import OUTPUT_MONITOR


class LiveInstance:
    """A store + instance, its exports bound for fast calls, and what calls leave behind."""

    def __init__(self, plugin: LoadedPlugin) -> None:
        limits = plugin.limits
        self.plugin_name = plugin.name
        self.plugin_main_memory = plugin.imports.main_memory
        self.state = CallState()
        self.store = store_for(plugin.engine, self.state)
        self.store.set_limits(
            memory_size=limits.memory if limits.memory is not None else -1,
            table_elements=DEFAULT_TABLE_ELEMENTS,
        )
        #: How the store's epoch deadline was last set for the calling thread (see interrupt.py).
        self.armed: object = None
        #: The count of epoch moves the deadline was last set at (see :meth:`arm`).
        self.armed_at = -1
        if limits.epoch_checks:
            # Ctrl-C passes any deadline: the whole time limit (and the epoch in progress), or one epoch.
            interrupt.register(self.store, plugin.engine, limits.deadline_ticks + 1 if limits.uses_epochs else 1)
        self.arm(limits)
        #: Exports bound for fast calls, by name (see :meth:`bound`); the lean call path reads it directly.
        self.calls: dict[str, Callable[..., Any]] = {}
        self._fast: dict[str, FastFunc] = {}
        #: Set after a trap: the instance's state is unknown and it must not serve again.
        self.discarded = False
        #: The guest's input buffer as the last buffer call's descriptor said (docs/ABI.md, "Buffer calls"):
        #: arguments up to ``in_cap`` bytes are written at ``in_ptr``. 0 while a call runs, and for guests without one.
        self.in_ptr = 0
        self.in_cap = 0
        plan = plugin.imports
        # Linked once per compiled module when no import is bound to one instance (imports.py).
        linker: Union[wasmtime.Linker, wasmtime.InstancePre]
        if plan.prelinkable:
            linker = plan.prelinked(plugin.engine, plugin.module, plugin.compiled.reused, not limits.uses_epochs)
            plan.set_up_store(self.store, self.state)
        else:
            linker = plan.link(plugin.engine, self.store, self.state)
        # A start function or constructor is wasm like any other: the time limit holds there too.
        timed = limits.timeout is not None
        if timed:
            TICKER.enter(plugin.engine, limits.epoch_period)
        OUTPUT_MONITOR.enter(self.state.outputs)  # what it prints while starting is bounded too
        try:
            self._start(plugin, linker, limits)
        finally:
            OUTPUT_MONITOR.leave(self.state.outputs)
            if timed:
                TICKER.leave(plugin.engine)
            self.state.drain_output()  # what it printed while starting, even if it failed to

    def _start(self, plugin: LoadedPlugin, linker: Union[wasmtime.Linker, wasmtime.InstancePre], limits: Limits) -> None:
        try:
            with interrupt.running_slow(self.store):
                if isinstance(linker, wasmtime.InstancePre):
                    self.instance = linker.instantiate(self.store)
                else:
                    self.instance = linker.instantiate(self.store, plugin.module)
        except wasmtime.Trap as trap:  # in the module's start function
            raise PluginLoadError(_start_failure(plugin.name, None, trap, limits)) from trap
        except wasmtime.WasmtimeError as error:
            raise PluginLoadError(f"{plugin.name} could not be instantiated: {first_line(error)}") from error
        # Memory 0, under whatever name it is exported (or the imported one wasmforge made):
        # one export at a time, since wrapping them all costs about 8 µs each, at every (re)start.
        self.memory: Optional[wasmtime.Memory] = self.state.memory or self._exported_memory(self.plugin_main_memory)
        self.state.memory = self.memory
        self._memories: dict[str, FastMemory] = {}
        # stable_base: every engine wasmforge makes keeps memories in place (engines.engine_config).
        self.fast_memory: Optional[FastMemory] = (
            FastMemory(self.store, self.memory, stable_base=True) if self.memory else None
        )
        # A WASI reactor's constructors first, then wasmforge's panic hook.
        for setup in _setup_exports(plugin):
            function = self.func(setup)  # called once: cheaper than binding it for the fast path
            if function is None:
                continue
            try:
                self.arm(limits)
                with interrupt.running_slow(self.store):
                    call_setup(self.store, function)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
                raise PluginLoadError(_start_failure(plugin.name, setup, error, limits)) from error
        #: The memory's size once started: how much a call grew it is told from this (see failures.py).
        self.started_memory = self.memory_size

    def arm(self, limits: Limits, epoch_moves: int = -1) -> None:
        """A fresh time budget and fuel tank for the next call, and Ctrl-C armed for the calling thread.

        ``epoch_moves``: how often the plugin's epoch has been advanced so far without a time limit
        (cancel() calls plus Ctrl-Cs: nothing else advances an engine with no ticker). Without a
        time limit the deadline set at the last arming still holds until that count changes, so it
        is set again only then (setting it costs a few µs); -1: always.
        """
        if limits.uses_epochs:
            if limits.timeout is not None or epoch_moves < 0 or epoch_moves != self.armed_at:
                self.store.set_epoch_deadline(limits.deadline_ticks)
                self.armed_at = epoch_moves
            if not interrupt.STATE.tried:
                interrupt.install()  # loaded on another thread: Ctrl-C reaches it if called on the main one
        elif limits.interruptible and self.armed is not interrupt.current_token():
            self.armed = interrupt.arm_for_this_thread(self.store)
        if limits.fuel is not None:
            self.store.set_fuel(limits.fuel)

    def follow_thread(self) -> None:
        """Re-arms Ctrl-C for the calling thread (the lean call path's :meth:`arm`)."""
        self.armed = interrupt.arm_for_this_thread(self.store)

    def _exported_memory(self, name: Optional[str]) -> Optional[wasmtime.Memory]:
        memory = lookup_export(self.store, self.instance, name) if name is not None else None
        if not isinstance(memory, wasmtime.Memory):
            return None
        note_store_of(self.store, memory)  # taken from this store: no need to probe it
        return memory

    def memory_named(self, name: str) -> Optional[FastMemory]:
        """The exported memory ``name`` (None if there is none), bound once per instance."""
        fast = self._memories.get(name)
        if fast is None:
            memory = self._exported_memory(name)
            if memory is None:
                return None
            fast = self._memories[name] = (
                self.fast_memory if name == self.plugin_main_memory and self.fast_memory is not None
                else FastMemory(self.store, memory, stable_base=True)
            )
        return fast

    def with_memory(self, name: str) -> Optional[MemoryView]:
        """Reads and writes of the exported memory ``name``; None if there is none."""
        memory = self.memory_named(name)
        return MemoryView(memory, self.plugin_name, name) if memory is not None else None

    def func(self, name: str) -> Optional[wasmtime.Func]:
        item = lookup_export(self.store, self.instance, name)
        return item if isinstance(item, wasmtime.Func) else None

    def bound(self, name: str, params: Sequence[str] = (), results: Sequence[str] = ()) -> Optional[Callable[..., Any]]:
        """Export ``name`` as a fast callable taking wasm values, bound once per instance; None if absent."""
        call = self.calls.get(name)
        if call is None:
            fast = self.fast_func(name)
            if fast is None:
                return None
            call = self.calls[name] = fast.call
        return call

    def fast_func(self, name: str) -> Optional[FastFunc]:
        """Export ``name``'s FastFunc (the lean path inlines its call), bound once per instance; None if absent."""
        fast = self._fast.get(name)
        if fast is None:
            func = self.func(name)
            if func is None:
                return None
            try:
                fast = FastFunc(self.store, func, memory=self.fast_memory, name=name)
            except UnsupportedSignature as error:
                # Never wasmtime-py's checked call: for v128 and GC references it aborts the process.
                raise PluginProtocolError(f"{self.plugin_name} cannot call its export {name}: {error}",
                                          plugin=self.plugin_name, function=name) from error
            self._fast[name] = fast
        return fast

    @property
    def memory_size(self) -> int:
        return self.fast_memory.sync().nbytes if self.fast_memory is not None else 0

    def read(self, offset: int, length: int) -> bytes:
        try:
            return self._memory().read(offset, length)
        except MemoryBoundsError:
            raise self.outside("read", length, offset) from None

    def write(self, offset: int, data: bytes) -> None:
        try:
            self._memory().write(offset, data)
        except MemoryBoundsError:
            raise self.outside("write", len(data), offset) from None

    def outside(self, action: str, length: int, offset: int) -> MemoryAccessError:
        """The error for a read or write of ``length`` bytes at ``offset`` past the end of memory 0."""
        return MemoryAccessError(
            f"{action} of {length} bytes at {offset} is outside {self.plugin_name}'s memory ({self.memory_size} bytes)"
        )

    def _memory(self) -> FastMemory:
        if self.fast_memory is None:
            raise MemoryAccessError(f"{self.plugin_name} exports no memory")
        return self.fast_memory


class MemoryView:
    """Bounds-checked reads and writes of one more memory of an instance (``plugin.memories[name]``)."""

    def __init__(self, memory: FastMemory, plugin_name: str, name: str) -> None:
        self._memory = memory
        self._where = f"{plugin_name}'s memory {name!r}"

    @property
    def memory_size(self) -> int:
        return self._memory.sync().nbytes

    def read(self, offset: int, length: int) -> bytes:
        try:
            return self._memory.read(offset, length)
        except MemoryBoundsError:
            raise self._outside("read", length, offset) from None

    def write(self, offset: int, data: bytes) -> None:
        try:
            self._memory.write(offset, data)
        except MemoryBoundsError:
            raise self._outside("write", len(data), offset) from None

    def _outside(self, action: str, length: int, offset: int) -> MemoryAccessError:
        return MemoryAccessError(f"{action} of {length} bytes at {offset} is outside {self._where} "
                                 f"({self.memory_size} bytes)")


def _setup_exports(plugin: LoadedPlugin) -> tuple[str, ...]:
    """The exports to call at start, in order, their types checked once per content (kept in ``Compiled.shared``)."""
    setups: Optional[tuple[str, ...]] = plugin.compiled.shared.get("setups")
    if setups is None:
        types = plugin.compiled.shared.get(SETUP_TYPES)  # read with the module's other facts
        if types is None:
            types = {export.name: export.type for export in plugin.module.exports
                     if export.name in SETUP_EXPORTS and isinstance(export.type, wasmtime.FuncType)}
        for setup, kind in types.items():
            shape = func_type(kind)
            if shape != ((), ()):
                raise PluginLoadError(f"{plugin.name} exports {setup} as {show_func_type(*shape)}, not () -> (); "
                                      "wasmforge calls it at start and cannot")
        setups = plugin.compiled.shared.setdefault("setups", tuple(n for n in SETUP_EXPORTS if n in types))
    return setups


def _start_failure(plugin_name: str, setup: Optional[str], error: BaseException, limits: Limits) -> str:
    """Why starting failed (in the start function, or in the export ``setup``), in the words a call's failure would use."""
    code = error.trap_code if isinstance(error, wasmtime.Trap) else None
    where = f" (in {setup})" if setup else ""
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return f"{plugin_name} used up its fuel budget of {limits.fuel} while starting{where}; raise the fuel limit"
    if code == wasmtime.TrapCode.INTERRUPT:
        return f"{plugin_name} did not finish starting{where} within its time limit of {limits.timeout:g} s"
    if setup is None:
        return f"{plugin_name} trapped while starting: {first_line(error)}"
    return f"{plugin_name} failed in {setup} while starting: {first_line(error)}"
