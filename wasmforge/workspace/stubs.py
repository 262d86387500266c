"""Writing typed stubs to a directory: `wasmforge stubs` and `watch --stubs` (the text is abi/stubs.py's).

A stub file is written whole (to a temporary name, then renamed), only when
its text changed, and never over a file wasmforge did not write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ..abi.pytypes import RecordedType
from ..abi.signature import Signature
from ..abi.stubs import HEADER, module_name, stub_text
from ..errors import UsageError


def stub_path(directory: Path, plugin_file: str) -> Path:
    """Where the stubs of ``plugin_file`` go in ``directory``: ``DIR/typed_plugin.pyi``."""
    return directory / f"{module_name(plugin_file)}.pyi"


def write_stubs(directory: Path, plugin_file: str, exports: Mapping[str, Signature],
                types: Mapping[str, RecordedType]) -> tuple[Path, bool]:
    """Writes the plugin's ``.pyi`` into ``directory``; its path, and whether it changed.

    UsageError when the file is there and wasmforge did not write it (it is left as it is),
    or when ``directory`` cannot be written.
    """
    path = stub_path(directory, plugin_file)
    text = stub_text(plugin_file, exports, types)
    try:
        existing = path.read_text(encoding="utf-8") if path.is_file() or path.exists() else None
    except (OSError, UnicodeDecodeError):
        existing = ""
    if existing is not None and not existing.startswith(HEADER):
        raise UsageError(f"{path} is not a stub file wasmforge wrote; leaving it as it is: "
                         "move it away or write the stubs elsewhere with -o DIR")
    if existing == text:
        return path, False
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        raise UsageError(f"cannot write the stubs to {directory}: {error.strerror or error}") from error
    return path, True
