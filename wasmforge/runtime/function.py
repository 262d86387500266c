"""PluginFunction: one export, its conversions worked out once, and the call path.

The call path is built once per export (:meth:`PluginFunction._build`) from
what the plugin is (loaded.py) and who holds its instances (instances.py),
both passed in: a plugin with no limits and one instance gets a lean path
(convert, then the fast call inline: without the lock while one thread alone
calls, instances.py's solo path, else inside it); limits, WASI output and
instance pools add only the steps they need. What a failed call raises is failures.py's.
"""

from __future__ import annotations

import functools
import inspect
import struct
import time
import types
from typing import Any, Callable, NamedTuple, NoReturn, Optional, Sequence

import wasmtime

from .._text import format_bytes
from ..abi.codec import (
    F32_MAX,
    STATUS_BAD_INPUT,
    STATUS_ERROR,
    STATUS_ERROR_DATA,
    STATUS_OK,
    decode_error_data,
    decode_output,
    encode_input,
    msgpack_decoder,
    msgpack_encoder,
    number_from_wasm,
    number_to_wasm,
    passes_as_is,
)
from ..abi.pytypes import field_checker, python_signature
from ..abi.signature import Signature
from ..abi.wasmtypes import func_type, not_numbers
from ..errors import ArgumentError, PluginError, PluginMemoryLimit, PluginProtocolError, PluginTimeout
from . import interrupt
from .engines import TICKER
from .failures import CallFailures
from .fastcall import FAST_CALL_FILE, FastMemory, MemoryBoundsError, inline_call
from .instance import LiveInstance
from .instances import Instances, SingleInstance
from .loaded import LoadedPlugin
from .wasi import OUTPUT_MONITOR

_DESCRIPTOR = struct.Struct("<III")
#: The descriptor of a guest with an input buffer (docs/ABI.md): ``[status, out_ptr, out_len, in_ptr, in_cap]``.
_WIDE_DESCRIPTOR = struct.Struct("<IIIII")
_ALLOC_TYPES = (("i32",), ("i32",))


class _BufferSteps(NamedTuple):
    """The parts of a buffer call chosen once per export (PluginFunction._buffer_steps)."""

    encode: Callable[[tuple[Any, ...]], Any]
    read: Callable[[Any, int, int], Any]
    outside: Callable[..., PluginProtocolError]
    no_memory: Callable[[], PluginProtocolError]
    grow: Callable[[LiveInstance, int], int]
    finish: Callable[..., Any]
    wide: bool
    names: dict[str, str]


