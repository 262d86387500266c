"""Loading plugins and calling them: :func:`load` and :class:`Plugin`.

A Plugin owns one compiled module and one live instance (store + instance).
Calls are checked against the export's signature before entering wasm; a
trap or panic discards the instance, and the next call gets a fresh one, so
one bad call does not poison the plugin.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import wasmtime

from . import _wasmfile
from .abi import (
    METADATA_SECTION,
    STATUS_BAD_INPUT,
    STATUS_ERROR,
    STATUS_OK,
    Signature,
    decode_result,
    encode_arguments,
    number_from_wasm,
    number_to_wasm,
    parse_metadata,
    raw_signature,
)
from .errors import (
    ArgumentError,
    MemoryAccessError,
    PluginCallError,
    PluginError,
    PluginLoadError,
    PluginMemoryLimit,
    PluginPanic,
    PluginProtocolError,
    PluginTrap,
    UnknownFunctionError,
    UsageError,
)

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Imports every wasmforge plugin may have; the host always provides them.
HOST_MODULE = "wasmforge"
_DESCRIPTOR = struct.Struct("<III")

_engine_lock = threading.Lock()
_engine: Optional[wasmtime.Engine] = None


def shared_engine() -> wasmtime.Engine:
    """One engine for the process: compiled modules can be shared between plugins."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = wasmtime.Engine(wasmtime.Config())
        return _engine


def _wasm_type_name(valtype: wasmtime.ValType) -> str:
    return str(valtype)


def compile_module(
    data: bytes, source: str, engine: Optional[wasmtime.Engine] = None, *, cache: bool = True
) -> wasmtime.Module:
    """Compiles ``data``; PluginLoadError naming ``source`` if it is not a valid module.

    With ``cache``, a compiled form that wasmforge stored earlier is reused (see cache.py).
    """
    _wasmfile.check_header(data, source)
    engine = engine or shared_engine()
    if cache:
        from .cache import compile_cached

        return compile_cached(engine, data, lambda: compile_module(data, source, engine, cache=False))
    try:
        return wasmtime.Module(engine, data)
    except wasmtime.WasmtimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "invalid module"
        raise PluginLoadError(f"{source} is not a valid WebAssembly module: {first}") from None


def load(path: PathLike) -> "Plugin":
    """Loads the plugin at ``path``."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise PluginLoadError(f"no plugin at {file}; build one with `wasmforge build`") from None
    except IsADirectoryError:
        raise PluginLoadError(f"{file} is a directory, not a .wasm file") from None
    except OSError as error:
        raise PluginLoadError(f"could not read {file}: {error.strerror}") from None
    return Plugin.from_bytes(data, name=file.name, path=file)


class PluginMemory:
    """Bounds-checked access to a plugin's linear memory."""

    def __init__(self, plugin: "Plugin") -> None:
        self._plugin = plugin

    @property
    def size(self) -> int:
        """The memory's current size in bytes."""
        live = self._plugin._live()
        return live.memory.data_len(live.store)

    def read(self, offset: int, length: int) -> bytes:
        live = self._plugin._live()
        return live.read(offset, length, self._plugin.name)

    def write(self, offset: int, data: bytes) -> None:
        live = self._plugin._live()
        live.write(offset, bytes(data), self._plugin.name)

    def __repr__(self) -> str:
        return f"<PluginMemory of {self._plugin.name}: {self.size} bytes>"


