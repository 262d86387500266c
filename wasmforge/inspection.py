"""`wasmforge inspect`: what a .wasm file offers and needs, without running it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

import wasmtime

from . import _wasmfile
from ._imports import RUNTIME_MODULE, WASI_MODULES
from .abi import HOST_IMPORT_MODULE, METADATA_SECTION, parse_metadata, raw_signature
from ._compiled import export_signatures
from .host import compile_module, read_plugin_file
from .limits import DEFAULT_MAX_MODULE_SIZE

_PAGE = 65536


def inspect_plugin(path: Path, max_module_size: Optional[int] = DEFAULT_MAX_MODULE_SIZE) -> dict[str, Any]:
    """A JSON-ready description of the plugin at ``path`` (shape in docs/CLI.md).

    The file is read as :func:`wasmforge.load` reads it: a regular file, refused past ``max_module_size``.
    """
    data = read_plugin_file(path, max_module_size)
    metadata = parse_metadata(_wasmfile.custom_sections(data, METADATA_SECTION, path.name), path.name)
    module = compile_module(data, path.name)
    host_functions = []
    other = []
    wasi = False
    for item in module.imports:
        if item.module == HOST_IMPORT_MODULE and isinstance(item.type, wasmtime.FuncType):
            signature = metadata.imports.get(item.name or "") or raw_signature(
                item.name or "", [str(t) for t in item.type.params], [str(t) for t in item.type.results], "import"
            )
            host_functions.append(signature.to_json())
        elif item.module in WASI_MODULES:
            wasi = True
        elif item.module != RUNTIME_MODULE:
            other.append(f"{item.module}.{item.name}")
    memory = next((e.type for e in module.exports if isinstance(e.type, wasmtime.MemoryType)), None)
    return {
        "file": str(path),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "wire_version": metadata.version,
        "wasi": wasi,
        "memory": _describe_memory(memory),
        "exports": [s.to_json() for s in export_signatures(module, metadata.exports).values()],
        "host_functions": host_functions,
        "other_imports": other,
    }


def _describe_memory(memory: Any) -> str:
    if memory is None:
        return "none exported"
    limits = memory.limits
    text = f"{limits.min} pages ({limits.min * _PAGE // 1024} KiB) at start"
    return text + (f", at most {limits.max} pages" if limits.max is not None else ", no maximum")