class PluginFunction:
    """One export, ready to call: ``plugin.function("add")(1, 2)``."""

    def __init__(self, loaded: LoadedPlugin, instances: Instances, signature: Signature) -> None:
        self.loaded = loaded
        self.instances = instances
        self.signature = signature
        self.__name__ = signature.name
        self._where = f"{signature.name}() in {loaded.name}"
        self._failure = CallFailures(loaded, instances, signature)
        self._native = signature.abi in ("native", "raw")
        #: Types no Python value stands for (v128, references): such a function cannot be called from Python.
        self._uncallable = not_numbers([p.wasm or "i32" for p in signature.params], signature.result_wasm)
        if self._native and not self._uncallable:
            self._to_wasm = [number_to_wasm(signature, i) for i in range(len(signature.params))]
            self._from_wasm = number_from_wasm(signature.returns if signature.abi == "native" else "",
                                               self._invalid_result)
            self._wasm_types = ([p.wasm or "i32" for p in signature.params], list(signature.result_wasm))
        #: What ``inspect.signature`` and ``help`` show: ``(one: int, two: int) -> int``.
        self.__signature__ = self.python_signature()
        #: The call path as a plain function whose first parameter is what it is bound to (and ignores):
        #: bound as a method, it costs a call no more than the function itself (functools.partial
        #: costs about 0.04 µs), and a method of a plugin's Recipe pickles as that plugin's export.
        self.unbound: Callable[..., Any] = self._build()
        #: The call path bound to this object: ``plugin.function("add").call(1, 2)``.
        self.call: Callable[..., Any] = types.MethodType(self.unbound, self)
        self.__doc__ = self.unbound.__doc__

    def __call__(self, *args: Any, **options: Any) -> Any:
        return self.call(*args, **options)

    def __repr__(self) -> str:
        return f"<plugin function {self.signature} of {self.loaded.name}>"

    # ---- building the call path ----

    def _build(self) -> Callable[..., Any]:
        holder = self.instances
        lean = (self._native and not self._uncallable and len(self._wasm_types[1]) <= 1 and not self.loaded.guarded
                and isinstance(holder, SingleInstance))
        if self._uncallable:
            call = self._refuse()
        elif lean and isinstance(holder, SingleInstance):
            call = self._lean_native(holder)
        elif not self.loaded.guarded and isinstance(holder, SingleInstance):
            call = self._lean_buffer(holder)
        else:
            call = self._general()
        if self.loaded.imports.functions:
            call = interrupt.sigint_safe(call)  # it calls Python: Ctrl-C must not land in wasmtime-py's callback
        call.__name__ = call.__qualname__ = self.signature.name
        call.__doc__ = self.signature.doc or str(self.signature)
        call.signature = self.signature  # type: ignore[attr-defined]
        # What inspect and help show for the bound method: they drop this first parameter.
        python = self.__signature__
        owner = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
        call.__signature__ = python.replace(parameters=[owner, *python.parameters.values()])  # type: ignore[attr-defined]
        return call

    def python_signature(self) -> inspect.Signature:
        """``(one: int, two: int) -> int``: what ``inspect.signature`` and ``help`` show for the call."""
        params = [(p.name, p.type) for p in self.signature.params]
        return python_signature(params, self.signature.returns, self.loaded.types, self.loaded.python_types)

    def _arity_error(self, given: int) -> ArgumentError:
        return ArgumentError(f"{self.signature.describe_arity()}, got {given}")

    def _too_few(self, given: int) -> NoReturn:
        raise self._arity_error(given)

    def _invalid_result(self, value: Any) -> PluginProtocolError:
        return PluginProtocolError(
            f"{self._where} returned {value}, which is not a valid {self.signature.returns}",
            plugin=self.loaded.name, function=self.signature.name,
        )

    def _refuse(self) -> Callable[..., Any]:
        """The call of a function whose values cannot cross into Python: always an ArgumentError."""
        message = (f"{self.signature} takes or returns {', '.join(self._uncallable)}, which wasmforge cannot pass "
                   "between Python and wasm (numbers only: i32, i64, f32, f64); call it from wasm code instead")

        def refuse(owner: Any, *args: Any) -> Any:
            raise ArgumentError(message)
        return refuse

    def _lean_native(self, holder: SingleInstance) -> Callable[..., Any]:
        """Numbers in, a number out, no limits, one instance: nothing the call does not need.

        Generated per signature, so the range check of each argument is inline
        (the converter runs only when the fast check fails: to raise, or to
        turn an unsigned value into its signed bit pattern), and so is the C call
        itself (fastcall.inline_call), with the bound instance's ctypes objects as
        globals that :func:`rebind` replaces when the instance changes. The thread
        that alone calls takes no lock (the solo path, instances.py); the others
        take it. The code names only the globals it is given here.
        """
        signature = self.signature
        params, results = self._wasm_types
        namespace = self._lean_globals(holder)
        namespace.update({
            "arity_error": self._arity_error,
            "too_few": self._too_few,
            "given": _given,
            "fix": self._from_wasm,
            **{f"c{i}": convert for i, convert in enumerate(self._to_wasm)},
        })
        wanted = f"its metadata says ({', '.join(params)}) -> ({', '.join(results)})"
        namespace["rebind"] = self._rebinder(holder, namespace, (tuple(params), tuple(results)), wanted)
        types_key = tuple(p.type for p in signature.params)
        code = _lean_code(types_key, tuple(params), tuple(results), self._from_wasm is not None,
                          self.loaded.limits.interruptible)
        exec(code, namespace)  # noqa: S102
        return namespace["call"]  # type: ignore[no-any-return]

    def _lean_globals(self, holder: SingleInstance) -> dict[str, Any]:
        """The globals every generated lean call reads: the holder and its lock, the thread checks, failures."""
        return {
            "MISSING": _MISSING,
            "interrupts": interrupt.STATE,
            "ident": interrupt.get_ident,
            "MAIN": interrupt.MAIN_THREAD,
            "FAR": interrupt.FAR,
            "holder": holder,
            "claim": holder.claim,
            "drain": holder.drain,
            "acquire": holder.lock.acquire,
            "release": holder.lock.release,
            "owned": holder.owned,
            "bound": _MISSING,  # never an instance, nor None (no instance yet): the first call binds
            "failure": self._failure,
        }

    def _rebinder(self, holder: SingleInstance, namespace: dict[str, Any], wasm_types: tuple[tuple[str, ...], ...],
                  wanted: str, no_memory: Optional[Callable[[], PluginProtocolError]] = None,
                  ) -> Callable[[Optional[LiveInstance]], LiveInstance]:
        """``rebind`` for generated code: points its globals at ``live``'s export (a fresh instance if None),
        after checking the export is ``wasm_types`` (``wanted`` says why) and, given ``no_memory``, that
        the instance has a memory (``memory_of_bound``)."""
        export, name, plugin_name = self._export, self.signature.name, self.loaded.name

        def rebind(live: Optional[LiveInstance]) -> LiveInstance:
            if live is None:
                live = holder.renew()
            if no_memory is not None and live.fast_memory is None:
                raise no_memory()
            export(live, name)  # PluginProtocolError if it is missing
            fast = live.fast_func(name)
            assert fast is not None and fast.parts["wasm_memory"] is None  # memories never move (engines.py)
            if (fast.params, fast.results) != wasm_types:
                raise PluginProtocolError(
                    f"{plugin_name} exports {name} as ({', '.join(fast.params)}) -> ({', '.join(fast.results)}), "
                    f"but {wanted}", plugin=plugin_name, function=name,
                )
            namespace.update(fast.parts)
            namespace["bound"], namespace["memory_of_bound"] = live, live.fast_memory
            return live

        return rebind

    def _lean_buffer(self, holder: SingleInstance) -> Callable[..., Any]:
        """A buffer call (or a native one whose types the lean code cannot take) with no limits and
        one instance: the work alone on the solo path, else inside the lock, as the lean native path does."""
        if not self._native and _has_input_buffer(self.loaded):
            return self._lean_one_trip(holder)
        arity, arity_error, failure = len(self.signature.params), self._arity_error, self._failure
        invoke = self._invoke_native if self._native else self._buffer_invoker()
        into = self._out_buffer
        interruptible, token = self.loaded.limits.interruptible, interrupt.current_token
        acquire, release, owned, renew = holder.lock.acquire, holder.lock.release, holder.owned, holder.renew
        claim, drain, ident = holder.claim, holder.drain, interrupt.get_ident

        def lean(owner: Any, *args: Any, out: Any = None) -> Any:
            if len(args) != arity:
                raise arity_error(len(args))
            if out is not None:
                out = into(out)
            me = ident()
            solo = holder.solo
            if me == solo or (solo != 0 and claim(me)):  # the solo path (instances.py)
                holder.depth += 1
                if holder.solo == me:
                    live = None
                    try:
                        live = holder.current
                        if live is None:
                            live = renew()
                        if interruptible and live.armed is not token():
                            live.follow_thread()
                        result = invoke(live, args, out)
                    except BaseException as error:
                        holder.depth -= 1
                        failed = failure(error, live, False)
                        raise failed from failed.__cause__
                    holder.depth -= 1
                    return result
                holder.depth -= 1  # another thread ended the solo path since: take the lock
            live = None
            try:
                acquire()
                if holder.undrained:
                    drain(me)
                live = holder.current
                if live is None:
                    live = renew()
                if interruptible and live.armed is not token():
                    live.follow_thread()
                result = invoke(live, args, out)
            except BaseException as error:
                try:
                    failed = failure(error, live, False)
                finally:
                    if owned():  # not owned: Ctrl-C interrupted acquire() itself, before it took the lock
                        release()
                raise failed from failed.__cause__
            release()
            return result

        return lean

    def _lean_one_trip(self, holder: SingleInstance) -> Callable[..., Any]:
        """A buffer call in one trip (a guest with an input buffer), no limits, one instance: generated
        like the lean native path, with the export's C call, the write of the arguments, the read of
        the descriptor and of a plain result inline; ``finish`` takes every other outcome. Its frames
        show a solo call running the way the lean native path's do (instances.py)."""
        steps = self._buffer_steps()
        namespace = self._lean_globals(holder)
        namespace.update({
            "arity": len(self.signature.params),
            "arity_error": self._arity_error,
            "into": self._out_buffer,
            "encode": steps.encode,
            "grow": steps.grow,
            "outside": steps.outside,
            "finish": steps.finish,
            "read_result": steps.read,
            "unpack_from": _WIDE_DESCRIPTOR.unpack_from,
            "DESCRIPTOR_SIZE": _WIDE_DESCRIPTOR.size,
        })
        namespace["rebind"] = self._rebinder(holder, namespace, (("i32", "i32"), ("i32",)),
                                             "a buffer call is (i32, i32) -> (i32)", steps.no_memory)
        code = _one_trip_code(self.loaded.limits.interruptible, self.signature.input == "bytes",
                              self.signature.output == "bytes")
        exec(code, namespace)  # noqa: S102
        return namespace["call"]  # type: ignore[no-any-return]

    def _general(self) -> Callable[..., Any]:
        """Every other case: limits to arm, WASI output to forward, instance pools."""
        holder, loaded, limits = self.instances, self.loaded, self.loaded.limits
        arity, arity_error, failure = len(self.signature.params), self._arity_error, self._failure
        invoke = self._invoke_native if self._native else self._buffer_invoker()
        timed, period, engine = limits.timeout is not None, limits.epoch_period, loaded.engine
        acquire, release, interrupts = holder.acquire, holder.release, interrupt.STATE

        into = self._out_buffer

        def call(owner: Any, *args: Any, out: Any = None) -> Any:
            if len(args) != arity:
                raise arity_error(len(args))
            if out is not None:
                out = into(out)
            taken: list[object] = []
            try:
                live = acquire(taken)
                cancels, interrupts_before = holder.cancels, interrupts.interrupts
                live.arm(limits, cancels + interrupts_before)
                outputs = live.state.outputs
                # Delivering output is part of the call: it gets what is left of the time limit.
                deadline = time.monotonic() + limits.timeout if limits.timeout is not None and outputs else None
                if outputs:
                    OUTPUT_MONITOR.enter(outputs)
                if timed:
                    TICKER.enter(engine, period)
                try:
                    result = invoke(live, args, out)
                except BaseException as error:
                    failed = failure(error, live, holder.cancels != cancels, interrupts_before)
                    if outputs:
                        live.state.drain_output(deadline)  # what it wrote before it failed
                    raise failed from failed.__cause__
                finally:
                    if timed:
                        TICKER.leave(engine)
                    if outputs:
                        OUTPUT_MONITOR.leave(outputs)
                if outputs and not live.state.drain_output(deadline):
                    raise PluginTimeout(f"{self._where} exceeded its time limit of {limits.timeout:g} s "
                                        "while its output was delivered; the rest of its output was dropped",
                                        plugin=loaded.name, function=self.signature.name)
                return result
            finally:
                release(taken)

        return call

    # ---- the two calling conventions (docs/ABI.md) ----

    def _export(self, live: LiveInstance, name: str, types: Sequence[Sequence[str]] = ((), ())) -> Callable[..., Any]:
        fast = live.bound(name, *types)
        if fast is None:
            raise PluginProtocolError(
                f"{self.loaded.name} does not export {name}, which wasmforge plugins must",
                plugin=self.loaded.name, function=self.signature.name,
            )
        return fast

    def _out_buffer(self, out: Any) -> memoryview:
        """``out=``'s buffer as a writable byte view, checked before the call; ArgumentError otherwise."""
        if self.signature.output != "bytes":
            raise ArgumentError(f"{self.signature}: out= is for functions returning bytes (Vec<u8>)")
        try:
            view = memoryview(out)
        except TypeError:
            raise ArgumentError(f"{self.signature}: out= takes a writable buffer such as a bytearray, "
                                f"got {type(out).__name__}") from None
        if view.readonly or not view.c_contiguous:
            raise ArgumentError(f"{self.signature}: out= takes a writable, contiguous buffer such as a bytearray; "
                                f"this {type(out).__name__} is {'read-only' if view.readonly else 'not contiguous'}")
        return view.cast("B") if view.format != "B" or view.ndim != 1 else view

    def _invoke_native(self, live: LiveInstance, args: tuple[Any, ...], out: Any = None) -> Any:
        values = [convert(value) for convert, value in zip(self._to_wasm, args)]
        result = self._export(live, self.signature.name, self._wasm_types)(*values)
        return self._from_wasm(result) if self._from_wasm is not None and result is not None else result

    def _buffer_invoker(self) -> Callable[..., Any]:
        """The buffer call (docs/ABI.md) for this export, with its encoder and result reader chosen once."""
        steps = self._buffer_steps()
        encode, grow, outside, finish, read_result = steps.encode, steps.grow, steps.outside, steps.finish, steps.read
        export, name, where, names = self._export, self.signature.name, self._where, steps.names
        # A guest with an input buffer (it exports __wf_input) takes a call in one trip: the arguments
        # go where its last descriptor said the buffer is, and the export is the only call into wasm.
        # Without one (older plugins), __wf_alloc of a buffer per call first, as before.
        wide = steps.wide

        def invoke(live: LiveInstance, args: tuple[Any, ...], out: Optional[memoryview] = None) -> Any:
            memory = live.fast_memory
            if memory is None:
                raise steps.no_memory()
            payload = encode(args)
            length, pointer = len(payload), 0
            if length:
                pointer = live.in_ptr if length <= live.in_cap else grow(live, length)
                # Until this call's descriptor says otherwise the buffer is in use: a host function that
                # calls back into the plugin must not write its arguments there (docs/ABI.md, "Re-entrancy").
                live.in_cap = 0
                try:
                    memory.write(pointer, payload)
                except MemoryBoundsError:
                    raise outside(live, "an argument buffer", "write", length, pointer) from None
            else:
                live.in_cap = 0
            address = (live.calls.get(name) or export(live, name))(pointer, length)
            if type(address) is not int:
                raise PluginProtocolError(f"{where} returned {address!r}, not the address of a result descriptor",
                                          **names)
            try:
                if wide:
                    status, out_ptr, out_len, live.in_ptr, live.in_cap = memory.unpack(_WIDE_DESCRIPTOR,
                                                                                      address & 0xFFFFFFFF)
                else:
                    status, out_ptr, out_len = memory.unpack(_DESCRIPTOR, address & 0xFFFFFFFF)
            except MemoryBoundsError:
                size = _WIDE_DESCRIPTOR.size if wide else _DESCRIPTOR.size
                raise outside(live, "a result descriptor", "read", size, address & 0xFFFFFFFF) from None
            if status == STATUS_OK and out is None:
                try:
                    return read_result(memory, out_ptr, out_len)
                except MemoryBoundsError:
                    raise outside(live, "a result", "read", out_len, out_ptr) from None
            return finish(live, memory, status, out_ptr, out_len, out)

        return invoke

    def _buffer_steps(self) -> "_BufferSteps":
        """The steps of a buffer call that do not depend on how it is driven (``invoke`` or the lean code)."""
        signature, plugin_name, where = self.signature, self.loaded.name, self._where
        names = {"plugin": plugin_name, "function": signature.name}
        encode, read_result = _encoder(signature), self._result_reader()
        check = field_checker([(p.name, p.type) for p in signature.params], self.loaded.types, str(signature))
        if check is not None:
            encode = _checked_encoder(check, encode)
        export, limits = self._export, self.loaded.limits
        wide = _has_input_buffer(self.loaded)
        allocator = "__wf_input" if wide else "__wf_alloc"

        def outside(live: LiveInstance, what: str, action: str, length: int, offset: int) -> PluginProtocolError:
            return PluginProtocolError(
                f"{where} returned {what} outside its memory: {live.outside(action, length, offset)}", **names
            )

        def no_memory() -> PluginProtocolError:
            return PluginProtocolError(f"{where}: {plugin_name} exports no memory, which buffer calls need", **names)

        def grow(live: LiveInstance, length: int) -> int:
            """Room for ``length`` bytes of arguments: the guest's input buffer grown (or, from an older
            guest, a fresh allocation); PluginMemoryLimit when the guest cannot make it."""
            pointer: int = (live.calls.get(allocator) or export(live, allocator, _ALLOC_TYPES))(length) & 0xFFFFFFFF
            if not pointer:
                live.state.out_of_memory = None  # reported, and answered here: not a trap to explain later
                raise PluginMemoryLimit(
                    f"{where}: the plugin could not allocate {format_bytes(length)} for the arguments "
                    f"(memory limit {limits.describe_memory()})", **names,
                )
            return pointer

        def finish(live: LiveInstance, memory: FastMemory, status: int, out_ptr: int, out_len: int,
                   out: Optional[memoryview]) -> Any:
            """Everything after the descriptor but a plain result: ``out=``, and the failures by status."""
            try:
                if status == STATUS_OK:
                    if out is None:
                        return read_result(memory, out_ptr, out_len)
                    if out_len > out.nbytes:
                        raise ArgumentError(f"{where} returned {format_bytes(out_len)}, more than out= holds "
                                            f"({format_bytes(out.nbytes)}); nothing was copied")
                    memory.read_into(out_ptr, out_len, out)
                    return out_len
                message = memory.read(out_ptr, out_len).decode("utf-8", errors="replace")
            except MemoryBoundsError:
                raise outside(live, "a result", "read", out_len, out_ptr) from None
            if status == STATUS_ERROR:
                raise PluginError(message, **names)
            if status == STATUS_ERROR_DATA:
                message, data = decode_error_data(signature, message, plugin_name)
                raise PluginError(message, data=data, **names)
            if status == STATUS_BAD_INPUT:
                raise ArgumentError(f"{signature}: {message}")
            raise PluginProtocolError(f"{where} returned unknown status {status}", **names)

        return _BufferSteps(encode, read_result, outside, no_memory, grow, finish, wide, names)

    def _result_reader(self) -> Callable[[Any, int, int], Any]:
        """Reads a successful result out of memory as the signature's output encoding says."""
        signature, plugin_name, where = self.signature, self.loaded.name, self._where
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
                    ) from error
            return read_text
        if signature.wire == "msgpack":
            decode = msgpack_decoder(signature, plugin_name)
            return lambda memory, pointer, length: decode(memory.read(pointer, length))
        return lambda memory, pointer, length: decode_output(signature, memory.read(pointer, length), plugin_name)

