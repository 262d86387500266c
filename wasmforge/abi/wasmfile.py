"""Reading a .wasm file: the file itself, its size, its header and its sections.

A plugin file is read only if it is a regular file no larger than the limit
(a FIFO or a device in its place cannot hang the read, and a huge file is
refused before a byte of it is read). wasmtime-py does not expose custom
sections, and wasmforge's export metadata lives in one, so the section headers
(id byte + LEB128 size) are walked here; and it lists exports without their
indices, which say which memory is memory 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from .._files import FileTooLarge, NotARegularFile, read_regular_file
from .._text import format_bytes
from ..errors import PluginLoadError

WASM_MAGIC = b"\0asm"
_CUSTOM_SECTION = 0
_EXPORT_SECTION = 7
_MEMORY_EXPORT = 2


def read_plugin_file(file: Path, max_module_size: Optional[int]) -> bytes:
    """The bytes of the plugin file at ``file``: a regular file of at most ``max_module_size`` bytes,
    refused (PluginLoadError) before reading otherwise. A FIFO or a device in its place cannot hang it."""
    try:
        return read_regular_file(file, max_module_size)
    except FileTooLarge as error:
        raise PluginLoadError(_too_large(str(file), error.size, error.limit)) from error
    except FileNotFoundError as error:
        raise PluginLoadError(f"no plugin at {file}; build one with `{build_command_for(file)}`") from error
    except IsADirectoryError as error:
        raise PluginLoadError(f"{file} is a directory, not a .wasm file") from error
    except NotARegularFile as error:
        raise PluginLoadError(f"{file} is {error.kind}, not a .wasm file; name a regular file") from error
    except OSError as error:
        raise PluginLoadError(f"could not read {file}: {error.strerror or error}") from error


def check_module_size(data: bytes, max_module_size: Optional[int], source: str) -> None:
    """PluginLoadError if a module's bytes are more than ``max_module_size`` (None: no limit)."""
    if max_module_size is not None and len(data) > max_module_size:
        raise PluginLoadError(_too_large(source, len(data), max_module_size))


def _too_large(source: str, size: int, limit: int) -> str:
    return (f"{source} is {format_bytes(size)}, over the {format_bytes(limit)} limit "
            "for plugin files; pass max_module_size= to load a larger one")


def build_command_for(path: Path) -> str:
    """The command that makes a missing .wasm: cargo puts release builds under .../release/."""
    return "wasmforge build --release" if "release" in path.parts else "wasmforge build"


def check_header(data: bytes, source: str) -> None:
    """Raises PluginLoadError with a useful message if ``data`` is not a binary wasm module."""
    if not data:
        raise PluginLoadError(f"{source} is empty, not a WebAssembly module; rebuild it with `wasmforge build`")
    if data[:4] == WASM_MAGIC:
        if len(data) < 8:
            raise PluginLoadError(f"{source} is truncated: it ends inside the WebAssembly header")
        if data[4:8] != b"\x01\0\0\0":
            raise PluginLoadError(
                f"{source} is a WebAssembly component or an unsupported version, not a core module; "
                "build it for wasm32-unknown-unknown or wasm32-wasi"
            )
        return
    if data.lstrip()[:1] == b"(" or data.lstrip()[:2] == b";;":
        raise PluginLoadError(
            f"{source} holds WebAssembly text (WAT), not a binary module; "
            "compile it first, e.g. with wasmtime.wat2wasm() or `wasm-tools parse`"
        )
    raise PluginLoadError(f"{source} is not a WebAssembly module (it does not start with \\0asm)")


def _read_leb128(data: bytes, offset: int, source: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if offset >= len(data):
            raise PluginLoadError(f"{source} is truncated: it ends inside a section header")
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, offset
        shift += 7
        if shift > 35:
            raise PluginLoadError(f"{source} is malformed: a section size is longer than 5 bytes")


def sections(data: bytes, source: str = "module") -> Iterator[tuple[int, int, int]]:
    """Each section's (id, start, end) of its payload, in file order."""
    check_header(data, source)
    offset = 8
    while offset < len(data):
        section_id = data[offset]
        size, start = _read_leb128(data, offset + 1, source)
        end = start + size
        if end > len(data):
            raise PluginLoadError(f"{source} is truncated: a section runs past the end of the file")
        yield section_id, start, end
        offset = end


def custom_sections(data: bytes, name: str, source: str = "module") -> list[bytes]:
    """The payloads of every custom section called ``name``, in file order."""
    found: list[bytes] = []
    for section_id, start, end in sections(data, source):
        if section_id == _CUSTOM_SECTION:
            name_length, name_start = _read_leb128(data, start, source)
            name_end = name_start + name_length
            if name_end <= end and data[name_start:name_end] == name.encode("utf-8"):
                found.append(data[name_end:end])
    return found


def exported_memories(data: bytes, source: str = "module") -> dict[str, int]:
    """Each exported memory's name and its index (memory 0 is the one instructions use by default).

    wasmtime-py lists exports without their indices; the export section has them.
    Call after the module compiled: the section is then known to be well formed.
    """
    found: dict[str, int] = {}
    for section_id, start, end in sections(data, source):
        if section_id != _EXPORT_SECTION:
            continue
        count, offset = _read_leb128(data, start, source)
        for _ in range(count):
            name_length, offset = _read_leb128(data, offset, source)
            name = data[offset : offset + name_length].decode("utf-8", errors="replace")
            kind = data[offset + name_length]
            index, offset = _read_leb128(data, offset + name_length + 1, source)
            if kind == _MEMORY_EXPORT:
                found[name] = index
    return found
