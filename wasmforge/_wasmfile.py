"""Reading a .wasm file's framing: the header and its custom sections.

wasmtime-py does not expose custom sections, and wasmforge's export metadata
lives in one, so the section headers (id byte + LEB128 size) are walked here.
"""

from __future__ import annotations

from .errors import PluginLoadError

WASM_MAGIC = b"\0asm"
_CUSTOM_SECTION = 0


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


def custom_sections(data: bytes, name: str, source: str = "module") -> list[bytes]:
    """The payloads of every custom section called ``name``, in file order."""
    check_header(data, source)
    found: list[bytes] = []
    offset = 8
    while offset < len(data):
        section_id = data[offset]
        size, start = _read_leb128(data, offset + 1, source)
        end = start + size
        if end > len(data):
            raise PluginLoadError(f"{source} is truncated: a section runs past the end of the file")
        if section_id == _CUSTOM_SECTION:
            name_length, name_start = _read_leb128(data, start, source)
            name_end = name_start + name_length
            if name_end <= end and data[name_start:name_end] == name.encode("utf-8"):
                found.append(data[name_end:end])
        offset = end
    return found