def _has_input_buffer(loaded: LoadedPlugin) -> bool:
    """Whether the module exports ``__wf_input(i32) -> i32`` (docs/ABI.md): read once per compiled module."""
    reused = loaded.compiled.reused
    known: Optional[bool] = reused.get("input_buffer")
    if known is None:
        known = reused.setdefault("input_buffer", any(
            export.name == "__wf_input" and isinstance(export.type, wasmtime.FuncType)
            and func_type(export.type) == (("i32",), ("i32",))
            for export in loaded.module.exports))
    return known


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
        def encode_bytes(args: tuple[Any, ...]) -> Any:
            """bytes and bytearray as they are, a contiguous memoryview as bytes: copied once, into wasm memory."""
            value = args[0]
            kind = type(value)
            if kind is bytes or kind is bytearray:
                return value
            if kind is memoryview and value.c_contiguous:
                return value if value.format == "B" and value.ndim == 1 else value.cast("B")
            return encode_input(signature, args)
        return encode_bytes
    if signature.wire == "msgpack" and signature.input == "json":
        return msgpack_encoder(signature)
    return lambda args: encode_input(signature, args)


def _checked_encoder(check: Callable[[Sequence[Any]], None],
                     encode: Callable[[tuple[Any, ...]], Any]) -> Callable[[tuple[Any, ...]], Any]:
    """``encode``, after a dict argument was checked for the fields its #[plugin_type] struct requires."""
    def checked(args: tuple[Any, ...]) -> Any:
        check(args)
        return encode(args)
    return checked