class _Live:
    """One store + instance: what a trap throws away."""

    def __init__(self, plugin: "Plugin") -> None:
        self.store = wasmtime.Store(plugin._engine)
        self.panic_report: Optional[dict[str, Any]] = None
        linker = wasmtime.Linker(plugin._engine)
        linker.define_func(
            HOST_MODULE,
            "panic",
            wasmtime.FuncType([wasmtime.ValType.i32(), wasmtime.ValType.i32()], []),
            self._on_panic,
            access_caller=True,
        )
        try:
            self.instance = linker.instantiate(self.store, plugin._module)
        except wasmtime.Trap as trap:
            raise PluginLoadError(f"{plugin.name} trapped while starting: {_first_line(trap)}") from None
        except wasmtime.WasmtimeError as error:
            raise PluginLoadError(f"{plugin.name} could not be instantiated: {_first_line(error)}") from None
        exports = self.instance.exports(self.store)
        memory = exports.get("memory")
        self.memory: Optional[wasmtime.Memory] = memory if isinstance(memory, wasmtime.Memory) else None
        self.funcs: dict[str, wasmtime.Func] = {
            name: item for name, item in exports.items() if isinstance(item, wasmtime.Func)
        }
        init = self.funcs.get("__wf_init")
        if init is not None:
            try:
                init(self.store)
            except wasmtime.Trap as trap:
                raise PluginLoadError(f"{plugin.name} trapped in __wf_init: {_first_line(trap)}") from None

    def _on_panic(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        memory = caller.get("memory")
        try:
            if not isinstance(memory, wasmtime.Memory):
                raise ValueError("no memory")
            raw = _checked_read(memory, caller, ptr, length)
            report = json.loads(raw.decode("utf-8", errors="replace"))
            self.panic_report = report if isinstance(report, dict) else {"message": str(report)}
        except ValueError:
            self.panic_report = {"message": "(the panic report could not be read)"}

    def read(self, offset: int, length: int, plugin: str) -> bytes:
        if self.memory is None:
            raise MemoryAccessError(f"{plugin} exports no memory")
        return _checked_read(self.memory, self.store, offset, length, plugin)

    def write(self, offset: int, data: bytes, plugin: str) -> None:
        if self.memory is None:
            raise MemoryAccessError(f"{plugin} exports no memory")
        size = self.memory.data_len(self.store)
        if offset < 0 or offset + len(data) > size:
            raise MemoryAccessError(
                f"write of {len(data)} bytes at {offset} is outside {plugin}'s memory ({size} bytes)"
            )
        if data:
            self.memory.write(self.store, data, offset)


def _checked_read(memory: wasmtime.Memory, store: Any, offset: int, length: int, plugin: str = "plugin") -> bytes:
    size = memory.data_len(store)
    if offset < 0 or length < 0 or offset + length > size:
        raise MemoryAccessError(f"read of {length} bytes at {offset} is outside {plugin}'s memory ({size} bytes)")
    return bytes(memory.read(store, offset, offset + length)) if length else b""


def _first_line(error: BaseException) -> str:
    text = str(error.message if isinstance(error, wasmtime.Trap) else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Plugin:
    """A loaded plugin. Call exports with :meth:`call` or as attributes: ``plugin.add(1, 2)``."""

    def __init__(
        self, module: wasmtime.Module, *, name: str, metadata: Sequence[bytes] = (), path: Optional[Path] = None
    ) -> None:
        self.name = name
        self.path = path
        self._module = module
        self._engine = shared_engine()
        self._lock = threading.RLock()
        self._closed = False
        self._signatures = self._read_signatures(metadata)
        self._functions: dict[str, PluginFunction] = {}
        self._current: Optional[_Live] = _Live(self)
        self.memory = PluginMemory(self)

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "<bytes>", path: Optional[Path] = None) -> "Plugin":
        """Loads a plugin from the bytes of a .wasm module."""
        # Walking the sections first turns a truncated file into "truncated", not a parser offset.
        metadata = _wasmfile.custom_sections(data, METADATA_SECTION, name)
        module = compile_module(data, name)
        return cls(module, name=name, metadata=metadata, path=path)

    def _read_signatures(self, metadata: Sequence[bytes]) -> dict[str, Signature]:
        described = parse_metadata(metadata, self.name)
        signatures: dict[str, Signature] = {}
        for export in self._module.exports:
            if not isinstance(export.type, wasmtime.FuncType) or export.name.startswith("__wf_"):
                continue
            signature = described.get(export.name)
            if signature is None:
                signature = raw_signature(
                    export.name,
                    [_wasm_type_name(t) for t in export.type.params],
                    [_wasm_type_name(t) for t in export.type.results],
                )
            signatures[export.name] = signature
        return signatures

    # ---- the public surface ----

    @property
    def exports(self) -> Mapping[str, Signature]:
        """Every callable export: name -> signature."""
        return dict(self._signatures)

    def call(self, name: str, *args: Any) -> Any:
        """Calls export ``name`` with Python values and returns a Python value."""
        return self.function(name)(*args)

    def function(self, name: str) -> "PluginFunction":
        """The callable for export ``name``, built once."""
        function = self._functions.get(name)
        if function is None:
            signature = self._signatures.get(name)
            if signature is None:
                raise UnknownFunctionError(self._unknown(name))
            function = PluginFunction(self, signature)
            self._functions[name] = function
        return function

    def call_raw(self, name: str, *numbers: Any) -> Any:
        """Calls any export with plain wasm numbers, for plugins not made with wasmforge."""
        func_type = next((e.type for e in self._module.exports if e.name == name), None)
        if not isinstance(func_type, wasmtime.FuncType):
            raise UnknownFunctionError(self._unknown(name))
        signature = raw_signature(
            name, [_wasm_type_name(t) for t in func_type.params], [_wasm_type_name(t) for t in func_type.results]
        )
        return PluginFunction(self, signature)(*numbers)

    def close(self) -> None:
        """Frees the instance; later calls raise. Safe to call twice."""
        with self._lock:
            self._closed = True
            self._current = None
            self._functions.clear()

    def __enter__(self) -> "Plugin":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> "PluginFunction":
        if name.startswith("_"):
            raise AttributeError(name)
        return self.function(name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._signatures))

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._signatures)} exports"
        return f"<Plugin {self.name}: {state}>"

    def __iter__(self) -> Iterator[str]:
        return iter(self._signatures)

    # ---- internals ----

    def _unknown(self, name: str) -> str:
        known = ", ".join(sorted(self._signatures)) or "none"
        return f"{self.name} has no function {name!r}; its functions: {known}"

    def _live(self) -> _Live:
        if self._closed:
            raise UsageError(f"plugin {self.name} is closed")
        if self._current is None:
            self._current = _Live(self)
        return self._current

    def _discard_instance(self) -> None:
        """After a trap the instance's state is unknown: the next call starts afresh."""
        self._current = None


