"""PluginFunction: one export, its conversions worked out once, and the call path.

The call path is built once per export (:meth:`PluginFunction._build`): a
plugin with no limits and one instance gets a lean path (convert, lock, fast
call, unlock); limits, WASI output and instance pools add only the steps they
need. Every failure inside a call becomes a specific WasmforgeError naming the
plugin and the function; after any trap the instance is discarded so the next
call starts on a fresh one.
"""

from __future__ import annotations

import functools
import struct
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import wasmtime

from . import _interrupt
from ._fastcall import HostFunctionFailed, MemoryBoundsError
from ._imports import OUTPUT_MONITOR
from ._live import LiveInstance, describe_trap_code
from .abi.wasmtypes import not_numbers
from .abi.signature import Signature
from .abi.codec import F32_MAX, passes_as_is, STATUS_BAD_INPUT, STATUS_ERROR, STATUS_OK, decode_output, encode_input, number_from_wasm, number_to_wasm
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
from ._text import first_line, format_bytes
from .limits import TICKER

if TYPE_CHECKING:
    from .host import Plugin

_DESCRIPTOR = struct.Struct("<III")
_PAGE = 65536
_ALLOC_TYPES = (("i32",), ("i32",))


class PluginFunction:
    """One export, ready to call: ``plugin.function("add")(1, 2)``."""

    def __init__(self, plugin: "Plugin", signature: Signature) -> None:
        self.plugin = plugin
        self.signature = signature
        self.__name__ = signature.name
        self._where = f"{signature.name}() in {plugin.name}"
        self._native = signature.abi in ("native", "raw")
        #: Types no Python value stands for (v128, references): such a function cannot be called from Python.
        self._uncallable = not_numbers([p.wasm or "i32" for p in signature.params], signature.result_wasm)
        if self._native and not self._uncallable:
            self._to_wasm = [number_to_wasm(signature, i) for i in range(len(signature.params))]
            self._from_wasm = number_from_wasm(signature.returns if signature.abi == "native" else "",
                                               self._invalid_result)
            self._wasm_types = ([p.wasm or "i32" for p in signature.params], list(signature.result_wasm))
        #: The call path itself: a plain function, which attribute access hands out directly.
        self.call: Callable[..., Any] = self._build()

    def __call__(self, *args: Any) -> Any:
        return self.call(*args)

    def __repr__(self) -> str:
        return f"<plugin function {self.signature} of {self.plugin.name}>"

    # ---- building the call path ----

    def _build(self) -> Callable[..., Any]:
        plugin = self.plugin
        lean = self._native and not plugin._guarded and plugin._pool is None
        call = self._refuse() if self._uncallable else self._lean_native() if lean else self._general()
        if plugin._imports.functions:
            call = _interrupt.sigint_safe(call)  # it calls Python: Ctrl-C must not land in wasmtime-py's callback
        call.__name__ = call.__qualname__ = self.signature.name
        call.__doc__ = str(self.signature)
        call.signature = self.signature  # type: ignore[attr-defined]
        call.plugin = plugin  # type: ignore[attr-defined]
        return call

    def _arity_error(self, given: int) -> ArgumentError:
        return ArgumentError(f"{self.signature.describe_arity()}, got {given}")

    def _invalid_result(self, value: Any) -> PluginProtocolError:
        return PluginProtocolError(
            f"{self._where} returned {value}, which is not a valid {self.signature.returns}",
            plugin=self.plugin.name, function=self.signature.name,
        )

    def _refuse(self) -> Callable[..., Any]:
        """The call of a function whose values cannot cross into Python: always an ArgumentError."""
        message = (f"{self.signature} takes or returns {', '.join(self._uncallable)}, which wasmforge cannot pass "
                   "between Python and wasm (numbers only: i32, i64, f32, f64); call it from wasm code instead")

        def refuse(*args: Any) -> Any:
            raise ArgumentError(message)
        return refuse

    def _lean_native(self) -> Callable[..., Any]:
        """Numbers in, a number out, no limits, one instance: nothing the call does not need.

        Generated per signature, so the range check of each argument is inline
        (the converter runs only when the fast check fails: to raise, or to
        turn an unsigned value into its signed bit pattern).
        """
        plugin, signature = self.plugin, self.signature
        params, results = self._wasm_types
        namespace: dict[str, Any] = {
            "interrupts": _interrupt.STATE,
            "ident": _interrupt.get_ident,
            "MAIN": _interrupt.MAIN_THREAD,
            "FAR": _interrupt.FAR,
            "plugin": plugin,
            "acquire": plugin._lock.acquire,
            "release": plugin._lock.release,
            "name": signature.name,
            "types": (params, results),
            "export": self._export,
            "failure": self._failure,
            "arity_error": self._arity_error,
            "fix": self._from_wasm,
            **{f"c{i}": convert for i, convert in enumerate(self._to_wasm)},
        }
        types_key = tuple(p.type for p in signature.params)
        code = _lean_code(types_key, signature.abi, self._from_wasm is not None, plugin.limits.interruptible)
        exec(code, namespace)  # noqa: S102
        return namespace["call"]  # type: ignore[no-any-return]

    def _general(self) -> Callable[..., Any]:
        """Every other case: buffers, limits, WASI output, instance pools."""
        plugin, limits = self.plugin, self.plugin.limits
        arity, arity_error, failure = len(self.signature.params), self._arity_error, self._failure
        invoke = self._invoke_native if self._native else self._buffer_invoker()
        timed, armed, period = limits.timeout is not None, plugin._guarded, limits.epoch_period
        interruptible, token = limits.interruptible, _interrupt.current_token
        interrupts = _interrupt.STATE

        if not armed and plugin._pool is None:
            # A buffer call with no limits and one instance: just the lock around the work.
            acquire, release = plugin._lock.acquire, plugin._lock.release

            def lean(*args: Any) -> Any:
                if len(args) != arity:
                    raise arity_error(len(args))
                acquire()
                live = plugin._current
                try:
                    if live is None:
                        live = plugin._live()
                    if interruptible and live.armed is not token():
                        live.follow_thread()
                    return invoke(live, args)
                except BaseException as error:
                    failed = failure(error, live, False)
                    raise failed from failed.__cause__
                finally:
                    release()

            return lean

        def call(*args: Any) -> Any:
            if len(args) != arity:
                raise arity_error(len(args))
            live = plugin._acquire()
            try:
                cancels, interrupts_before = plugin._cancels, interrupts.interrupts
                live.arm(limits)
                outputs = live.state.outputs
                # Delivering output is part of the call: it gets what is left of the time limit.
                deadline = time.monotonic() + limits.timeout if limits.timeout is not None and outputs else None
                if outputs:
                    OUTPUT_MONITOR.enter(outputs)
                if timed:
                    TICKER.enter(plugin._engine, period)
                try:
                    result = invoke(live, args)
                except BaseException as error:
                    failed = failure(error, live, plugin._cancels != cancels, interrupts_before)
                    if outputs:
                        live.state.drain_output(deadline)  # what it wrote before it failed
                    raise failed from failed.__cause__
                finally:
                    if timed:
                        TICKER.leave(plugin._engine)
                    if outputs:
                        OUTPUT_MONITOR.leave(outputs)
                if outputs and not live.state.drain_output(deadline):
                    raise PluginTimeout(f"{self._where} exceeded its time limit of {limits.timeout:g} s "
                                        "while its output was delivered; the rest of its output was dropped",
                                        plugin=plugin.name, function=self.signature.name)
                return result
            finally:
                plugin._release(live)

        return call

    # ---- the two calling conventions (docs/ABI.md) ----

    def _export(self, live: LiveInstance, name: str, types: Sequence[Sequence[str]] = ((), ())) -> Callable[..., Any]:
        fast = live.bound(name, *types)
        if fast is None:
            raise PluginProtocolError(
                f"{self.plugin.name} does not export {name}, which wasmforge plugins must",
                plugin=self.plugin.name, function=self.signature.name,
            )
        return fast

    def _invoke_native(self, live: LiveInstance, args: tuple[Any, ...]) -> Any:
        values = [convert(value) for convert, value in zip(self._to_wasm, args)]
        result = self._export(live, self.signature.name, self._wasm_types)(*values)
        return self._from_wasm(result) if self._from_wasm is not None and result is not None else result

    def _buffer_invoker(self) -> Callable[[LiveInstance, tuple[Any, ...]], Any]:
        """The buffer call (docs/ABI.md) for this export, with its encoder and result reader chosen once."""
        signature, plugin_name, where = self.signature, self.plugin.name, self._where
        names = {"plugin": plugin_name, "function": signature.name}
        encode, read_result = _encoder(signature), self._result_reader()
        export, name, limits = self._export, signature.name, self.plugin.limits

        def outside(live: LiveInstance, what: str, action: str, length: int, offset: int) -> PluginProtocolError:
            return PluginProtocolError(
                f"{where} returned {what} outside its memory: {live._outside(action, length, offset)}", **names
            )

        def invoke(live: LiveInstance, args: tuple[Any, ...]) -> Any:
            memory = live.fast_memory
            if memory is None:
                raise PluginProtocolError(f"{where}: {plugin_name} exports no memory, which buffer calls need", **names)
            payload = encode(args)
            length, pointer, bound = len(payload), 0, live._bound
            if length:
                pointer = (bound.get("__wf_alloc") or export(live, "__wf_alloc", _ALLOC_TYPES))(length) & 0xFFFFFFFF
                if not pointer:
                    live.state.out_of_memory = None  # reported, and answered here: not a trap to explain later
                    raise PluginMemoryLimit(
                        f"{where}: the plugin could not allocate {format_bytes(length)} for the arguments "
                        f"(memory limit {limits.describe_memory()})", **names,
                    )
                try:
                    memory.write(pointer, payload)
                except MemoryBoundsError:
                    raise outside(live, "an argument buffer", "write", length, pointer) from None
            address = (bound.get(name) or export(live, name))(pointer, length)
            if type(address) is not int:
                raise PluginProtocolError(f"{where} returned {address!r}, not the address of a result descriptor",
                                          **names)
            try:
                status, out_ptr, out_len = memory.unpack(_DESCRIPTOR, address & 0xFFFFFFFF)
            except MemoryBoundsError:
                raise outside(live, "a result descriptor", "read", _DESCRIPTOR.size, address & 0xFFFFFFFF) from None
            try:
                if status == STATUS_OK:
                    return read_result(memory, out_ptr, out_len)
                message = memory.read(out_ptr, out_len).decode("utf-8", errors="replace")
            except MemoryBoundsError:
                raise outside(live, "a result", "read", out_len, out_ptr) from None
            if status == STATUS_ERROR:
                raise PluginError(message, **names)
            if status == STATUS_BAD_INPUT:
                raise ArgumentError(f"{signature}: {message}")
            raise PluginProtocolError(f"{where} returned unknown status {status}", **names)

        return invoke

    def _result_reader(self) -> Callable[[Any, int, int], Any]:
        """Reads a successful result out of memory as the signature's output encoding says."""
        signature, plugin_name, where = self.signature, self.plugin.name, self._where
        output = signature.output
        if output == "unit":
            return lambda memory, pointer, length: None
        if output == "bytes":
            return lambda memory, pointer, length: memory.read(pointer, length)
        if output == "str":
            def read_text(memory: Any, pointer: int, length: int) -> str:
                try:
                    return memory.read_text(pointer, length)  # type: ignore[no-any-return]
                except UnicodeDecodeError as error:
                    raise PluginProtocolError(
                        f"{where} returned invalid UTF-8 ({error.reason} at byte {error.start}) for {signature.returns}",
                        plugin=plugin_name, function=signature.name,
                    ) from None
            return read_text
        return lambda memory, pointer, length: decode_output(signature, memory.read(pointer, length), plugin_name)

    # ---- failures ----

    def _failure(self, error: BaseException, live: Any, cancelled: bool,
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
            self.plugin._discard_instance(live)
            return error
        host_error = live.state.host_error
        if host_error is not None and (
            error is host_error or error is host_error.__cause__
            or isinstance(error, HostFunctionFailed) and error.original is host_error
        ):
            self.plugin._discard_instance(live)
            kind = type(host_error) if isinstance(host_error, PluginCallError) else HostFunctionError
            failure = kind(f"{self._where} failed: {host_error}", plugin=self.plugin.name, function=self.signature.name)
            failure.__cause__ = host_error.__cause__
            return failure
        if not isinstance(error, (wasmtime.Trap, wasmtime.WasmtimeError)):
            return error
        self.plugin._discard_instance(live)
        code = error.trap_code if isinstance(error, wasmtime.Trap) else None
        if code == wasmtime.TrapCode.INTERRUPT and not cancelled and (
            not self.plugin.limits.uses_epochs  # without a deadline of its own, only Ctrl-C interrupts it
            or interrupts_before is not None and _interrupt.stopped_by_sigint(self.plugin._engine, interrupts_before)
        ):
            return _interrupt.interrupted_error(self._where, self.plugin.name, self.signature.name)
        return self._trap_failure(error, live, cancelled)

    def _trap_failure(self, error: BaseException, live: LiveInstance, cancelled: bool) -> PluginCallError:
        """The specific error for a trap (or a wasmtime error) in this call."""
        limits = self.plugin.limits
        names = {"plugin": self.plugin.name, "function": self.signature.name}
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


def _encoder(signature: Signature) -> Callable[[tuple[Any, ...]], Any]:
    """The input buffer for a call: strings and bytes of the exact type go as they are, the rest through abi."""
    if signature.input == "str":
        def encode_text(args: tuple[Any, ...]) -> Any:
            value = args[0]
            if type(value) is str:
                try:
                    return value.encode("utf-8")
                except UnicodeEncodeError:
                    pass  # lone surrogates: encode_input names the argument
            return encode_input(signature, args)
        return encode_text
    if signature.input == "bytes":
        return lambda args: args[0] if type(args[0]) is bytes else encode_input(signature, args)
    return lambda args: encode_input(signature, args)


@functools.lru_cache(maxsize=256)
def _lean_code(param_types: tuple[str, ...], abi: str, fixes_result: bool, interruptible: bool) -> Any:
    """The compiled lean call for one signature shape: compiled once, bound per export.

    ``interruptible``: re-arm the store for Ctrl-C when the calling thread (or an interrupt) changed its arming.
    """
    names = [f"a{i}" for i in range(len(param_types))]
    lines = ["def call(*args):", f"    if len(args) != {len(names)}: raise arity_error(len(args))"]
    if names:
        lines.append(f"    {', '.join(names)}, = args")
    for index, rust_type in enumerate(param_types):
        lines.append(f"    {_inline_check(f'a{index}', rust_type, abi)}: a{index} = c{index}(a{index})")
    lines += [
        "    acquire()",
        "    live = plugin._current",
        "    try:",
        "        if live is None: live = plugin._live()",
        *(["        if live.armed is not (interrupts.main if ident() == MAIN else FAR): live.follow_thread()"]
          if interruptible else []),
        f"        result = (live._bound.get(name) or export(live, name, types))({', '.join(names)})",
        "    except BaseException as error:",
        "        failed = failure(error, live, False)",
        "        raise failed from failed.__cause__",
        "    finally:",
        "        release()",
        "    return fix(result)" if fixes_result else "    return result",
    ]
    return compile("\n".join(lines), "<wasmforge call>", "exec")


def _inline_check(variable: str, rust_type: str, abi: str) -> str:
    """A condition that is False when ``variable`` can go to wasm as it is, True when its converter must run."""
    if rust_type == "f64":
        return f"if type({variable}) is not float"
    if rust_type == "f32":  # a finite float past f32's range would become infinity: the converter refuses it
        return f"if type({variable}) is not float or -{F32_MAX!r} > {variable} or {variable} > {F32_MAX!r}"
    unchanged = passes_as_is(rust_type)
    if unchanged is None:
        return "if True"  # bool: the converter decides
    low, high = unchanged
    return f"if type({variable}) is not int or not {low} <= {variable} <= {high}"
