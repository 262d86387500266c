"""What a failed call raises: a trap, a host function's failure, Ctrl-C, each as its own error.

Every failure inside a call becomes a specific WasmforgeError naming the
plugin and the function (PluginPanic with the panic's message and place,
PluginMemoryLimit, PluginTimeout, PluginCancelled, PluginFuelExhausted,
PluginStackOverflow, PluginTrap, HostFunctionError); wasmforge's own errors
pass through. Anything from wasm costs the instance: its state is unknown,
so it is discarded and the next call starts on a fresh one.
"""

from __future__ import annotations

from typing import Any, Optional

import wasmtime

from .._text import first_line, format_bytes
from ..abi.signature import Signature
from ..errors import (
    ArgumentError,
    HostFunctionError,
    MemoryAccessError,
    PluginCallError,
    PluginCancelled,
    PluginFuelExhausted,
    PluginMemoryLimit,
    PluginPanic,
    PluginStackOverflow,
    PluginTimeout,
    PluginTrap,
)
from . import interrupt
from .fastcall import HostFunctionFailed
from .instance import LiveInstance
from .instances import Instances
from .loaded import LoadedPlugin

_PAGE = 65536


class CallFailures:
    """Turns what a call of one function raised into the error to raise: ``failures(error, live, cancelled)``."""

    def __init__(self, loaded: LoadedPlugin, instances: Instances, signature: Signature) -> None:
        self.loaded = loaded
        self.instances = instances
        self.signature = signature
        self._where = f"{signature.name}() in {loaded.name}"

    def __call__(self, error: BaseException, live: Any, cancelled: bool,
                 interrupts_before: Optional[int] = None) -> BaseException:
        """What to raise for ``error`` from a call: wasmforge's own errors pass through,
        anything from wasm becomes a specific error and costs the instance.

        ``cancelled``: Plugin.cancel() was called while the call ran; ``interrupts_before``:
        the SIGINT count when it started (None: the plugin has no deadline, only SIGINT interrupts it).
        """
        if (isinstance(error, (ArgumentError, PluginCallError, MemoryAccessError))
                and (not isinstance(live, LiveInstance) or error is not live.state.host_error)):
            return error
        if not isinstance(live, LiveInstance):
            return error  # the instance could not even be made: that error says why
        if not isinstance(error, Exception):
            # KeyboardInterrupt (Ctrl-C stopped the wasm, or came as it returned): its state is unknown.
            self.instances.discard(live)
            return error
        host_error = live.state.host_error
        if host_error is not None and (
            error is host_error or error is host_error.__cause__
            or isinstance(error, HostFunctionFailed) and error.original is host_error
        ):
            self.instances.discard(live)
            kind = type(host_error) if isinstance(host_error, PluginCallError) else HostFunctionError
            failure = kind(f"{self._where} failed: {host_error}", plugin=self.loaded.name, function=self.signature.name)
            failure.__cause__ = host_error.__cause__
            return failure
        if not isinstance(error, (wasmtime.Trap, wasmtime.WasmtimeError)):
            return error
        self.instances.discard(live)
        code = error.trap_code if isinstance(error, wasmtime.Trap) else None
        if code == wasmtime.TrapCode.INTERRUPT and not cancelled and (
            not self.loaded.limits.uses_epochs  # without a deadline of its own, only Ctrl-C interrupts it
            or interrupts_before is not None and interrupt.stopped_by_sigint(self.loaded.engine, interrupts_before)
        ):
            return interrupt.interrupted_error(self._where, self.loaded.name, self.signature.name)
        failure = self.trap(error, live, cancelled)
        failure.__cause__ = error  # wasmtime's own error, with its wasm backtrace, for library users
        return failure

    def trap(self, error: BaseException, live: LiveInstance, cancelled: bool) -> PluginCallError:
        """The specific error for a trap (or a wasmtime error) in this call."""
        limits = self.loaded.limits
        names = {"plugin": self.loaded.name, "function": self.signature.name}
        report = live.state.panic_report
        if report is not None:
            message = str(report.get("message", ""))
            file, line, column = report.get("file"), report.get("line"), report.get("column")
            where = f" at {file}:{line}:{column}" if file else ""
            return PluginPanic(f"{self._where} panicked{where}: {message}", panic_message=message,
                               file=file, line=line, column=column, **names)
        if live.state.out_of_memory is not None:
            return PluginMemoryLimit(
                f"{self._where} ran out of memory: it asked for {format_bytes(live.state.out_of_memory)} more with "
                f"{format_bytes(live.memory_size)} in use (memory limit {limits.describe_memory()})",
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
        if limits.memory is not None:
            # Plain wasm cannot say it ran out, and wasmtime does not say it refused a memory.grow.
            # A grow is refused when it asks for more than the room left; a trap with less room
            # left than the memory grew since the instance started (or than a page) is taken as
            # one: a bomb growing in steps of any size trips it, a trap with ample room does not.
            in_use = live.memory_size
            room = limits.memory - in_use
            if room < _PAGE:
                return PluginMemoryLimit(
                    f"{self._where} trapped with its memory at the limit of {limits.describe_memory()}: "
                    f"{first_line(error)}", **names,
                )
            if room < in_use - live.started_memory:
                return PluginMemoryLimit(
                    f"{self._where} trapped with {format_bytes(in_use)} in use, too close to its memory limit "
                    f"of {limits.describe_memory()} to grow again: {first_line(error)}", **names,
                )
        if not isinstance(error, wasmtime.Trap):
            return PluginTrap(f"{self._where} failed: {first_line(error)}", **names)
        return PluginTrap(f"{self._where} trapped: {first_line(error)}", trap_code=describe_trap_code(code), **names)


def describe_trap_code(code: Any) -> Optional[str]:
    return code.name.lower() if code is not None else None
