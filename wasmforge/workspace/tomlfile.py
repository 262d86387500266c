"""The TOML files wasmforge reads (wasmforge.toml, Cargo.toml, template.toml): one parser, one set of rules.

A TOML file is read only if it is a regular file of at most 1 MiB (a FIFO in
its place cannot hang the read); any problem with it is one error naming the
file: ConfigError for a workspace's files, or the error class the caller
gives (ScaffoldError for a template's).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

from .._files import FileTooLarge, NotARegularFile, read_regular_file
from ..errors import ConfigError, WasmforgeError

#: Larger TOML files are refused unread.
MAX_TOML_FILE = 1 << 20


def read_text(path: Path, error: type[WasmforgeError] = ConfigError) -> str:
    """The text of the TOML file at ``path``; FileNotFoundError (and other OSErrors) pass through."""
    try:
        return read_regular_file(path, MAX_TOML_FILE).decode("utf-8")
    except NotARegularFile as problem:
        raise error(f"{path} {problem.strerror}; it must be a TOML file") from problem
    except FileTooLarge as problem:
        raise error(f"{path} is over {MAX_TOML_FILE >> 20} MiB ({problem.size} bytes); "
                    "it must be a small TOML file") from problem
    except IsADirectoryError as problem:
        raise error(f"{path} is a directory; it must be a TOML file") from problem
    except UnicodeDecodeError as problem:
        raise error(f"{path} is not valid TOML: {problem}") from problem


def parse(text: str, source: object, error: type[WasmforgeError] = ConfigError) -> dict[str, Any]:
    """TOML ``text`` as a dict; ``error`` naming ``source`` if it is not valid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise error(f"{source} is not valid TOML: {problem}") from problem
    except RecursionError as problem:
        raise error(f"{source} is not valid TOML: arrays or tables nested too deeply") from problem


def read(path: Path, *, missing_ok: bool = False, error: type[WasmforgeError] = ConfigError) -> Optional[dict[str, Any]]:
    """The TOML file at ``path`` as a dict; None when it does not exist and ``missing_ok``."""
    try:
        text = read_text(path, error)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise
    except OSError as problem:
        raise error(f"cannot read {path}: {problem.strerror or problem}") from problem
    return parse(text, path, error)