@functools.lru_cache(maxsize=256)
def _lean_code(param_types: tuple[str, ...], params: tuple[str, ...], results: tuple[str, ...], fixes_result: bool,
               interruptible: bool) -> Any:
    """The compiled lean call for one signature shape: compiled once, bound per export.

    Two functions: ``call``, the solo path (no lock: instances.py's SingleInstance says why
    that is safe), which hands over to ``locked`` once another thread has called.
    ``call``'s first parameter is what it is bound to as a method (PluginFunction.unbound).
    Arguments are positional parameters with a marker default (no ``*args`` tuple to make
    and unpack); a missing or extra one is the same ArgumentError as before.
    ``interruptible``: re-arm the store for Ctrl-C when the calling thread (or an interrupt) changed its arming.
    The solo and locked halves are :func:`_solo_then_locked`'s.
    """
    names = [f"a{i}" for i in range(len(param_types))]
    arguments = "".join(f"{name}=MISSING, " for name in names)
    count = f"given(more, ({''.join(n + ', ' for n in names)}))"
    head = [
        f"def call(owner, {arguments}*more):",
        f"    if more: raise arity_error({count})",
        # A missing argument is the marker, which no fast check passes: it is caught on the slow side.
        *(f"    {_inline_check(f'a{index}', rust_type)}: "
          f"a{index} = c{index}(a{index}) if a{index} is not MISSING else too_few({count})"
          for index, rust_type in enumerate(param_types)),
    ]
    body = [*_bind_instance(interruptible), *inline_call(params, results, names, "result")]
    lines = _solo_then_locked(head, names, body, "fix(result)" if fixes_result else "result")
    return compile("\n".join(lines), FAST_CALL_FILE, "exec")


