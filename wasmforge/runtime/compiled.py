"""Compiling a plugin once, and what wasmforge reads from the compiled module.

Plugins without epochs of their own share one engine per configuration
(engines.py), so a module compiled once can be instantiated again: a file
loaded a second time in the same process with the same bytes skips compiling,
metadata parsing and export inspection and goes straight to instantiation.
Compiled code also outlives the process in the on-disk cache (cache.py).
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import wasmtime

from .._text import first_line
from ..abi import wasmfile, wasmtypes
from ..abi.signature import METADATA_SECTION, Metadata, Signature, parse_metadata, raw_signature
from ..errors import PluginLoadError
from ..limits import Limits
from .cache import compile_cached
from .engines import default_engine, engine_for
from .imports import ImportFact

#: The exports called at start, in this order: a WASI reactor's constructors, then wasmforge's panic hook.
SETUP_EXPORTS = ("_initialize", "__wf_init")
#: Key in ``Compiled.shared``: the function types of the module's setup exports, by name.
SETUP_TYPES = "setup_types"

#: Files whose compiled form stays in memory, most recently loaded last.
RECENT_FILES = 32

#: (path, engine configuration) -> (the bytes compiled, what compiling them gave).
_recent: "collections.OrderedDict[tuple[Any, ...], tuple[bytes, Compiled]]" = collections.OrderedDict()
_lock = threading.Lock()
#: (SHA-256 of a module's bytes, shared engine's configuration) -> what compile_plugin reads from it
#: besides the module, most recent last.
_facts: "collections.OrderedDict[tuple[Any, ...], tuple[Any, ...]]" = collections.OrderedDict()


@dataclass(frozen=True)
class Compiled:
    """A module compiled for an engine, and what its sections and types say, read once."""

    engine: wasmtime.Engine
    module: wasmtime.Module
    metadata: Metadata
    signatures: dict[str, Signature]
    imports: tuple[ImportFact, ...]
    #: Names of every export, functions or not (say, whether there is an _initialize to call).
    export_names: frozenset[str]
    #: Exported memories, by name, in export order.
    memory_exports: tuple[str, ...] = ()
    #: The export that is memory 0 (the one plain loads and stores use); None when memory 0
    #: is imported, or not exported.
    main_memory: Optional[str] = None
    #: What instances of this module object reuse, made at the first: the pre-linked module per
    #: import plan shape (imports.py, ImportPlan.prelinked). Never compared.
    reused: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    #: What follows from the module's content alone (the setup exports to call, the TypedDicts of
    #: its types), made at the first load of that content and shared by every module compiled or
    #: deserialized from the same bytes for the same engine configuration (one from the disk cache
    #: each time, with ``Plugin.from_bytes``). Never compared.
    shared: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def compile_module(data: bytes, source: str, engine: Optional[wasmtime.Engine] = None, *,
                   cache: bool = True, digest: Optional[bytes] = None) -> wasmtime.Module:
    """Compiles ``data`` (for the shared engine without limits by default); PluginLoadError naming
    ``source`` if it is not a valid module.

    With ``cache``, a compiled form that wasmforge stored earlier is reused (see cache.py);
    ``digest``: the SHA-256 of ``data``, if the caller has it already.
    """
    wasmfile.check_header(data, source)
    chosen = engine or default_engine()
    if cache:
        return compile_cached(chosen, data, lambda: compile_module(data, source, chosen, cache=False), digest)
    try:
        return wasmtime.Module(chosen, data)
    except wasmtime.WasmtimeError as error:
        raise PluginLoadError(f"{source} is not a valid WebAssembly module: {first_line(error, 'invalid module')}") from error


def compile_plugin(data: bytes, name: str, limits: Limits) -> Compiled:
    """Everything about ``data`` that does not depend on an instance.

    What the module's sections and types say is the same for the same bytes, so on a shared
    engine (engines.py) it is read once per content (by SHA-256, which the disk cache needs
    anyway) and remembered for :data:`RECENT_FILES` contents: ``Plugin.from_bytes`` of bytes seen before
    in this process costs the module (from memory, the disk cache or Cranelift), not the walk
    through its exports and metadata again.
    """
    digest = hashlib.sha256(data).digest()
    engine = engine_for(limits)
    # Only on a shared engine: the import types are wasmtime objects of the module's engine, and
    # handing them to another engine's linker aborts the process.
    key = None if limits.uses_epochs else (digest, limits.engine_key)
    facts = None
    if key is not None:
        with _lock:
            facts = _facts.get(key)
            if facts is not None:
                _facts.move_to_end(key)
    if facts is not None:
        return _with_facts(engine, compile_module(data, name, engine, digest=digest), facts)
    # Walking the sections first turns a truncated file into "truncated", not a parser offset.
    metadata = parse_metadata(wasmfile.custom_sections(data, METADATA_SECTION, name), name)
    module = compile_module(data, name, engine, digest=digest)
    imports = ImportFact.all_of(module)
    # Once: wasmtime-py makes a Python object per export and its type at every `module.exports`.
    exports = [(export.name, export.type) for export in module.exports]
    memories = tuple(n for n, kind in exports if isinstance(kind, wasmtime.MemoryType))
    facts = (metadata, export_signatures(module, metadata.exports, exports), imports,
             frozenset(n for n, _ in exports), memories,
             main_memory_export(data, name, memories, imports),
             {SETUP_TYPES: {n: kind for n, kind in exports if n in SETUP_EXPORTS and isinstance(kind, wasmtime.FuncType)}})
    if key is not None:
        with _lock:
            _facts[key] = facts
            while len(_facts) > RECENT_FILES:
                _facts.popitem(last=False)
    return _with_facts(engine, module, facts)


def _with_facts(engine: wasmtime.Engine, module: wasmtime.Module, facts: tuple[Any, ...]) -> Compiled:
    metadata, signatures, imports, export_names, memories, main_memory, shared = facts
    return Compiled(engine, module, metadata, signatures, imports, export_names, memories, main_memory, shared=shared)


def forget_facts() -> None:
    """Read every module's sections and types again at its next compile_plugin, as a new process would."""
    with _lock:
        _facts.clear()


