"""Rust types as Python sees them: annotations, recorded serde types, dicts checked against them.

The macro records each function's parameter types as written (``Vec<Line>``,
``Option<&str>``) and, for a ``#[plugin_type]``, the fields of the struct or
enum (docs/ABI.md, "Type records"). This module reads those texts into a small
tree (:class:`PyType`) that becomes a Python annotation as text (for
``wasmforge stubs``) or as an object (for ``inspect.signature``), and checks a
dict argument for the fields its struct requires before a call enters wasm.
"""

from __future__ import annotations

import inspect
import keyword
import re
from types import GenericAlias
import typing
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Optional, Sequence

from ..errors import ArgumentError

Shape = Literal["struct", "enum"]


@dataclass(frozen=True)
class Field:
    """One named field of a recorded struct (or struct variant)."""

    name: str
    type: str
    #: False for an ``Option<T>``: the key may be left out.
    required: bool = True
    #: False when a ``#[serde(...)]`` attribute may change how it is spelled or whether it is needed.
    checked: bool = True
    doc: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.type}"


@dataclass(frozen=True)
class Variant:
    """One variant of a recorded enum: unit (``fields`` None), tuple (``tuple_types``) or struct-like."""

    name: str
    fields: Optional[tuple[Field, ...]] = None
    tuple_types: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class RecordedType:
    """A struct or enum the plugin marked ``#[plugin_type]``."""

    name: str
    shape: Shape
    fields: tuple[Field, ...] = ()
    tuple_types: tuple[str, ...] = ()
    variants: tuple[Variant, ...] = ()
    doc: str = ""
    #: False when the type carries a container ``#[serde(...)]`` attribute: its JSON shape is serde's to say.
    checked: bool = True

    def __str__(self) -> str:
        """``Order {id: u64, lines: Vec<Line>}``, ``Color {Red | Green | Rgb(u8, u8, u8)}``."""
        if self.shape == "struct":
            if self.tuple_types:
                return f"{self.name}({', '.join(self.tuple_types)})"
            return f"{self.name} {{{', '.join(map(str, self.fields))}}}"
        return f"{self.name} {{{' | '.join(_variant_text(v) for v in self.variants)}}}"


def _variant_text(variant: Variant) -> str:
    if variant.tuple_types:
        return f"{variant.name}({', '.join(variant.tuple_types)})"
    if variant.fields is not None:
        return f"{variant.name} {{{', '.join(map(str, variant.fields))}}}"
    return variant.name


# ---- Rust type text -> a tree ----

@dataclass(frozen=True)
class PyType:
    """A Python type: ``kind`` is a builtin name, "Optional", "list", "dict", "tuple", "Any", "None" or a recorded type."""

    kind: str
    args: tuple["PyType", ...] = ()


ANY = PyType("Any")
_SCALARS = {
    **{t: "int" for t in ("i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize")},
    "f32": "float", "f64": "float", "bool": "bool", "str": "str", "String": "str", "char": "str",
}
_SEQUENCES = {"Vec", "VecDeque", "HashSet", "BTreeSet", "IndexSet"}
_MAPS = {"HashMap", "BTreeMap", "IndexMap"}
_WRAPPERS = {"Box", "Rc", "Arc", "Cow"}
_TOKEN = re.compile(r"\s*(?:('[A-Za-z_]\w*)|([A-Za-z_]\w*)|(::|[<>,()\[\];&])|(\d+)|(\S))")


def parse_rust_type(text: str, known: Mapping[str, RecordedType]) -> PyType:
    """The Python type a Rust type text stands for; anything not understood is ``Any``."""
    tokens = [m.group(0).strip() for m in _TOKEN.finditer(text)]
    try:
        parsed, rest = _parse(tokens, 0, known)
    except (IndexError, ValueError):
        return ANY
    return parsed if rest == len(tokens) else ANY


def _parse(tokens: Sequence[str], at: int, known: Mapping[str, RecordedType]) -> tuple[PyType, int]:
    token = tokens[at]
    if token == "&":
        at += 1
        while tokens[at].startswith("'") or tokens[at] == "mut":
            at += 1
        if tokens[at] == "[":  # &[T]: a slice
            inner, at = _parse(tokens, at + 1, known)
            if tokens[at] != "]":
                raise ValueError(tokens[at])
            return (PyType("bytes") if inner.kind == "int" and tokens[at - 1] == "u8" else PyType("list", (inner,))), at + 1
        return _parse(tokens, at, known)
    if token == "(":
        items: list[PyType] = []
        at += 1
        while tokens[at] != ")":
            item, at = _parse(tokens, at, known)
            items.append(item)
            if tokens[at] == ",":
                at += 1
        return (PyType("None") if not items else PyType("tuple", tuple(items))), at + 1
    if token == "[":  # [T; N]
        inner, at = _parse(tokens, at + 1, known)
        while tokens[at] != "]":
            at += 1
        return PyType("list", (inner,)), at + 1
    # A path: a::b::Name<args>
    names = [token]
    at += 1
    while at < len(tokens) and tokens[at] == "::":
        names.append(tokens[at + 1])
        at += 2
    args: list[PyType] = []
    arg_texts: list[str] = []
    if at < len(tokens) and tokens[at] == "<":
        at += 1
        while tokens[at] != ">":
            if tokens[at].startswith("'"):
                at += 1
            else:
                arg_texts.append(tokens[at])
                arg, at = _parse(tokens, at, known)
                args.append(arg)
            if tokens[at] == ",":
                at += 1
        at += 1
    return _named(names, args, arg_texts, known), at


