"""wasmforge.toml: every key checked, [limits] named as load() names its options, [watch] as watch takes it."""

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


# ---- [watch] ----


def test_watch_settings_from_wasmforge_toml(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text("[workspace]\nmembers = []\n")
    (tmp_path / "wasmforge.toml").write_text(
        '[plugin]\ncrates = ["p"]\n[watch]\ndebounce_ms = 80\npoll = true\npoll_interval_ms = 500\ncheck_timeout = 2.5\n'
    )
    settings = load_settings(tmp_path)
    assert (settings.debounce_ms, settings.poll, settings.poll_interval_ms, settings.check_timeout) == (80, True, 500, 2.5)
    assert load_settings(tmp_path, {"debounce_ms": 5}).debounce_ms == 5
    assert load_settings(tmp_path, {"check_timeout": 9}).check_timeout == 9  # --check-timeout wins


@pytest.mark.parametrize(
    "table, message",
    [
        ("[watch]\npoll = 1\n", r"\[watch\] poll must be true or false, got 1"),
        ("[watch]\npoll_interval_ms = 1\n", r"\[watch\] poll_interval_ms must be 10 or more, got 1"),
        ("[watch]\ndebounce_ms = -1\n", r"\[watch\] debounce_ms must be 0 or more, got -1"),
        ("[watch]\ncheck_timeout = 0\n", r"\[watch\] check_timeout must be more than 0 and at most 31536000 seconds, got 0"),
        ("[watch]\ncheck_timeout = inf\n", r"\[watch\] check_timeout must be more than 0 .* got inf"),
        ("[watch]\ncheck_timeout = \"5s\"\n", r"\[watch\] check_timeout must be a whole number or a number, got '5s'"),
    ],
)
def test_bad_watch_settings_are_named(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "Cargo.toml").write_text("[workspace]\nmembers = []\n")
    (tmp_path / "wasmforge.toml").write_text('[plugin]\ncrates = ["p"]\n' + table)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path)


# ---- the environment and sizes in words ----


@pytest.mark.parametrize("value, offline", [("1", True), ("true", True), ("YES", True), ("on", True),
                                            ("0", False), ("", False), ("off", False), ("maybe", False)])
def test_wasmforge_offline_is_one_on_off_flag(value: str, offline: bool) -> None:
    from wasmforge.workspace.toolchain import offline_from_env

    assert offline_from_env({"WASMFORGE_OFFLINE": value}) is offline


def test_one_byte_size_formatter_in_two_styles() -> None:
    from wasmforge._text import format_bytes

    assert [format_bytes(n) for n in (100, 1024, 1536, 64 << 20, 3 << 30)] == [
        "100 bytes", "1 KiB", "1.5 KiB", "64 MiB", "3 GiB"]  # messages
    assert [format_bytes(n, fixed_point=True) for n in (83, 1024, 367718)] == ["83 B", "1.0 KiB", "359.1 KiB"]  # results
    assert format_bytes(None) == "unknown"