def main_memory_export(data: bytes, name: str, exported: Sequence[str], imports: Sequence[ImportFact]) -> Optional[str]:
    """Which exported memory is memory 0 (an imported memory comes first in the index space)."""
    if not exported:
        return None
    indices = wasmfile.exported_memories(data, name)
    zero = next((n for n in exported if indices.get(n) == 0), None)
    if zero is not None or any(item.kind == "memory" for item in imports):
        return zero
    return "memory" if "memory" in exported else exported[0]


def compiled_file(path: "str | os.PathLike[str]", data: bytes, name: str, limits: Limits) -> Compiled:
    """:func:`compile_plugin` for the bytes ``data`` read from ``path``, remembered per path (shared engines only).

    A file loaded again skips compiling only if its bytes are the very bytes
    remembered: comparing them costs microseconds, and unlike a key of size
    and mtime it cannot be fooled by ``cp -p``, ``rsync -t`` or a reproducible
    build putting other bytes of the same size and mtime in place.
    """
    key = None
    if not limits.uses_epochs:
        key = (os.fspath(path), limits.engine_key)
        with _lock:
            found = _recent.get(key)
        if found is not None and found[0] == data:
            with _lock:
                if key in _recent:
                    _recent.move_to_end(key)
            return found[1]
    compiled = compile_plugin(data, name, limits)
    if key is not None:
        with _lock:
            _recent[key] = (data, compiled)
            _recent.move_to_end(key)
            while len(_recent) > RECENT_FILES:
                _recent.popitem(last=False)
    return compiled


def _after_fork_in_child() -> None:
    """The remembered modules belong to the parent's engines, which cannot compile in a forked child
    (and the facts remembered per content hold those engines' import types)."""
    global _lock
    _lock = threading.Lock()
    _recent.clear()
    _facts.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def export_signatures(module: wasmtime.Module, described: Any,
                      exports: Optional[Sequence[tuple[str, Any]]] = None) -> dict[str, Signature]:
    """Every callable export: from the metadata where it has one, else from its wasm type.

    ``exports``: the module's (name, type) pairs, if the caller has them already."""
    signatures: dict[str, Signature] = {}
    for name, kind in exports if exports is not None else [(e.name, e.type) for e in module.exports]:
        if not isinstance(kind, wasmtime.FuncType) or name.startswith("__wf_"):
            continue
        if name in ("_initialize", "_start") and name not in described:
            continue
        params, results = wasmtypes.func_type(kind)
        actual = (list(params), list(results))
        signature = described.get(name)
        if signature is None:
            signature = raw_signature(name, *actual)
        else:
            _check_wasm_type(signature, actual)
        signatures[name] = signature
    return signatures


def _check_wasm_type(signature: Signature, actual: tuple[list[str], list[str]]) -> None:
    """The metadata must describe the export's real wasm type; a module that lies is refused."""
    if signature.abi == "buffer":
        expected = (["i32", "i32"], ["i32"])
    else:
        expected = ([p.wasm or "?" for p in signature.params], list(signature.result_wasm))
    if (actual[0], actual[1]) != expected:
        def show(types: Sequence[Sequence[str]]) -> str:
            return f"({', '.join(types[0])}) -> ({', '.join(types[1])})"
        raise PluginLoadError(
            f"export {signature.name} is described as {signature} ({signature.abi} call, wasm type {show(expected)}) "
            f"but its wasm type is {show(actual)}; the module's wasmforge metadata does not match its code"
        )
