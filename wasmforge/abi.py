"""The wire contract's host side: export metadata and value conversion.

See docs/ABI.md. Each export is described by a :class:`Signature` (from the
``wasmforge.exports`` custom section, or from the bare wasm type for plugins
not made with wasmforge). A :class:`Marshal` built once per export converts
Python values to wasm values or argument bytes, and results back, checking
each argument against the signature before anything enters wasm.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .errors import ArgumentError, PluginLoadError, PluginProtocolError

WIRE_VERSION = 1
METADATA_SECTION = "wasmforge.exports"

#: Buffer-call status codes (docs/ABI.md).
STATUS_OK, STATUS_ERROR, STATUS_BAD_INPUT = 0, 1, 2

_INT_RANGES = {
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
}
_TEXT_TYPES = {"&str", "String", "&'static str", "str"}
_BYTES_TYPES = {"&[u8]", "Vec<u8>"}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    #: The wasm value type, for parameters passed as plain numbers.
    wasm: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.name}: {self.type}"


@dataclass(frozen=True)
class Signature:
    """What an export takes and returns, and how its values travel."""

    name: str
    params: tuple[Param, ...]
    returns: str
    #: "native" (plain wasm numbers), "buffer" (one input buffer, one output), or
    #: "raw" (an export with no wasmforge metadata; called with plain numbers).
    abi: str
    input: str = "none"
    output: str = "unit"
    fallible: bool = False
    result_wasm: tuple[str, ...] = ()

    def __str__(self) -> str:
        params = ", ".join(map(str, self.params))
        return f"{self.name}({params}) -> {self.returns}"

    def describe_arity(self) -> str:
        """"takes 1 argument (s: &str)": for argument-count errors."""
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


def parse_metadata(payloads: Sequence[bytes], source: str) -> dict[str, Signature]:
    """Signatures from the ``wasmforge.exports`` section(s): one JSON object per line."""
    signatures: dict[str, Signature] = {}
    for payload in payloads:
        for line in payload.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                version = int(record["v"])
                if version > WIRE_VERSION:
                    raise PluginLoadError(
                        f"{source} uses wire contract v{version}; this wasmforge understands up to "
                        f"v{WIRE_VERSION}: upgrade wasmforge"
                    )
                signature = Signature(
                    name=str(record["name"]),
                    params=tuple(Param(str(p["name"]), str(p["type"]), p.get("wasm")) for p in record["params"]),
                    returns=str(record["returns"]),
                    abi=str(record["abi"]),
                    input=str(record["input"]),
                    output=str(record["output"]),
                    fallible=bool(record["fallible"]),
                    result_wasm=(str(record["result_wasm"]),) if record.get("result_wasm") else (),
                )
            except (ValueError, KeyError, TypeError) as error:
                raise PluginLoadError(f"{source} has malformed wasmforge metadata ({error}): {line[:120]}") from None
            signatures[signature.name] = signature
    return signatures


def raw_signature(name: str, params: Sequence[str], results: Sequence[str]) -> Signature:
    """A signature for an export without metadata, from its wasm types."""
    returns = results[0] if len(results) == 1 else f"({', '.join(results)})"
    return Signature(
        name=name,
        params=tuple(Param(f"p{i}", t, t) for i, t in enumerate(params)),
        returns=returns,
        abi="raw",
        result_wasm=tuple(results),
    )


# ---- numbers --------------------------------------------------------------------------


def _describe_value(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}" if not isinstance(value, (str, bytes)) else text[:60]


def number_to_wasm(signature: Signature, index: int) -> Callable[[Any], Any]:
    """A converter for argument ``index``: checks the Python value, returns the wasm value."""
    param = signature.params[index]
    rust = param.type
    where = f"argument {index + 1} of {signature.name} ({param})"

    if rust == "bool":
        def convert_bool(value: Any) -> int:
            if not isinstance(value, bool):
                raise ArgumentError(f"{where}: expected True or False, got {_describe_value(value)}")
            return int(value)
        return convert_bool

    if rust in ("f32", "f64"):
        def convert_float(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ArgumentError(f"{where}: expected a number, got {_describe_value(value)}")
            return float(value)
        return convert_float

    low, high = _INT_RANGES.get(rust, _INT_RANGES.get(param.wasm or "", (-(2**63), 2**64 - 1)))
    if signature.abi == "raw":
        # Plain wasm has no signedness: accept either reading of the bits.
        bits = 64 if rust == "i64" else 32
        low, high = -(2 ** (bits - 1)), 2**bits - 1
    bits = 64 if param.wasm == "i64" else 32

    def convert_int(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f"{where}: expected an integer, got {_describe_value(value)}")
        if not low <= value <= high:
            raise ArgumentError(f"{where}: {value} is out of range ({low} to {high})")
        # wasm integers are signed bit patterns; unsigned Rust values wrap into them.
        return value - 2**bits if value >= 2 ** (bits - 1) else value

    return convert_int


def number_from_wasm(rust_type: str) -> Optional[Callable[[Any], Any]]:
    """A converter from the wasm result to the Rust type's value, or None if none is needed."""
    if rust_type == "bool":
        return bool
    if rust_type in ("u8", "u16", "u32", "u64"):
        mask = _INT_RANGES[rust_type][1]
        return lambda value: value & mask
    return None


