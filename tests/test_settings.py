"""wasmforge.toml: every key checked, [limits] named as load() names its options."""

from __future__ import annotations

from pathlib import Path

import pytest

import wasmforge
from wasmforge.errors import ConfigError
from wasmforge.workspace.settings import load_settings


def workspace(tmp_path: Path, limits: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Cargo.toml").write_text("[workspace]\nmembers = []\n")
    (tmp_path / "wasmforge.toml").write_text('[plugin]\ncrates = ["p"]\n\n[limits]\n' + limits)
    return tmp_path


def test_memory_limit_is_the_key_and_memory_its_old_spelling(tmp_path: Path) -> None:
    new = load_settings(workspace(tmp_path / "new", 'memory_limit = "32MiB"\n'))
    old = load_settings(workspace(tmp_path / "old", 'memory = "32MiB"\n'))
    assert new.memory_limit == old.memory_limit == "32MiB"
    assert new.limits() == old.limits() == wasmforge.Limits(memory=32 << 20)
    assert new.limit_options() == {"memory_limit": "32MiB"}  # as wasmforge.load takes it


def test_both_spellings_at_once_are_refused(tmp_path: Path) -> None:
    root = workspace(tmp_path, 'memory_limit = "32MiB"\nmemory = "64MiB"\n')
    with pytest.raises(ConfigError, match=r"\[limits\] sets both memory_limit and memory, its old spelling; "
                                          r"keep memory_limit"):
        load_settings(root)


def test_a_bad_limit_names_the_file_and_the_table(tmp_path: Path) -> None:
    root = workspace(tmp_path, 'memory_limit = "plenty"\n')
    with pytest.raises(ConfigError, match=r"wasmforge.toml: \[limits\]: memory_limit 'plenty' is not a size") as caught:
        load_settings(root)
    assert isinstance(caught.value.__cause__, wasmforge.OptionError)  # the library's own error, kept for callers