def _bind_instance(interruptible: bool) -> list[str]:
    """The first lines of a generated call's work: ``live``, bound (re-bound after a trap replaced it),
    and with ``interruptible`` armed for Ctrl-C as the calling thread needs."""
    return [
        "live = holder.current",
        "if live is not bound: live = rebind(live)",
        *(["if live.armed is not (interrupts.main if me == MAIN else FAR): live.follow_thread()"]
          if interruptible else []),
    ]


def _solo_then_locked(head: list[str], passed: Sequence[str], body: list[str], result: str) -> list[str]:
    """The two functions of every generated lean call: ``call`` (``head``, its checked arguments,
    then the solo path: ``body`` with no lock, as instances.py's SingleInstance says) and
    ``locked`` (``body`` under the lock, once another thread has called), both returning ``result``.
    ``passed``: the locals ``call`` hands ``locked`` besides the thread id.

    In ``locked``, the lock is taken inside the ``try`` and released there only if this thread
    owns it: a KeyboardInterrupt that Python raises the moment ``acquire()`` returns cannot
    leave it held, and one that interrupts ``acquire()`` itself (waiting for another thread)
    does not release a lock it never took. Nothing is added to the path of a call that succeeds.
    """
    handed = ", ".join(["me", *passed])
    return [
        *head,
        "    me = ident()",
        "    solo = holder.solo",
        f"    if me != solo and (solo == 0 or not claim(me)): return locked({handed})",
        "    live = None",
        "    try:",
        *(f"        {line}" for line in body),
        "    except BaseException as error:",
        "        failed = failure(error, live, False)",
        "        raise failed from failed.__cause__",
        f"    return {result}",
        "",
        f"def locked({handed}):",
        "    live = None",
        "    try:",
        "        acquire()",
        "        if holder.undrained: drain(me)",
        *(f"        {line}" for line in body),
        "    except BaseException as error:",
        "        try:",
        "            failed = failure(error, live, False)",
        "        finally:",
        "            if owned(): release()",
        "        raise failed from failed.__cause__",
        "    release()",
        f"    return {result}",
    ]


