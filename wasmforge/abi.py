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
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

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
        record = json.loads(line)
        version = int(record["v"])
    except (ValueError, KeyError, TypeError) as error:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata ({error}): {line[:120]}") from None
    if version > WIRE_VERSION:
        raise PluginLoadError(
            f"{source} uses wire contract v{version}; this wasmforge understands up to v{WIRE_VERSION}: upgrade wasmforge"
        )
    try:
        signature = Signature(
            name=str(record["name"]),
            params=tuple(
                Param(str(p["name"]), str(p["type"]), p.get("wasm"), str(p.get("wire", "json"))) for p in record["params"]
            ),
            returns=str(record["returns"]),
            abi=str(record["abi"]),
            input=str(record["input"]),
            output=str(record["output"]),
            fallible=bool(record["fallible"]),
            result_wasm=(str(record["result_wasm"]),) if record.get("result_wasm") else (),
            kind=str(record.get("kind", "export")),
        )
    except (KeyError, TypeError) as error:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata (missing {error}): {line[:120]}") from None
    problem = _record_problem(signature)
    if problem:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata ({problem}): {line[:120]}")
    return signature, version


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
        if param.wire == "number" and param.wasm not in _WASM_NUMBERS:
            return f"number parameter {param.name} has wasm type {param.wasm!r}"
    if any(t not in _WASM_NUMBERS for t in signature.result_wasm):
        return f"result_wasm {signature.result_wasm!r}"
    if signature.abi == "native" and any(p.wire != "number" for p in signature.params):
        return "a native call whose parameters are not all numbers"
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


def describe_value(value: Any) -> str:
    text = repr(value)
    return text[:60] if isinstance(value, (str, bytes)) else f"{type(value).__name__} {text[:60]}"


# ---- numbers --------------------------------------------------------------------------


def number_to_wasm(signature: Signature, index: int) -> Callable[[Any], Any]:
    """A converter for argument ``index``: checks the Python value, returns the wasm value."""
    param = signature.params[index]
    where = f"argument {index + 1} of {signature.name} ({param})"
    return _number_converter(param.type, param.wasm, where, signature.abi == "raw")


def _number_converter(rust: str, wasm: Optional[str], where: str, raw: bool = False) -> Callable[[Any], Any]:
    if rust == "bool":
        def convert_bool(value: Any) -> int:
            if not isinstance(value, bool):
                raise ArgumentError(f"{where}: expected True or False, got {describe_value(value)}")
            return int(value)
        return convert_bool

    if rust in _FLOATS:
        def convert_float(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ArgumentError(f"{where}: expected a number, got {describe_value(value)}")
            return float(value)
        return convert_float

    bits = 64 if (wasm or rust) == "i64" else 32
    # Plain wasm has no signedness: accept either reading of the bits.
    low, high = (-(2 ** (bits - 1)), 2**bits - 1) if raw else INT_RANGES.get(rust, INT_RANGES["i64"])

    def convert_int(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f"{where}: expected an integer, got {describe_value(value)}")
        if not low <= value <= high:
            raise ArgumentError(f"{where}: {value} is out of range ({low} to {high})")
        # wasm integers are signed bit patterns; unsigned Rust values wrap into them.
        return value - 2**bits if value >= 2 ** (bits - 1) else value

    return convert_int


def number_from_wasm(rust_type: str) -> Optional[Callable[[Any], Any]]:
    """A converter from a wasm value to the Rust type's value, or None if none is needed."""
    if rust_type == "bool":
        return bool
    if rust_type in ("u8", "u16", "u32", "u64"):
        mask = INT_RANGES[rust_type][1]
        return lambda value: value & mask
    return None


def check_number_result(signature: Signature, value: Any) -> Any:
    """A host function's numeric result, checked and converted to the wasm value."""
    where = f"host function {signature.name} returned {describe_value(value)}, but it returns {signature.returns}"
    try:
        return _number_converter(signature.returns, signature.result_wasm[0] if signature.result_wasm else None, where)(value)
    except ArgumentError as error:
        raise TypeError(str(error)) from None


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
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
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
    return [bytes(v) if p.wire == "bytes" and isinstance(v, list) else v for p, v in zip(signature.params, values)]


def encode_output(signature: Signature, value: Any) -> bytes:
    """The output buffer of a host function's result; TypeError if it does not fit."""
    kind = signature.output
    if kind == "unit":
        return b""
    where = f"host function {signature.name} returned {describe_value(value)}, but it returns {signature.returns}"
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected str")
        return value.encode("utf-8")
    if kind == "bytes":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"{where}: expected bytes")
        return bytes(value)
    try:
        return _JSON.encode(value).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where}: {error}") from None