def _named(path: list[str], args: list[PyType], arg_texts: list[str], known: Mapping[str, RecordedType]) -> PyType:
    name = path[-1]
    if name in _SCALARS and not args:
        return PyType(_SCALARS[name])
    if name == "Option" and len(args) == 1:
        return PyType("Optional", (args[0],))
    if name in _SEQUENCES and len(args) == 1:
        return PyType("bytes") if name == "Vec" and arg_texts == ["u8"] else PyType("list", (args[0],))
    if name in _MAPS and len(args) >= 2:
        return PyType("dict", (args[0], args[1]))
    if name in _WRAPPERS and args:
        return args[-1]
    if name == "Result" and args:
        return args[0]
    if name in known and not args:
        return PyType(name)
    return ANY


# ---- the tree -> Python ----

def annotation_text(parsed: PyType) -> str:
    """The annotation as stub text: ``list[Line]``, ``Optional[str]``, ``dict[str, int]``."""
    if parsed.kind == "Optional":
        return f"Optional[{annotation_text(parsed.args[0])}]"
    if parsed.kind == "tuple":
        return f"tuple[{', '.join(map(annotation_text, parsed.args))}]"
    if parsed.args:
        return f"{parsed.kind}[{', '.join(map(annotation_text, parsed.args))}]"
    return parsed.kind


def annotation(parsed: PyType, recorded: Mapping[str, Any]) -> Any:
    """The annotation as a Python object, recorded types as the given objects (TypedDicts)."""
    kind, args = parsed.kind, [annotation(a, recorded) for a in parsed.args]
    if kind == "Optional":
        return Optional[args[0]]
    if kind in ("list", "dict", "tuple"):
        return GenericAlias({"list": list, "dict": dict, "tuple": tuple}[kind], tuple(args))
    if kind == "None":
        return None
    simple = {"int": int, "float": float, "bool": bool, "str": str, "bytes": bytes, "Any": Any}
    return simple[kind] if kind in simple else recorded.get(kind, Any)


def python_name(name: str) -> bool:
    """Whether a recorded name can be a Python class name (a plugin's metadata is not trusted)."""
    return name.isidentifier() and not keyword.iskeyword(name)


def typed_dicts(types: Mapping[str, RecordedType], module: str) -> dict[str, Any]:
    """A ``TypedDict`` per recorded struct (``total=False`` for optional fields), an alias per enum."""
    made: dict[str, Any] = {}
    for name, recorded in types.items():
        if not python_name(name):
            continue
        if recorded.shape == "struct" and not recorded.tuple_types:
            made[name] = typing.TypedDict(name, {f.name: Any for f in recorded.fields if python_name(f.name)})  # type: ignore[operator]
            made[name].__module__ = module
    for name, made_type in list(made.items()):
        made_type.__annotations__.update({
            f.name: annotation(parse_rust_type(f.type, types), made) for f in types[name].fields if python_name(f.name)
        })
    return made


def python_signature(params: Sequence[tuple[str, str]], returns: str, types: Mapping[str, RecordedType],
                     recorded: Mapping[str, Any]) -> inspect.Signature:
    """``(one: int, two: int) -> int``: a function's parameters and result as Python annotations."""
    parameters = [
        inspect.Parameter(name if python_name(name) else f"p{index}", inspect.Parameter.POSITIONAL_ONLY
                          if not python_name(name) else inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=annotation(parse_rust_type(rust, types), recorded))
        for index, (name, rust) in enumerate(params)
    ]
    result = None if returns in ("()", "") else annotation(parse_rust_type(returns, types), recorded)
    return inspect.Signature(parameters, return_annotation=result)


def types_used(rust_types: Sequence[str], types: Mapping[str, RecordedType]) -> list[RecordedType]:
    """The recorded types these Rust types name (a `Result`'s error type too), and the ones those name,
    each once, in the order met."""
    found: dict[str, RecordedType] = {}

    def visit(text: str) -> None:
        for name in re.findall(r"[A-Za-z_]\w*", text):
            recorded = types.get(name)
            if recorded is None or name in found:
                continue
            found[name] = recorded
            inner = [f.type for f in recorded.fields] + list(recorded.tuple_types)
            for variant in recorded.variants:
                inner += [f.type for f in variant.fields or ()] + list(variant.tuple_types)
            for inner_text in inner:
                visit(inner_text)

    for text in rust_types:
        visit(text)
    return list(found.values())


