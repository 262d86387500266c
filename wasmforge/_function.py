"""PluginFunction: one export, its conversions worked out once, and the call path.

Every failure inside a call becomes a specific WasmforgeError naming the
plugin and the function; after any trap the instance is discarded so the
next call starts on a fresh one.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Callable

import wasmtime

from ._live import LiveInstance, describe_trap_code, first_line
from .abi import (
    STATUS_BAD_INPUT,
    STATUS_ERROR,
    STATUS_OK,
    Signature,
    decode_output,
    encode_input,
    number_from_wasm,
    number_to_wasm,
)
from .errors import (
    ArgumentError,
    HostFunctionError,
    MemoryAccessError,
    PluginCallError,
    PluginCancelled,
    PluginError,
    PluginFuelExhausted,
    PluginMemoryLimit,
    PluginPanic,
    PluginProtocolError,
    PluginStackOverflow,
    PluginTimeout,
    PluginTrap,
)
from .limits import TICKER, describe_bytes

if TYPE_CHECKING:
    from .host import Plugin

_DESCRIPTOR = struct.Struct("<III")
_PAGE = 65536


class PluginFunction:
    """One export, ready to call: ``plugin.add`` is one of these."""

    def __init__(self, plugin: "Plugin", signature: Signature) -> None:
        self.plugin = plugin
        self.signature = signature
        self.__name__ = signature.name
        self._arity = len(signature.params)
        self._where = f"{signature.name}() in {plugin.name}"
        if signature.abi in ("native", "raw"):
            self._to_wasm = [number_to_wasm(signature, i) for i in range(self._arity)]
            self._from_wasm = number_from_wasm(signature.returns if signature.abi == "native" else "")
            self._invoke: Callable[[LiveInstance, tuple[Any, ...]], Any] = self._invoke_native
        else:
            self._invoke = self._invoke_buffer

    def __call__(self, *args: Any) -> Any:
        if len(args) != self._arity:
            raise ArgumentError(f"{self.signature.describe_arity()}, got {len(args)}")
        plugin = self.plugin
        limits = plugin.limits
        timed = limits.timeout is not None
        with plugin._lock:
            live = plugin._live()
            live.state.reset()
            live.arm(limits)
            cancels_before = plugin._cancels
            if timed:
                TICKER.enter(plugin._engine)
            try:
                return self._invoke(live, args)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
                plugin._discard_instance()
                raise self._failure(error, live, plugin._cancels != cancels_before) from None
            except BaseException as error:
                # A host function's exception unwinds through wasm (wasmtime-py re-raises it
                # after the trap): report it with where it happened, on a fresh instance next time.
                host_error = live.state.host_error
                if host_error is None or error is not host_error and error is not host_error.__cause__:
                    raise
                plugin._discard_instance()
                raise HostFunctionError(
                    f"{self._where} failed: {host_error}", plugin=plugin.name, function=self.signature.name
                ) from host_error.__cause__
            finally:
                if timed:
                    TICKER.leave(plugin._engine)
                live.state.drain_output()

    def __repr__(self) -> str:
        return f"<plugin function {self.signature} of {self.plugin.name}>"

    # ---- the two calling conventions (docs/ABI.md) ----

    def _export(self, live: LiveInstance, name: str) -> wasmtime.Func:
        func = live.func(name)
        if func is None:
            raise PluginProtocolError(
                f"{self.plugin.name} does not export {name}, which wasmforge plugins must",
                plugin=self.plugin.name, function=self.signature.name,
            )
        return func

    def _invoke_native(self, live: LiveInstance, args: tuple[Any, ...]) -> Any:
        values = [convert(value) for convert, value in zip(self._to_wasm, args)]
        result = self._export(live, self.signature.name)(live.store, *values)
        return self._from_wasm(result) if self._from_wasm is not None and result is not None else result

    def _invoke_buffer(self, live: LiveInstance, args: tuple[Any, ...]) -> Any:
        signature, plugin = self.signature, self.plugin.name
        if live.memory is None:
            raise PluginProtocolError(f"{self._where}: {plugin} exports no memory, which buffer calls need",
                                      plugin=plugin, function=signature.name)
        payload = encode_input(signature, args)
        pointer = 0
        if payload:
            pointer = self._export(live, "__wf_alloc")(live.store, len(payload))
            if pointer == 0:
                raise PluginMemoryLimit(
                    f"{self._where}: the plugin could not allocate {describe_bytes(len(payload))} for the arguments "
                    f"(memory limit {self.plugin.limits.describe_memory()})",
                    plugin=plugin, function=signature.name,
                )
            self._protocol(lambda: live.write(pointer & 0xFFFFFFFF, payload, plugin), "an argument buffer")
        address = self._export(live, signature.name)(live.store, pointer, len(payload))
        if not isinstance(address, int):
            raise PluginProtocolError(
                f"{self._where} returned {address!r}, not the address of a result descriptor",
                plugin=plugin, function=signature.name,
            )
        raw = self._protocol(lambda: live.read(address & 0xFFFFFFFF, _DESCRIPTOR.size, plugin), "a result descriptor")
        status, out_ptr, out_len = _DESCRIPTOR.unpack(raw)
        data = self._protocol(lambda: live.read(out_ptr, out_len, plugin), "a result")
        if status == STATUS_OK:
            return decode_output(signature, data, plugin)
        message = data.decode("utf-8", errors="replace")
        if status == STATUS_ERROR:
            raise PluginError(message, plugin=plugin, function=signature.name)
        if status == STATUS_BAD_INPUT:
            raise ArgumentError(f"{signature}: {message}")
        raise PluginProtocolError(f"{self._where} returned unknown status {status}", plugin=plugin, function=signature.name)

    def _protocol(self, access: Callable[[], Any], what: str) -> Any:
        try:
            return access()
        except MemoryAccessError as error:
            raise PluginProtocolError(
                f"{self._where} returned {what} outside its memory: {error}",
                plugin=self.plugin.name, function=self.signature.name,
            ) from None

    # ---- failures ----

    def _failure(self, error: BaseException, live: LiveInstance, cancelled: bool) -> PluginCallError:
        """The specific error for a trap (or a wasmtime error) in this call."""
        plugin, function, limits = self.plugin.name, self.signature.name, self.plugin.limits
        names = {"plugin": plugin, "function": function}
        report = live.state.panic_report
        if report is not None:
            message = str(report.get("message", ""))
            file, line, column = report.get("file"), report.get("line"), report.get("column")
            where = f" at {file}:{line}:{column}" if file else ""
            return PluginPanic(f"{self._where} panicked{where}: {message}", panic_message=message,
                               file=file, line=line, column=column, **names)
        if live.state.out_of_memory is not None:
            return PluginMemoryLimit(
                f"{self._where} ran out of memory: it asked for {describe_bytes(live.state.out_of_memory)} more with "
                f"{describe_bytes(live.memory_size)} in use (memory limit {limits.describe_memory()})",
                **names,
            )
        code = error.trap_code if isinstance(error, wasmtime.Trap) else None
        if code == wasmtime.TrapCode.INTERRUPT:
            if cancelled:
                return PluginCancelled(f"{self._where} was cancelled", **names)
            return PluginTimeout(f"{self._where} exceeded its time limit of {limits.timeout:g} s", **names)
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return PluginFuelExhausted(f"{self._where} used up its fuel budget of {limits.fuel}", **names)
        if code == wasmtime.TrapCode.STACK_OVERFLOW:
            return PluginStackOverflow(f"{self._where} overflowed the wasm stack (unbounded recursion?)",
                                       trap_code="stack_overflow", **names)
        if limits.memory is not None and live.memory_size + _PAGE > limits.memory:
            # Plain wasm cannot say it ran out: a trap with memory at the cap is the best evidence.
            return PluginMemoryLimit(
                f"{self._where} trapped with its memory at the limit of {limits.describe_memory()}: {first_line(error)}",
                **names,
            )
        if not isinstance(error, wasmtime.Trap):
            return PluginTrap(f"{self._where} failed: {first_line(error)}", **names)
        return PluginTrap(f"{self._where} trapped: {first_line(error)}", trap_code=describe_trap_code(code), **names)
