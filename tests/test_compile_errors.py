"""An unsupported #[plugin_fn] signature is a compile error pointing at the offending argument."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import PLUGINS
from helpers import copy_workspace, run_cli

SOURCE = (PLUGINS / "unsupported.rs").read_text().splitlines()


def line_of(marker: str) -> int:
    return next(n for n, text in enumerate(SOURCE, 1) if marker in text)


@pytest.fixture(scope="module")
def diagnostics(demo, tmp_path_factory: pytest.TempPathFactory) -> str:
    workspace = tmp_path_factory.mktemp("unsupported") / "demo"
    copy_workspace(demo.root, workspace)
    shutil.copy(PLUGINS / "unsupported.rs", workspace / "crates/demo-plugin/src/lib.rs")
    result = run_cli("build", cwd=workspace)
    assert result.returncode == 1
    return result.stderr


@pytest.mark.cargo
@pytest.mark.parametrize(
    "marker, message, column_of",
    [
        ("BAD-MUT", "cannot pass `&mut` across the wasm boundary", "mut Vec"),
        ("BAD-REF", "supports only `&str` and `&[u8]` as references", "&Vec"),
        ("BAD-GENERIC", "functions cannot be generic", "<T"),
        ("BAD-IMPL", "needs a concrete type here, not `impl Trait`", "impl Fn"),
        ("BAD-PATTERN", "arguments must be plain names", "(a, b)"),
        ("BAD-ASYNC", "functions cannot be async", "async"),
        ("BAD-RESERVED", "`memory` is reserved by the wasm module", "memory"),
        ("BAD-WIRE", 'takes only `wire = "msgpack"` (or `wire = "json"`, the default)', "wire"),
        ("BAD-ARGS", "#[plugin_type] takes no arguments", "strict"),
        ("BAD-SERDE", "the trait bound `NotSerde: serde::de::Deserialize", "NotSerde"),
        ("BAD-RETURN", "the trait bound `NotSerde: serde::ser::Serialize", "NotSerde"),
    ],
)
def test_error_points_at_the_offending_code(diagnostics: str, marker: str, message: str, column_of: str) -> None:
    line = line_of(marker)
    column = SOURCE[line - 1].index(column_of) + 1
    pattern = re.escape(message) + r".*\n\s*--> crates/demo-plugin/src/lib\.rs:" + f"{line}:{column}\n"
    assert re.search(pattern, diagnostics), f"no {message!r} at {line}:{column} in:\n{diagnostics}"
