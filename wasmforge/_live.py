"""One live instance of a plugin: a store, its instance and its memory.

A trap throws the whole thing away; the plugin makes a new one for the next
call. The store gets the plugin's limits before any wasm runs, because a
store with epochs or fuel enabled starts with a deadline and a tank of zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import wasmtime

from ._imports import CallState
from .errors import MemoryAccessError, PluginLoadError
from .limits import DEFAULT_TABLE_ELEMENTS, TICKER, Limits

if TYPE_CHECKING:
    from .host import Plugin


def first_line(error: BaseException) -> str:
    text = str(error.message if isinstance(error, wasmtime.Trap) else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class LiveInstance:
    """A store + instance, the exports the host calls, and what calls leave behind."""

    def __init__(self, plugin: "Plugin") -> None:
        limits = plugin.limits
        self.store = wasmtime.Store(plugin._engine)
        self.store.set_limits(
            memory_size=limits.memory if limits.memory is not None else -1,
            table_elements=DEFAULT_TABLE_ELEMENTS,
        )
        self.arm(limits)
        self.state = CallState()
        linker = plugin._imports.link(plugin._engine, self.store, self.state)
        # A start function or constructor is wasm like any other: the time limit holds there too.
        timed = limits.timeout is not None
        if timed:
            TICKER.enter(plugin._engine)
        try:
            self._start(plugin, linker, limits)
        finally:
            if timed:
                TICKER.leave(plugin._engine)

    def _start(self, plugin: "Plugin", linker: wasmtime.Linker, limits: Limits) -> None:
        try:
            self.instance = linker.instantiate(self.store, plugin._module)
        except wasmtime.Trap as trap:
            if trap.trap_code == wasmtime.TrapCode.INTERRUPT:
                raise PluginLoadError(f"{plugin.name} did not finish starting within its time limit "
                                      f"of {limits.timeout:g} s") from None
            raise PluginLoadError(f"{plugin.name} trapped while starting: {first_line(trap)}") from None
        except wasmtime.WasmtimeError as error:
            raise PluginLoadError(f"{plugin.name} could not be instantiated: {first_line(error)}") from None
        exports = self.instance.exports(self.store)
        memory = exports.get("memory")
        self.memory: Optional[wasmtime.Memory] = memory if isinstance(memory, wasmtime.Memory) else None
        self.funcs: dict[str, wasmtime.Func] = {
            name: item for name, item in exports.items() if isinstance(item, wasmtime.Func)
        }
        # A WASI reactor's constructors first, then wasmforge's panic hook.
        for setup in ("_initialize", "__wf_init"):
            function = self.funcs.get(setup)
            if function is None:
                continue
            try:
                self.arm(limits)
                function(self.store)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
                raise PluginLoadError(f"{plugin.name} failed in {setup} while starting: {first_line(error)}") from None

    def arm(self, limits: Limits) -> None:
        """A fresh time budget and fuel tank for the next call."""
        if limits.uses_epochs:
            self.store.set_epoch_deadline(limits.deadline_ticks)
        if limits.fuel is not None:
            self.store.set_fuel(limits.fuel)

    @property
    def memory_size(self) -> int:
        return self.memory.data_len(self.store) if self.memory is not None else 0

    def read(self, offset: int, length: int, plugin: str) -> bytes:
        memory = self._memory(plugin)
        size = memory.data_len(self.store)
        if offset < 0 or length < 0 or offset + length > size:
            raise MemoryAccessError(f"read of {length} bytes at {offset} is outside {plugin}'s memory ({size} bytes)")
        return bytes(memory.read(self.store, offset, offset + length)) if length else b""

    def write(self, offset: int, data: bytes, plugin: str) -> None:
        memory = self._memory(plugin)
        size = memory.data_len(self.store)
        if offset < 0 or offset + len(data) > size:
            raise MemoryAccessError(f"write of {len(data)} bytes at {offset} is outside {plugin}'s memory ({size} bytes)")
        if data:
            memory.write(self.store, data, offset)

    def _memory(self, plugin: str) -> wasmtime.Memory:
        if self.memory is None:
            raise MemoryAccessError(f"{plugin} exports no memory")
        return self.memory

    def func(self, name: str) -> Optional[wasmtime.Func]:
        return self.funcs.get(name)


def describe_trap_code(code: Any) -> Optional[str]:
    return code.name.lower() if code is not None else None