# ---- buffers --------------------------------------------------------------------------


def encode_arguments(signature: Signature, args: Sequence[Any]) -> bytes:
    """The input buffer for a buffer call, per the signature's input encoding."""
    if signature.input == "none":
        return b""
    if signature.input == "str":
        value = args[0]
        if not isinstance(value, str):
            raise ArgumentError(f"argument 1 of {signature.name} ({signature.params[0]}): expected str, got {_describe_value(value)}")
        return value.encode("utf-8", errors="surrogatepass")
    if signature.input == "bytes":
        value = args[0]
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise ArgumentError(
                f"argument 1 of {signature.name} ({signature.params[0]}): expected bytes, got {_describe_value(value)}"
            )
        return bytes(value)
    return _encode_json_arguments(signature, args)


def _encode_json_arguments(signature: Signature, args: Sequence[Any]) -> bytes:
    values = []
    for index, (param, value) in enumerate(zip(signature.params, args)):
        where = f"argument {index + 1} of {signature.name} ({param})"
        if param.type in _TEXT_TYPES and not isinstance(value, str):
            raise ArgumentError(f"{where}: expected str, got {_describe_value(value)}")
        if param.type in _BYTES_TYPES:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise ArgumentError(f"{where}: expected bytes, got {_describe_value(value)}")
            value = list(bytes(value))
        elif param.type in _INT_RANGES or param.type in ("f32", "f64", "bool"):
            number_to_wasm(signature, index)(value)  # same checks as a native call
        values.append(value)
    try:
        return json.dumps(values, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise ArgumentError(f"arguments of {signature.name} cannot be sent as JSON: {error}") from None


def _json_default(value: Any) -> Any:
    """JSON for the Python values that map naturally onto serde types."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return list(bytes(value))
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def decode_result(signature: Signature, data: bytes, plugin: str) -> Any:
    """The Python value for a buffer call's output bytes."""
    kind = signature.output
    if kind == "unit":
        return None
    if kind == "bytes":
        return data
    if kind == "str":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PluginProtocolError(
                f"{signature.name}() in {plugin} returned invalid UTF-8 for {signature.returns} ({error.reason} at byte {error.start})",
                plugin=plugin, function=signature.name,
            ) from None
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise PluginProtocolError(
            f"{signature.name}() in {plugin} returned invalid JSON for {signature.returns}: {error}",
            plugin=plugin, function=signature.name,
        ) from None
    return value


def finite_or_error(value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        raise ArgumentError(f"{value} cannot be sent as JSON")
    return value
