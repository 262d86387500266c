"""Names of wasm types, read without the calls that abort the process.

wasmtime-py names a value type with ``str(ValType)``, which asks the C API for
the type's ``wasm_valkind_t``; for ``v128`` (and the GC proposal's reference
types) wasmtime has no such kind and panics, which aborts Python. Every type
wasmforge shows or checks is named here instead, through
``wasmtime_valtype_new``, which converts any value type into wasmtime's own
description (a kind, and for references a nullability and a heap type).

Only the four number types cross into Python; :data:`NUMBERS` names them.
"""

from __future__ import annotations

import ctypes
from typing import Any, Sequence

import wasmtime
from wasmtime import _ffi as ffi

#: The value types a Python value can stand for.
NUMBERS = ("i32", "i64", "f32", "f64")

# wasmtime's C API (wasmtime/types/val.h): WASMTIME_I32... and WASMTIME_HEAPTYPE_*.
_KINDS = {0: "i32", 1: "i64", 2: "f32", 3: "f64", 4: "v128"}
_REF_KIND = 5
#: Heap type -> (the abbreviation of its nullable reference, the heap type as written in a (ref ...)).
_HEAP_TYPES = {
    0: ("externref", "extern"), 1: ("nullexternref", "noextern"), 2: ("funcref", "func"),
    3: (None, "$func"), 4: ("nullfuncref", "nofunc"), 5: ("anyref", "any"), 6: ("nullref", "none"),
    7: ("eqref", "eq"), 8: ("i31ref", "i31"), 9: ("arrayref", "array"), 10: (None, "$array"),
    11: ("structref", "struct"), 12: (None, "$struct"), 13: ("exnref", "exn"), 14: (None, "$exn"),
    15: ("nullexnref", "noexn"),
}


def value_type(value_type: wasmtime.ValType) -> str:
    """The text form of a value type: "i32", "v128", "funcref", "(ref null $struct)"..."""
    described = ffi.wasmtime_valtype_t()
    ffi.wasmtime_valtype_new(value_type.ptr(), ctypes.byref(described))
    try:
        kind = int(described.kind)
        if kind in _KINDS:
            return _KINDS[kind]
        if kind != _REF_KIND:
            return f"(unknown value type {kind})"
        nullable = bool(described.reftype.nullable)
        short, heap = _HEAP_TYPES.get(int(described.reftype.heaptype.kind), (None, "?"))
        if nullable and short is not None:
            return short
        return f"(ref {'null ' if nullable else ''}{heap})"
    finally:
        ffi.wasmtime_valtype_delete(ctypes.byref(described))


def value_types(types: Sequence[wasmtime.ValType]) -> tuple[str, ...]:
    return tuple(value_type(t) for t in types)


def func_type(kind: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(params, results) of a function type, as type names."""
    return value_types(kind.params), value_types(kind.results)


def show_func_type(params: Sequence[str], results: Sequence[str]) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def not_numbers(params: Sequence[str], results: Sequence[str]) -> list[str]:
    """The types in a signature that cannot cross into Python, each once, in order."""
    return list(dict.fromkeys(t for t in (*params, *results) if t not in NUMBERS))


def extern_kind(kind: Any) -> str:
    """"function", "memory", "table", "global" or "tag": what an import or export is."""
    for cls, name in ((wasmtime.FuncType, "function"), (wasmtime.MemoryType, "memory"),
                      (wasmtime.TableType, "table"), (wasmtime.GlobalType, "global")):
        if isinstance(kind, cls):
            return name
    return "tag" if type(kind).__name__ == "TagType" else type(kind).__name__.lower()


def describe_extern(kind: Any) -> str:
    """One line for a memory, table or global type (a function's is its signature)."""
    if isinstance(kind, wasmtime.FuncType):
        return show_func_type(*func_type(kind))
    if isinstance(kind, wasmtime.MemoryType):
        return describe_memory_type(kind)
    if isinstance(kind, wasmtime.TableType):
        limits = kind.limits
        most = f", at most {limits.max}" if limits.max is not None else ""
        return f"{value_type(kind.element)} table, {limits.min} elements{most}"
    if isinstance(kind, wasmtime.GlobalType):
        return f"{'mutable' if kind.mutable else 'immutable'} {value_type(kind.content)}"
    return extern_kind(kind)


_PAGE = 65536


def describe_memory_type(memory: wasmtime.MemoryType) -> str:
    limits = memory.limits
    text = f"{limits.min} pages ({limits.min * _PAGE // 1024} KiB) at start"
    text += f", at most {limits.max} pages" if limits.max is not None else ", no maximum"
    flags = [flag for flag, on in (("64-bit", getattr(memory, "is_64", False)),
                                   ("shared", getattr(memory, "is_shared", False))) if on]
    return text + (f" ({', '.join(flags)})" if flags else "")
