"""How values cross the boundary: numbers, and the two buffers of a buffer call.

See docs/ABI.md. Values travel in one of two ways:

- "native": every argument and the result are plain numbers, passed as wasm
  values; the converters here check ranges and fix signedness;
- "buffer": one input buffer and one output buffer. A lone ``&str``/bytes
  argument or result is its raw bytes; anything else is JSON (arguments as
  one JSON array), or MessagePack for #[plugin_fn(wire = "msgpack")]
  (:mod:`wasmforge.abi.msgpack_wire`, imported on first use).

The four codecs are symmetric: :func:`encode_input`/:func:`decode_output` for
calls into the plugin, :func:`decode_input`/:func:`encode_output` for host
functions the plugin calls.
"""

from __future__ import annotations

import dataclasses
import json
import math
from types import ModuleType
from typing import Any, Callable, Optional, Sequence

from .. import _json
from .._text import describe_value
from ..errors import ArgumentError, PluginProtocolError
from .signature import WASM_OF, Param, Signature

#: Buffer-call status codes (docs/ABI.md).
STATUS_OK, STATUS_ERROR, STATUS_BAD_INPUT, STATUS_ERROR_DATA = 0, 1, 2, 3

#: Every integer type's range: the one table the converters and the fast path's inline checks use.
INT_RANGES = {
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
}
_FLOATS = ("f32", "f64")
#: The largest finite f32: a larger finite float would silently become infinity in an f32.
F32_MAX = 3.4028234663852886e38


def passes_as_is(rust_type: str) -> Optional[tuple[int, int]]:
    """The integers of ``rust_type`` that go to wasm unchanged, (low, high); None for bool and floats.

    Wasm integers are signed: an unsigned value past its wasm type's signed range needs
    its converter to wrap it into the same bit pattern, so it does not pass as it is.
    """
    if rust_type not in INT_RANGES:
        return None
    low, high = INT_RANGES[rust_type]
    return low, min(high, INT_RANGES[WASM_OF[rust_type]][1])


# ---- numbers --------------------------------------------------------------------------


def number_to_wasm(signature: Signature, index: int) -> Callable[[Any], Any]:
    """A converter for argument ``index``: checks the Python value, returns the wasm value."""
    param = signature.params[index]
    where = f"argument {index + 1} of {signature.name} ({param})"
    return _number_converter(param.type, param.wasm, where)


