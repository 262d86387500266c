"""`wasmforge inspect`: what a .wasm file offers and needs, without running it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping, Optional

import wasmtime

from ..abi import wasmfile, wasmtypes
from ..abi.pytypes import RecordedType, recorded_json
from ..abi.signature import HOST_IMPORT_MODULE, METADATA_SECTION, Signature, parse_metadata, raw_signature
from ..abi.wasmfile import read_plugin_file
from ..limits import DEFAULT_MAX_MODULE_SIZE
from .compiled import compile_module, export_signatures, main_memory_export
from .imports import RUNTIME_MODULE, WASI_MODULES, ImportFact


def inspect_plugin(path: Path, host_functions: Optional[Mapping[str, Any]] = None,
                   max_module_size: Optional[int] = DEFAULT_MAX_MODULE_SIZE) -> dict[str, Any]:
    """A JSON-ready description of the plugin at ``path`` (shape in docs/CLI.md).

    With ``host_functions`` (a mapping of import names to callables), each imported
    function says whether it is ``provided``. The file is read as :func:`wasmforge.load`
    reads it: a regular file, refused past ``max_module_size`` before reading.
    """
    data = read_plugin_file(path, max_module_size)
    metadata = parse_metadata(wasmfile.custom_sections(data, METADATA_SECTION, path.name), path.name)
    module = compile_module(data, path.name)
    host_functions_needed = []
    other = []
    imports = []
    wasi = False
    facts = ImportFact.all_of(module)  # never str(ValType): it aborts on v128
    for item in facts:
        if item.module == HOST_IMPORT_MODULE and item.kind == "function":
            signature = metadata.imports.get(item.name) or raw_signature(item.name, item.params, item.results, "import")
            entry = signature.to_json()
            if host_functions is not None:
                entry["provided"] = item.name in host_functions
            host_functions_needed.append(entry)
        elif item.module in WASI_MODULES:
            wasi = True
        elif item.module != RUNTIME_MODULE:
            other.append(item.key)
            described: dict[str, Any] = {"module": item.module, "name": item.name, "kind": item.kind,
                                         "type": wasmtypes.describe_extern(item.type)}
            if host_functions is not None and item.kind == "function":
                described["provided"] = item.key in host_functions or item.name in host_functions
            imports.append(described)
    memories = [{"name": item.key, "kind": "import", "type": wasmtypes.describe_memory_type(item.type)}
                for item in facts if item.kind == "memory"]
    exported = [e for e in module.exports if isinstance(e.type, wasmtime.MemoryType)]
    main = main_memory_export(data, path.name, [e.name for e in exported], facts)
    # Memory 0 first: the imported one, or the export that is memory 0.
    exported.sort(key=lambda e: e.name != main)
    memories += [{"name": e.name, "kind": "export", "type": wasmtypes.describe_extern(e.type)} for e in exported]
    return {
        "file": str(path),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "wire_version": metadata.version,
        "wasi": wasi,
        "memory": memories[0]["type"] if memories else "none exported",
        "memories": memories,
        "exports": [s.to_json() for s in export_signatures(module, metadata.exports).values()],
        "types": [recorded_json(t) for t in metadata.types.values()],
        "host_functions": host_functions_needed,
        "other_imports": other,
        "imports": imports,
    }


def typed_description(path: Path, max_module_size: Optional[int] = DEFAULT_MAX_MODULE_SIZE
                      ) -> tuple[dict[str, Signature], dict[str, RecordedType]]:
    """The plugin's callable exports (metadata, or bare wasm types) and its recorded types: what its stubs say."""
    data = read_plugin_file(path, max_module_size)
    metadata = parse_metadata(wasmfile.custom_sections(data, METADATA_SECTION, path.name), path.name)
    return export_signatures(compile_module(data, path.name), metadata.exports), dict(metadata.types)