class PluginFunction:
    """One export, ready to call: its conversions are worked out once, here."""

    def __init__(self, plugin: Plugin, signature: Signature) -> None:
        self.plugin = plugin
        self.signature = signature
        self.__name__ = signature.name
        self._arity = len(signature.params)
        if signature.abi in ("native", "raw"):
            self._to_wasm = [number_to_wasm(signature, i) for i in range(self._arity)]
            result_type = signature.returns if signature.abi == "native" else ""
            self._from_wasm = number_from_wasm(result_type)
            self._invoke: Callable[[_Live, tuple[Any, ...]], Any] = self._invoke_native
        else:
            self._invoke = self._invoke_buffer

    def __call__(self, *args: Any) -> Any:
        if len(args) != self._arity:
            raise ArgumentError(f"{self.signature.describe_arity()}, got {len(args)}")
        plugin = self.plugin
        with plugin._lock:
            live = plugin._live()
            try:
                return self._invoke(live, args)
            except wasmtime.Trap as trap:
                plugin._discard_instance()
                raise self._trap_error(trap, live) from None
            except wasmtime.WasmtimeError as error:
                plugin._discard_instance()
                raise PluginTrap(
                    f"{self._where()} failed: {_first_line(error)}",
                    plugin=plugin.name, function=self.signature.name,
                ) from None

    def __repr__(self) -> str:
        return f"<plugin function {self.signature} of {self.plugin.name}>"

    def _where(self) -> str:
        return f"{self.signature.name}() in {self.plugin.name}"

    def _func(self, live: _Live, name: str) -> wasmtime.Func:
        func = live.funcs.get(name)
        if func is None:
            raise PluginProtocolError(
                f"{self.plugin.name} does not export {name}, which wasmforge plugins must",
                plugin=self.plugin.name, function=self.signature.name,
            )
        return func

    def _invoke_native(self, live: _Live, args: tuple[Any, ...]) -> Any:
        values = [convert(value) for convert, value in zip(self._to_wasm, args)]
        result = self._func(live, self.signature.name)(live.store, *values)
        return self._from_wasm(result) if self._from_wasm is not None and result is not None else result

    def _invoke_buffer(self, live: _Live, args: tuple[Any, ...]) -> Any:
        signature = self.signature
        payload = encode_arguments(signature, args)
        pointer = 0
        if payload:
            pointer = self._func(live, "__wf_alloc")(live.store, len(payload))
            if pointer == 0:
                raise PluginMemoryLimit(
                    f"{self._where()}: the plugin could not allocate {len(payload)} bytes for the arguments",
                    plugin=self.plugin.name, function=signature.name,
                )
            live.write(pointer, payload, self.plugin.name)
        descriptor = self._func(live, signature.name)(live.store, pointer, len(payload))
        status, out_ptr, out_len = self._read_descriptor(live, descriptor)
        try:
            data = live.read(out_ptr, out_len, self.plugin.name)
        except MemoryAccessError as error:
            raise PluginProtocolError(
                f"{self._where()} returned a result outside its memory: {error}",
                plugin=self.plugin.name, function=signature.name,
            ) from None
        if status == STATUS_OK:
            return decode_result(signature, data, self.plugin.name)
        message = data.decode("utf-8", errors="replace")
        if status == STATUS_ERROR:
            raise PluginError(message, plugin=self.plugin.name, function=signature.name)
        if status == STATUS_BAD_INPUT:
            raise ArgumentError(f"{signature}: {message}")
        raise PluginProtocolError(
            f"{self._where()} returned unknown status {status}",
            plugin=self.plugin.name, function=signature.name,
        )

    def _read_descriptor(self, live: _Live, address: Any) -> tuple[int, int, int]:
        if not isinstance(address, int):
            raise PluginProtocolError(
                f"{self._where()} returned {address!r}, not the address of a result descriptor",
                plugin=self.plugin.name, function=self.signature.name,
            )
        try:
            raw = live.read(address & 0xFFFFFFFF, _DESCRIPTOR.size, self.plugin.name)
        except MemoryAccessError as error:
            raise PluginProtocolError(
                f"{self._where()} returned a result descriptor outside its memory: {error}",
                plugin=self.plugin.name, function=self.signature.name,
            ) from None
        status, pointer, length = _DESCRIPTOR.unpack(raw)
        return status, pointer, length

    def _trap_error(self, trap: wasmtime.Trap, live: _Live) -> PluginCallError:
        plugin, function = self.plugin.name, self.signature.name
        report = live.panic_report
        if report is not None:
            message = str(report.get("message", ""))
            file, line, column = report.get("file"), report.get("line"), report.get("column")
            where = f" at {file}:{line}:{column}" if file else ""
            return PluginPanic(
                f"{self._where()} panicked{where}: {message}",
                plugin=plugin, function=function, panic_message=message,
                file=file, line=line, column=column,
            )
        code = trap.trap_code
        code_name = code.name.lower() if code is not None else None
        return PluginTrap(
            f"{self._where()} trapped: {_first_line(trap)}",
            plugin=plugin, function=function, trap_code=code_name,
        )