@functools.lru_cache(maxsize=8)
def _one_trip_code(interruptible: bool, bytes_in: bool, bytes_out: bool) -> Any:
    """The compiled lean one-trip buffer call (PluginFunction._lean_one_trip), in the shape of :func:`_lean_code`.

    The memory, the instance and the export's parts are read into locals before the call into
    wasm: a host function that calls back in may re-bind the globals (a trap there replaces the
    instance), and this call must still read its own descriptor. A bounds check failing goes to
    ``outside`` only after the memory's view was re-taken (it may have grown).
    """
    body = [
        *_bind_instance(interruptible),
        "memory = memory_of_bound",
        *(["payload = args[0]",
           "if type(payload) is not bytes and type(payload) is not bytearray: payload = encode(args)"] if bytes_in
          else ["payload = encode(args)"]),
        "a1 = len(payload)",
        "a0 = (live.in_ptr if a1 <= live.in_cap else grow(live, a1)) if a1 else 0",
        # Until this call's descriptor says otherwise the buffer is in use (docs/ABI.md, "Re-entrancy").
        "live.in_cap = 0",
        "if a1:",
        "    if a0 + a1 > memory.size and a0 + a1 > len(memory.sync()):",
        "        raise outside(live, 'an argument buffer', 'write', a1, a0)",
        "    memory.view[a0:a0 + a1] = payload",
        *inline_call(("i32", "i32"), ("i32",), ("a0", "a1"), "address"),
        "address &= 0xFFFFFFFF",
        "if address + DESCRIPTOR_SIZE > memory.size and address + DESCRIPTOR_SIZE > len(memory.sync()):",
        "    raise outside(live, 'a result descriptor', 'read', DESCRIPTOR_SIZE, address)",
        "status, out_ptr, out_len, live.in_ptr, live.in_cap = unpack_from(memory.view, address)",
        "if status or out_ptr + out_len > memory.size:",
        "    result = finish(live, memory, status, out_ptr, out_len, out)",
        *([
            "elif out is None:",
            "    result = memory.view[out_ptr:out_ptr + out_len].tobytes()",
            "elif out_len <= out.nbytes:",
            "    out[:out_len] = memory.view[out_ptr:out_ptr + out_len]",
            "    result = out_len",
        ] if bytes_out else [
            "elif out is None:",
            "    result = read_result(memory, out_ptr, out_len)",
        ]),
        "else:",
        "    result = finish(live, memory, status, out_ptr, out_len, out)",
    ]
    head = [
        "def call(owner, *args, out=None):",
        "    if len(args) != arity: raise arity_error(len(args))",
        "    if out is not None: out = into(out)",
    ]
    lines = _solo_then_locked(head, ("args", "out"), body, "result")
    return compile("\n".join(lines), FAST_CALL_FILE, "exec")


def _given(more: tuple[Any, ...], named: tuple[Any, ...]) -> int:
    """How many arguments a lean call was given (for the arity error): the parameters passed and the extra ones."""
    return sum(value is not _MISSING for value in named) + len(more)


#: The default of a lean call's parameters: the argument was not passed.
_MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing argument>"})()


def _inline_check(variable: str, rust_type: str) -> str:
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
