"""What crosses the boundary: signatures, from a module's metadata or its bare wasm types.

See docs/ABI.md. Each function crossing the boundary is described by a
:class:`Signature`: exports (plugin functions Python calls) and imports (host
functions the plugin calls) from the ``wasmforge.exports`` custom section, or,
for plain wasm, from the bare wasm type. How values travel is in
:mod:`wasmforge.abi.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any, Literal, Optional, Sequence, cast

from .. import _json
from .._text import describe_value
from ..errors import PluginLoadError
from .pytypes import RecordedType, type_from_record

#: The newest wire contract this host reads. v1: export and import records; v2 adds `type` records
#: (#[plugin_type]), which a v1 host refuses with "upgrade wasmforge" (docs/ABI.md, "Versioning");
#: v3 marks the records of #[plugin_fn(wire = "msgpack")] exports, which a v2 host refuses the same way.
WIRE_VERSION = 3
METADATA_SECTION = "wasmforge.exports"
#: Import module of the functions a plugin declares with #[host_fn].
HOST_IMPORT_MODULE = "wasmforge:host"

#: The wasm type each Rust number type travels as (what the macro crate emits).
WASM_OF = {"bool": "i32", "i8": "i32", "i16": "i32", "i32": "i32", "u8": "i32", "u16": "i32", "u32": "i32",
           "i64": "i64", "u64": "i64", "f32": "f32", "f64": "f64"}

#: How a parameter travels: a wasm number, or inside the input buffer as raw text, raw bytes or JSON.
Wire = Literal["number", "str", "bytes", "json"]
#: The calling convention: plain wasm numbers ("native"), one input and one output buffer ("buffer"),
#: or no wasmforge metadata at all ("raw": plain wasm numbers, as the module's types say).
Abi = Literal["native", "buffer", "raw"]
#: What the input buffer holds: nothing, one string's UTF-8, one byte string, or a JSON array of the arguments.
Input = Literal["none", "str", "bytes", "json"]
#: What the output buffer holds: nothing (unit), a string's UTF-8, bytes, or the result as JSON.
Output = Literal["unit", "str", "bytes", "json"]
#: A plugin function ("export") or a host function the plugin calls ("import").
Kind = Literal["export", "import"]
#: How the "json" input and output of a buffer call travel: JSON, or MessagePack for
#: #[plugin_fn(wire = "msgpack")] (the record's "wire"; absent means JSON).
StructWire = Literal["json", "msgpack"]


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    #: The wasm value type, for parameters passed as plain numbers.
    wasm: Optional[str] = None
    #: How it travels: "number", "str", "bytes" or "json".
    wire: Wire = "json"

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
    abi: Abi
    input: Input = "none"
    output: Output = "unit"
    fallible: bool = False
    result_wasm: tuple[str, ...] = ()
    #: "export" (a plugin function) or "import" (a host function).
    kind: Kind = "export"
    #: The function's `///` doc comment ("" when it has none).
    doc: str = ""
    #: How the "json" input and output travel: "json", or "msgpack" for #[plugin_fn(wire = "msgpack")].
    wire: StructWire = "json"

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
            "doc": self.doc,
            # How the structured values travel; listed only for MessagePack, so JSON reports read as before.
            **({"wire": self.wire} if self.wire != "json" else {}),
        }


@dataclass(frozen=True)
class StateRecord:
    """The ``#[plugin_state]`` static: state the plugin carries across hot reloads."""

    name: str
    type: str


@dataclass(frozen=True)
class Metadata:
    """Everything the ``wasmforge.exports`` section says about a module."""

    exports: dict[str, Signature]
    imports: dict[str, Signature]
    version: Optional[int] = None
    #: The structs and enums marked #[plugin_type], by name.
    types: dict[str, RecordedType] = field(default_factory=dict)
    #: The #[plugin_state] static, if the plugin has one.
    state: Optional[StateRecord] = None


def parse_metadata(payloads: Sequence[bytes], source: str) -> Metadata:
    """Signatures from the ``wasmforge.exports`` section(s): one JSON object per line."""
    exports: dict[str, Signature] = {}
    imports: dict[str, Signature] = {}
    types: dict[str, RecordedType] = {}
    state: Optional[StateRecord] = None
    version: Optional[int] = None
    for payload in payloads:
        for line in payload.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            described, record_version = _parse_record(line, source)
            version = max(version or 0, record_version)
            if isinstance(described, RecordedType):
                types[described.name] = described
            elif isinstance(described, StateRecord):
                state = described
            else:
                (imports if described.kind == "import" else exports)[described.name] = described
    return Metadata(exports, imports, version, types, state)


def _parse_record(line: str, source: str) -> tuple[Signature | RecordedType | StateRecord, int]:
    try:
        record = _json.loads(line)
        version = record["v"]
    except (ValueError, KeyError, TypeError) as error:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata ({error}): {line[:120]}") from error
    if type(version) is not int or version < 1:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata (v {describe_value(version)} "
                              f"is not a version number): {line[:120]}")
    if version > WIRE_VERSION:
        raise PluginLoadError(
            f"{source} uses wire contract v{version}; this wasmforge understands up to v{WIRE_VERSION}: upgrade wasmforge"
        )
    if isinstance(record, dict) and record.get("kind") == "state":
        return StateRecord(str(record.get("name", "")), str(record.get("type", ""))), version
    if isinstance(record, dict) and record.get("kind") == "type":
        try:
            return type_from_record(record), version
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise PluginLoadError(f"{source} has malformed wasmforge metadata (type record: {error}): "
                                  f"{line[:120]}") from error
    try:
        signature = Signature(
            name=str(record["name"]),
            params=tuple(
                Param(str(p["name"]), str(p["type"]), _optional_text(p.get("wasm")),
                      cast(Wire, str(p.get("wire", "json"))))
                for p in record["params"]
            ),
            # Any text for now: _record_problem refuses what is not one of the Literal's values.
            returns=str(record["returns"]),
            abi=cast(Abi, str(record["abi"])),
            input=cast(Input, str(record["input"])),
            output=cast(Output, str(record["output"])),
            fallible=bool(record["fallible"]),
            result_wasm=(str(record["result_wasm"]),) if record.get("result_wasm") else (),
            kind=cast(Kind, str(record.get("kind", "export"))),
            doc=str(record.get("doc", "")),
            wire=cast(StructWire, str(record.get("wire", "json"))),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise PluginLoadError(f"{source} has malformed wasmforge metadata (missing {error}): {line[:120]}") from error
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
    "wire": ("json", "msgpack"),
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
    if signature.wire == "msgpack" and signature.kind == "import":
        return "a host function with wire 'msgpack' (host functions speak JSON)"
    if any(t not in _WASM_NUMBERS for t in signature.result_wasm):
        return f"result_wasm {signature.result_wasm!r}"
    if signature.abi == "native" and any(p.wire != "number" for p in signature.params):
        return "a native call whose parameters are not all numbers"
    if signature.abi == "native" and signature.result_wasm != (
        (WASM_OF.get(signature.returns, "?"),) if signature.returns != "()" else ()
    ):
        return f"a native result {signature.returns} that travels as {signature.result_wasm or 'nothing'}"
    return ""


def raw_signature(name: str, params: Sequence[str], results: Sequence[str], kind: Kind = "export") -> Signature:
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
