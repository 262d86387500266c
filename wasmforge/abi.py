"""The wire contract's host side: export metadata and value conversion.

See docs/ABI.md. Each function crossing the boundary is described by a
:class:`Signature`: exports (plugin functions Python calls) and imports (host
functions the plugin calls) from the ``wasmforge.exports`` custom section, or,
for plain wasm, from the bare wasm type. Values travel in one of two ways:

- "native": every argument and the result are plain numbers, passed as wasm
  values; the converters here check ranges and fix signedness;
- "buffer": one input buffer and one output buffer. A lone ``&str``/bytes
  argument or result is its raw bytes; anything else is JSON (arguments as
  one JSON array).

The four codecs are symmetric: :func:`encode_input`/:func:`decode_output` for
calls into the plugin, :func:`decode_input`/:func:`encode_output` for host
functions the plugin calls.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from . import _json
from ._text import describe_value
from .errors import ArgumentError, PluginLoadError, PluginProtocolError

WIRE_VERSION = 1
METADATA_SECTION = "wasmforge.exports"
#: Import module of the functions a plugin declares with #[host_fn].
HOST_IMPORT_MODULE = "wasmforge:host"

#: Buffer-call status codes (docs/ABI.md).
STATUS_OK, STATUS_ERROR, STATUS_BAD_INPUT = 0, 1, 2

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
#: The wasm type each Rust number type travels as (what the macro crate emits).
WASM_OF = {"bool": "i32", "i8": "i32", "i16": "i32", "i32": "i32", "u8": "i32", "u16": "i32", "u32": "i32",
           "i64": "i64", "u64": "i64", "f32": "f32", "f64": "f64"}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    #: The wasm value type, for parameters passed as plain numbers.
    wasm: Optional[str] = None
    #: How it travels: "number", "str", "bytes" or "json".
    wire: str = "json"

    def __str__(self) -> str:
        return f"{self.name}: {self.type}"


@dataclass(frozen=True)
class Signature:
    """What a function takes and returns, and how its values travel."""

    name: str
    params: tuple[Param, ...]
    returns: str
    #: "native" (plain wasm numbers), "buffer" (one input buffer, one output), or
    #: "raw" (no wasmforge metadata: called with plain numbers).
    abi: str
    input: str = "none"
    output: str = "unit"
    fallible: bool = False
    result_wasm: tuple[str, ...] = ()
    #: "export" (a plugin function) or "import" (a host function).
    kind: str = "export"

    def __str__(self) -> str:
        params = ", ".join(map(str, self.params))
        return f"{self.name}({params}) -> {self.returns}"

    def describe_arity(self) -> str:
        """"length() takes 1 argument (s: &str)": for argument-count errors."""
        count = len(self.params)
        plural = "argument" if count == 1 else "arguments"
        listed = f" ({', '.join(map(str, self.params))})" if self.params else ""
        return f"{self.name}() takes {count} {plural}{listed}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": [{"name": p.name, "type": p.type} for p in self.params],
            "returns": self.returns,
            "abi": self.abi,
            "fallible": self.fallible,
            "signature": str(self),
        }


@dataclass(frozen=True)
class Metadata:
    """Everything the ``wasmforge.exports`` section says about a module."""

    exports: dict[str, Signature]
    imports: dict[str, Signature]
    version: Optional[int] = None


def parse_metadata(payloads: Sequence[bytes], source: str) -> Metadata:
    """Signatures from the ``wasmforge.exports`` section(s): one JSON object per line."""
    exports: dict[str, Signature] = {}
    imports: dict[str, Signature] = {}
    version: Optional[int] = None
    for payload in payloads:
        for line in payload.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            signature, record_version = _parse_record(line, source)
            version = max(version or 0, record_version)
            (imports if signature.kind == "import" else exports)[signature.name] = signature
    return Metadata(exports, imports, version)


def _parse_record(line: str, source: str) -> tuple[Signature, int]:
    try:
        record = _json.loads(line)
        version = record["v"]
    except (ValueError, KeyError, TypeError) as error:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata ({error}): {line[:120]}") from None
    if type(version) is not int or version < 1:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata (v {describe_value(version)} "
                              f"is not a version number): {line[:120]}")
    if version > WIRE_VERSION:
        raise PluginLoadError(
            f"{source} uses wire contract v{version}; this wasmforge understands up to v{WIRE_VERSION}: upgrade wasmforge"
        )
    try:
        signature = Signature(
            name=str(record["name"]),
            params=tuple(
                Param(str(p["name"]), str(p["type"]), _optional_text(p.get("wasm")), str(p.get("wire", "json")))
                for p in record["params"]
            ),
            returns=str(record["returns"]),
            abi=str(record["abi"]),
            input=str(record["input"]),
            output=str(record["output"]),
            fallible=bool(record["fallible"]),
            result_wasm=(str(record["result_wasm"]),) if record.get("result_wasm") else (),
            kind=str(record.get("kind", "export")),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata (missing {error}): {line[:120]}") from None
    problem = _record_problem(signature)
    if problem:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata ({problem}): {line[:120]}")
    return signature, version


def _optional_text(value: Any) -> Optional[str]:
    return None if value is None else str(value)


_WASM_NUMBERS = ("i32", "i64", "f32", "f64")
_ALLOWED = {
    "kind": ("export", "import"),
    "abi": ("native", "buffer"),
    "input": ("none", "str", "bytes", "json"),
    "output": ("unit", "str", "bytes", "json"),
}


def _record_problem(signature: Signature) -> str:
    """What is wrong with a record, or "": every field the host acts on must be one it knows."""
    for field, allowed in _ALLOWED.items():
        value = getattr(signature, field)
        if value not in allowed:
            return f"{field} {value!r} is not one of {', '.join(allowed)}"
    for param in signature.params:
        if param.wire not in ("number", "str", "bytes", "json"):
            return f"parameter {param.name} has wire {param.wire!r}"
        if param.wire == "number" and (param.wasm not in _WASM_NUMBERS or WASM_OF.get(param.type) != param.wasm):
            return f"number parameter {param} travels as wasm type {param.wasm!r}"
    if any(t not in _WASM_NUMBERS for t in signature.result_wasm):
        return f"result_wasm {signature.result_wasm!r}"
    if signature.abi == "native" and any(p.wire != "number" for p in signature.params):
        return "a native call whose parameters are not all numbers"
    if signature.abi == "native" and signature.result_wasm != (
        (WASM_OF.get(signature.returns, "?"),) if signature.returns != "()" else ()
    ):
        return f"a native result {signature.returns} that travels as {signature.result_wasm or 'nothing'}"
    return ""


def raw_signature(name: str, params: Sequence[str], results: Sequence[str], kind: str = "export") -> Signature:
    """A signature for a function without metadata, from its wasm types."""
    returns = results[0] if len(results) == 1 else f"({', '.join(results)})"
    return Signature(
        name=name,
        params=tuple(Param(f"p{i}", t, t, "number") for i, t in enumerate(params)),
        returns=returns,
        abi="raw",
        result_wasm=tuple(results),
        kind=kind,
    )


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
    values = [_json_ready(signature, index, value) for index, value in enumerate(args)]
    try:
        return _JSON.encode(values).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise ArgumentError(f"arguments of {signature.name} cannot be sent as JSON: {error}") from None
    except RecursionError:
        raise ArgumentError(f"arguments of {signature.name} cannot be sent as JSON: nested too deeply") from None


def _raw_bytes(signature: Signature, index: int, value: Any) -> bytes:
    param = signature.params[index]
    where = f"argument {index + 1} of {signature.name} ({param})"
    if param.wire == "str":
        if not isinstance(value, str):
            raise ArgumentError(f"{where}: expected str, got {describe_value(value)}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ArgumentError(f"{where}: not valid Unicode ({error.reason})") from None
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
        return _decode(signature.output, data)
    except ValueError as error:
        raise PluginProtocolError(
            f"{signature.name}() in {plugin} returned {error} for {signature.returns}",
            plugin=plugin,
            function=signature.name,
        ) from None


def _decode(kind: str, data: bytes) -> Any:
    if kind == "unit":
        return None
    if kind == "bytes":
        return data
    if kind == "str":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"invalid UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        return _json.loads(data)
    except ValueError as error:
        raise ValueError(f"invalid JSON ({error})") from None


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
            raise TypeError(f"{where}: not valid Unicode ({error.reason})") from None
    if kind == "bytes":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"{where}: expected bytes")
        return bytes(value)
    try:
        return _JSON.encode(value).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where}: {error}") from None
    except RecursionError:
        raise TypeError(f"{where}: nested too deeply for JSON") from None