def _number_converter(rust: str, wasm: Optional[str], where: str) -> Callable[[Any], Any]:
    """Checks a Python value against ``rust`` (for plain wasm: its wasm type) and returns the wasm value.

    Plain wasm integers are signed: the unsigned spelling of a bit pattern is
    accepted only where the signature says the type is unsigned.
    """
    if rust == "bool":
        def convert_bool(value: Any) -> int:
            if not isinstance(value, bool):
                raise ArgumentError(f"{where}: expected True or False, got {describe_value(value)}")
            return int(value)
        return convert_bool

    if rust in _FLOATS:
        single = rust == "f32"

        def convert_float(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ArgumentError(f"{where}: expected a number, got {describe_value(value)}")
            try:
                number = float(value)
            except OverflowError:  # only an int converts to a float that overflows
                raise ArgumentError(f"{where}: an integer of {int(value).bit_length()} bits is too large for {rust}") from None
            if single and math.isfinite(number) and abs(number) > F32_MAX:
                raise ArgumentError(f"{where}: {number:g} is too large for f32 (at most {F32_MAX:g}); "
                                    "pass float('inf') for infinity")
            return number
        return convert_float

    if rust not in INT_RANGES:
        raise ArgumentError(f"{where}: wasmforge cannot pass a {rust} (numbers only: i32, i64, f32, f64)")
    bits = 64 if (wasm or rust) == "i64" else 32
    low, high = INT_RANGES[rust]

    def convert_int(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f"{where}: expected an integer, got {describe_value(value)}")
        if not low <= value <= high:
            raise ArgumentError(f"{where}: {value} is out of range ({low} to {high})")
        # wasm integers are signed bit patterns; unsigned Rust values wrap into them.
        return value - 2**bits if value >= 2 ** (bits - 1) else value

    return convert_int


def number_from_wasm(rust_type: str, invalid: Callable[[Any], BaseException]) -> Optional[Callable[[Any], Any]]:
    """A converter from a wasm value to the Rust type's value, or None if none is needed.

    A value the type cannot hold (a u8 of 300, a bool of 2) raises ``invalid(value)``:
    wasm passes small types in an i32, and nothing masks away what a plugin put there.
    """
    if rust_type == "bool":
        def to_bool(value: Any) -> bool:
            if value == 1:
                return True
            if value == 0:
                return False
            raise invalid(value)
        return to_bool
    if rust_type in ("u32", "u64"):
        mask = INT_RANGES[rust_type][1]
        return lambda value: value & mask  # every bit pattern is a valid u32/u64
    if rust_type in ("i8", "i16", "u8", "u16"):
        low, high = INT_RANGES[rust_type]

        def in_range(value: Any) -> Any:
            if not low <= value <= high:
                raise invalid(value)
            return value
        return in_range
    return None


def check_number_result(signature: Signature, value: Any) -> Any:
    """A host function's numeric result, checked and converted to the wasm value(s); ArgumentError if it does not fit."""
    where = f"host function {signature.name} returned {describe_value(value)}, but it returns {signature.returns}"
    results = signature.result_wasm
    if signature.abi == "native" or len(results) == 1:
        rust = signature.returns if signature.abi == "native" else results[0]
        return _number_converter(rust, results[0], where)(value)
    if not isinstance(value, (list, tuple)) or len(value) != len(results):
        raise ArgumentError(f"{where}: expected a list of {len(results)} numbers")
    return [_number_converter(kind, kind, f"{where} (value {index + 1})")(item)
            for index, (kind, item) in enumerate(zip(results, value))]


# ---- buffers: calls into the plugin ------------------------------------------------------


def encode_input(signature: Signature, args: Sequence[Any]) -> bytes:
    """The input buffer for a call into the plugin."""
    if signature.input == "none":
        return b""
    if signature.input in ("str", "bytes"):
        return _raw_bytes(signature, 0, args[0])
    if signature.wire == "msgpack":
        return _msgpack_input(signature, args)
    values = [_json_ready(signature, index, value) for index, value in enumerate(args)]
    try:
        payload = _JSON.encode(values).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise ArgumentError(f"arguments of {signature.name} cannot be sent as JSON: {error}") from error
    except RecursionError:
        payload = b""  # nested deeper than this interpreter's recursion limit
    # The bound is MAX_DEPTH, not the recursion limit (which a program or library may raise): a deeper
    # value is refused here, as the host would refuse it coming back. Under 2 bytes a level it cannot be.
    if not payload or (len(payload) > 2 * _json.MAX_DEPTH and _json.too_deep(payload, _json.MAX_DEPTH + 1)):
        raise ArgumentError(f"arguments of {signature.name} cannot be sent as JSON: nested too deeply") from None
    return payload


def msgpack_wire() -> ModuleType:
    """The MessagePack wire, imported on first use: start-up and JSON-only hosts never import msgpack."""
    from . import msgpack_wire as wire
    return wire


def _msgpack_input(signature: Signature, args: Sequence[Any]) -> bytes:
    """The arguments as one MessagePack array: the values JSON would carry, bytes as bin."""
    values = [_msgpack_ready(signature, index, value) for index, value in enumerate(args)]
    try:
        payload: bytes = msgpack_wire().pack(values)
    except OverflowError as error:
        raise ArgumentError(f"arguments of {signature.name} cannot be sent as MessagePack: "
                            f"an integer does not fit in 64 bits ({error})") from None
    except (TypeError, ValueError) as error:
        raise ArgumentError(f"arguments of {signature.name} cannot be sent as MessagePack: {error}") from None
    return payload


def msgpack_encoder(signature: Signature) -> Callable[[Sequence[Any]], bytes]:
    """``encode_input`` for a MessagePack argument list, packing the arguments as they are when no
    parameter needs a check (strings, bytes and numbers get encode_input's, and any failure its message)."""
    if any(p.wire != "json" for p in signature.params):
        return lambda args: encode_input(signature, args)
    pack = msgpack_wire().pack

    def encode(args: Sequence[Any]) -> bytes:
        try:
            return pack(args)  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError):
            return _msgpack_input(signature, args)  # raises the ArgumentError that names the problem
    return encode


def msgpack_decoder(signature: Signature, plugin: str) -> Callable[[bytes], Any]:
    """``decode_output`` for a MessagePack result, with the MessagePack reader bound once."""
    unpack = msgpack_wire().unpack

    def decode(data: bytes) -> Any:
        try:
            return unpack(data)
        except ValueError as error:
            raise PluginProtocolError(
                f"{signature.name}() in {plugin} returned {error} for {signature.returns}",
                plugin=plugin, function=signature.name,
            ) from error
    return decode