def recorded_json(recorded: RecordedType) -> dict[str, Any]:
    """A recorded type for `inspect --json` and `call --list --json`."""
    described: dict[str, Any] = {"name": recorded.name, "shape": recorded.shape, "doc": recorded.doc,
                                 "description": str(recorded)}
    if recorded.shape == "struct":
        described["fields"] = [{"name": f.name, "type": f.type, "required": f.required, "doc": f.doc}
                               for f in recorded.fields] if not recorded.tuple_types else list(recorded.tuple_types)
    else:
        described["variants"] = [v.name for v in recorded.variants]
    return described


# ---- checking a dict before the call ----

def missing_field(value: Any, parsed: PyType, types: Mapping[str, RecordedType], path: str) -> Optional[str]:
    """What a value lacks that its recorded struct requires ("`order.lines[0]` is missing field `sku` (Line {...})"), or None.

    Only dicts are looked into, only fields serde would demand: the wire decides everything else.
    """
    kind = parsed.kind
    if kind == "Optional":
        return None if value is None else missing_field(value, parsed.args[0], types, path)
    if kind == "list" and isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = missing_field(item, parsed.args[0], types, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if kind == "dict" and isinstance(value, dict):
        for key, item in value.items():
            problem = missing_field(item, parsed.args[1], types, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    recorded = types.get(kind)
    if recorded is None or not recorded.checked or recorded.shape != "struct" or not isinstance(value, dict):
        return None
    for field in recorded.fields:
        if field.name not in value:
            if field.required and field.checked:
                return f"`{path}` is missing field `{field.name}` ({recorded})"
            continue
        problem = missing_field(value[field.name], parse_rust_type(field.type, types), types, f"{path}.{field.name}")
        if problem:
            return problem
    return None


def field_checker(params: Sequence[tuple[str, str]], types: Mapping[str, RecordedType],
                  where: str) -> Optional[Callable[[Sequence[Any]], None]]:
    """A function raising ArgumentError for arguments that lack a required field, or None when no parameter
    involves a checked recorded struct (so calls that cannot miss one pay nothing)."""
    parsed = [(name, parse_rust_type(rust, types)) for name, rust in params]
    if not any(_mentions_struct(p, types) for _, p in parsed):
        return None

    def check(args: Sequence[Any]) -> None:
        for (name, tree), value in zip(parsed, args):
            problem = missing_field(value, tree, types, name)
            if problem:
                raise ArgumentError(f"{where}: argument {problem}")
    return check


def _mentions_struct(parsed: PyType, types: Mapping[str, RecordedType]) -> bool:
    recorded = types.get(parsed.kind)
    if recorded is not None:
        return recorded.checked and recorded.shape == "struct"
    return any(_mentions_struct(arg, types) for arg in parsed.args)


def type_from_record(record: Mapping[str, Any]) -> RecordedType:
    """A :class:`RecordedType` from its metadata record (KeyError/TypeError/ValueError when malformed)."""
    shape = str(record["shape"])
    if shape not in ("struct", "enum"):
        raise ValueError(f"shape {shape!r} is not one of struct, enum")
    fields, tuple_types = _fields(record.get("fields"))
    variants = tuple(
        Variant(str(v["name"]), *_variant_fields(v.get("fields")), doc=str(v.get("doc", "")))
        for v in (record.get("variants") or ())
    )
    return RecordedType(
        name=str(record["name"]), shape=typing.cast(Shape, shape), fields=fields or (), tuple_types=tuple_types,
        variants=variants, doc=str(record.get("doc", "")), checked=bool(record.get("checked", True)),
    )


def _fields(raw: Any) -> tuple[Optional[tuple[Field, ...]], tuple[str, ...]]:
    if raw is None:
        return None, ()
    items = list(raw)
    if items and all(isinstance(item, str) for item in items):
        return None, tuple(items)
    return tuple(
        Field(str(f["name"]), str(f["type"]), bool(f.get("required", True)), bool(f.get("checked", True)),
              str(f.get("doc", "")))
        for f in items
    ), ()


def _variant_fields(raw: Any) -> tuple[Optional[tuple[Field, ...]], tuple[str, ...]]:
    fields, tuple_types = _fields(raw)
    return fields, tuple_types


__all__ = ["ANY", "Field", "PyType", "RecordedType", "Variant", "annotation", "annotation_text", "field_checker",
           "missing_field", "parse_rust_type", "python_name", "python_signature", "recorded_json", "type_from_record", "typed_dicts", "types_used"]
