"""The calling instance, for host functions that ask for it.

A host function gets a :class:`Caller` as its first argument when that
parameter is annotated ``wasmforge.Caller``. Through it the function reaches
the memory of the instance that called it: with ``instances=N`` each call
sees its own instance's memory, which ``plugin.memory`` cannot offer.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, Optional, Sequence

import wasmtime

from ..errors import MemoryAccessError, UsageError

_I32_LOW = -(2**31)


class CallerMemory:
    """Bounds-checked access to the calling instance's memory; valid only during the host call.

    Offsets are unsigned addresses; a negative offset down to -2**31 is taken as
    the i32 a plain wasm import receives for an address at or above 2 GiB.
    """

    __slots__ = ("_owner", "_memory")

    def __init__(self, owner: "Caller", memory: wasmtime.Memory) -> None:
        self._owner = owner
        self._memory = memory

    @property
    def size(self) -> int:
        """The memory's current size in bytes."""
        return int(self._memory.data_len(self._owner._store()))

    def read(self, offset: int, length: int) -> bytes:
        """A copy of ``length`` bytes at ``offset``."""
        store = self._owner._store()
        start = self._checked(store, offset, length, "read")
        return bytes(self._memory.read(store, start, start + length)) if length else b""

    def read_text(self, offset: int, length: int, errors: str = "strict") -> str:
        """``length`` bytes at ``offset`` decoded as UTF-8 (``errors`` as for bytes.decode)."""
        return self.read(offset, length).decode("utf-8", errors)

    def write(self, offset: int, data: bytes) -> None:
        """Copies ``data`` to ``offset``; nothing is written unless all of it fits."""
        store = self._owner._store()
        data = bytes(data)
        start = self._checked(store, offset, len(data), "write")
        if data:
            self._memory.write(store, data, start)

    def _checked(self, store: Any, offset: int, length: int, action: str) -> int:
        for what, value in (("offset", offset), ("length", length)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise MemoryAccessError(f"{action}: the {what} must be an integer, got {type(value).__name__}")
        if _I32_LOW <= offset < 0:
            offset += 2**32
        size = int(self._memory.data_len(store))
        if offset < 0 or length < 0 or offset + length > size:
            raise MemoryAccessError(f"{action} of {length} bytes at {offset} is outside "
                                    f"{self._owner.plugin}'s memory ({size} bytes)")
        return offset

    def __repr__(self) -> str:
        return f"<CallerMemory of {self._owner.plugin}>"


class Caller:
    """The plugin instance whose call is running a host function.

    Ask for it by annotating the host function's first parameter::

        def print_str(caller: wasmforge.Caller, ptr: int, length: int) -> None:
            print(caller.memory.read_text(ptr, length))

    It is valid only while that host function runs.
    """

    __slots__ = ("plugin", "_caller", "_find_memory", "_valid")

    def __init__(self, plugin: str, caller: wasmtime.Caller,
                 find_memory: Callable[[wasmtime.Caller], Optional[wasmtime.Memory]]) -> None:
        #: The plugin's name (its file name).
        self.plugin = plugin
        self._caller = caller
        self._find_memory = find_memory
        self._valid = True

    @property
    def memory(self) -> CallerMemory:
        """The calling instance's memory (memory 0: exported under any name, or imported)."""
        memory = self._find_memory(self._store())
        if memory is None:
            raise MemoryAccessError(f"{self.plugin} has no memory a host function can reach")
        return CallerMemory(self, memory)

    def _store(self) -> wasmtime.Caller:
        if not self._valid:
            raise UsageError("a wasmforge.Caller is valid only while its host function runs; "
                             "copy what you need out of memory before returning")
        return self._caller

    def _end(self) -> None:
        self._valid = False

    def __repr__(self) -> str:
        return f"<Caller {self.plugin}{'' if self._valid else ' (finished)'}>"


def call_with_caller(plugin: str, caller: wasmtime.Caller,
                     find_memory: Callable[[wasmtime.Caller], Optional[wasmtime.Memory]],
                     function: Callable[..., Any], args: Sequence[Any]) -> Any:
    """``function(Caller(...), *args)``, the Caller invalid once it returns."""
    handle = Caller(plugin, caller, find_memory)
    try:
        return function(handle, *args)
    finally:
        handle._end()


def wants_caller(function: Callable[..., Any]) -> bool:
    """Whether ``function``'s first parameter is annotated :class:`Caller`."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return False
    if not parameters or parameters[0].kind not in (parameters[0].POSITIONAL_ONLY, parameters[0].POSITIONAL_OR_KEYWORD):
        return False
    annotation = parameters[0].annotation
    if isinstance(annotation, str):  # `from __future__ import annotations`
        try:
            annotation = typing.get_type_hints(function).get(parameters[0].name, annotation)
        except Exception:  # noqa: BLE001 - names that do not resolve: judge the text
            pass
    if isinstance(annotation, str):
        return annotation in ("Caller", "wasmforge.Caller") or annotation.endswith(".Caller")
    return annotation is Caller