def _msgpack_ready(signature: Signature, index: int, value: Any) -> Any:
    param = signature.params[index]
    if param.wire == "bytes":
        return _raw_bytes(signature, index, value)
    return _json_ready(signature, index, value)


def _raw_bytes(signature: Signature, index: int, value: Any) -> bytes:
    param = signature.params[index]
    where = f"argument {index + 1} of {signature.name} ({param})"
    if param.wire == "str":
        if not isinstance(value, str):
            raise ArgumentError(f"{where}: expected str, got {describe_value(value)}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ArgumentError(f"{where}: not valid Unicode ({error.reason})") from error
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ArgumentError(f"{where}: expected bytes, got {describe_value(value)}")
    return bytes(value)


def _json_ready(signature: Signature, index: int, value: Any) -> Any:
    param = signature.params[index]
    if param.wire == "str":
        _raw_bytes(signature, index, value)  # the same check as a lone argument
        return value
    if param.wire == "bytes":
        return list(_raw_bytes(signature, index, value))
    if param.wire == "number":
        number_to_wasm(signature, index)(value)
    return value


def _json_default(value: Any) -> Any:
    """JSON for the Python values that map naturally onto serde types."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return list(bytes(value))
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


#: Built once: json.dumps with keyword arguments builds an encoder per call.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default)


def decode_output(signature: Signature, data: bytes, plugin: str) -> Any:
    """The Python value of a plugin call's output buffer."""
    try:
        if signature.wire == "msgpack" and signature.output == "json":
            return msgpack_wire().unpack(data)
        return _decode(signature.output, data)
    except ValueError as error:
        raise PluginProtocolError(
            f"{signature.name}() in {plugin} returned {error} for {signature.returns}",
            plugin=plugin,
            function=signature.name,
        ) from error


def decode_error_data(signature: Signature, text: str, plugin: str) -> tuple[str, Any]:
    """The message and the error value of a status-3 output, ``{"message": ..., "data": ...}``."""
    try:
        report = _json.loads(text)
        message = report["message"]
        data = report["data"]
        if not isinstance(message, str):
            raise TypeError(f"message {describe_value(message)} is not a string")
    except (ValueError, KeyError, TypeError) as error:
        raise PluginProtocolError(
            f"{signature.name}() in {plugin} returned an error that is not {{message, data}} JSON ({error})",
            plugin=plugin, function=signature.name,
        ) from error
    return message, data


def _decode(kind: str, data: bytes) -> Any:
    if kind == "unit":
        return None
    if kind == "bytes":
        return data
    if kind == "str":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"invalid UTF-8 ({error.reason} at byte {error.start})") from error
    try:
        return _json.loads(data)
    except ValueError as error:
        raise ValueError(f"invalid JSON ({error})") from error


# ---- buffers: host functions the plugin calls -------------------------------------------


def decode_input(signature: Signature, data: bytes) -> list[Any]:
    """The Python arguments of a host function call, from the plugin's input buffer."""
    if signature.input == "none":
        return []
    if signature.input in ("str", "bytes"):
        return [_decode(signature.input, data)]
    values = _decode("json", data)
    if not isinstance(values, list) or len(values) != len(signature.params):
        raise ValueError(f"expected a JSON array of {len(signature.params)} arguments")
    return [_bytes_argument(p, v) if p.wire == "bytes" and isinstance(v, list) else v
            for p, v in zip(signature.params, values)]


def _bytes_argument(param: Param, value: list[Any]) -> bytes:
    try:
        return bytes(value)
    except (TypeError, ValueError):
        raise ValueError(f"{param.name} is not a list of bytes (0 to 255)") from None


def encode_output(signature: Signature, value: Any) -> bytes:
    """The output buffer of a host function's result; TypeError if it does not fit."""
    kind = signature.output
    if kind == "unit":
        return b""
    where = f"host function {signature.name} returned {describe_value(value)}, but it returns {signature.returns}"
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected str")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise TypeError(f"{where}: not valid Unicode ({error.reason})") from error
    if kind == "bytes":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"{where}: expected bytes")
        return bytes(value)
    try:
        return _JSON.encode(value).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where}: {error}") from error
    except RecursionError:
        raise TypeError(f"{where}: nested too deeply for JSON") from None
