"""Tiny plugins written in WAT, for tests of reloading that need no cargo."""

from __future__ import annotations

from pathlib import Path

import wasmtime


def answer_module(value: int, extra_export: str = "") -> bytes:
    """A module whose ``answer()`` returns ``value``; ``extra_export`` adds a second function by that name."""
    extra = f'(func (export "{extra_export}") (param i32) (result i32) local.get 0)' if extra_export else ""
    return wasmtime.wat2wasm(f'(module (func (export "answer") (result i32) i32.const {value}) {extra})')


def write_answer(path: Path, value: int, extra_export: str = "") -> Path:
    path.write_bytes(answer_module(value, extra_export))
    return path
