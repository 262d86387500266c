"""Plugins built for wasm32-wasi: std's println! reaches Python, captured or forwarded."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime

import wasmforge
from conftest import PLUGINS, scaffold_with_plugin
from helpers import run_cli


@pytest.fixture(scope="module")
def wasi(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target):
    return scaffold_with_plugin(tmp_path_factory.mktemp("wasi"), "wasiplug", PLUGINS / "wasi.rs", target="wasm32-wasi")


@pytest.mark.cargo
def test_built_for_wasm32_wasi(wasi) -> None:
    # Debian 12's rustc calls the target wasm32-wasi, Debian 13's (Rust >= 1.84) wasm32-wasip1.
    assert wasi.wasm.parents[1].name in ("wasm32-wasi", "wasm32-wasip1"), wasi.wasm
    result = run_cli("build", "--target", "wasm32-wasi", "--json", cwd=wasi.root)
    assert result.returncode == 0, result.stderr
    # The name cargo built for, whichever of the two was asked for.
    assert json.loads(result.stdout)["target"] == wasi.wasm.parents[1].name


@pytest.mark.cargo
def test_output_captured_by_a_callable(wasi) -> None:
    out, err = [], []
    with wasmforge.load(wasi.wasm, stdout=out.append, stderr=err.append) as plugin:
        assert plugin.uses_wasi
        assert plugin.shout("hey") == "HEY"
        assert b"".join(out) == b"shouting hey\n"  # delivered before the call returned
        assert b"".join(err) == b"to stderr: 3\n"
        assert plugin.add(1, 2) == 3
        assert b"".join(out) == b"shouting hey\nadding 1 and 2\n"
        assert plugin.has_clock() is True


@pytest.mark.cargo
def test_output_into_file_objects(wasi) -> None:
    text, binary = io.StringIO(), io.BytesIO()
    with wasmforge.load(wasi.wasm, stdout=text, stderr=binary) as plugin:
        plugin.shout("é")
    assert text.getvalue() == "shouting é\n" and binary.getvalue() == b"to stderr: 2\n"


@pytest.mark.cargo
def test_output_forwarded_to_python_by_default(wasi, capsys) -> None:
    with wasmforge.load(wasi.wasm) as plugin:
        plugin.shout("x")
    captured = capsys.readouterr()
    assert captured.out == "shouting x\n" and captured.err == "to stderr: 1\n"


@pytest.mark.cargo
def test_inherit_writes_to_the_process_descriptors(wasi) -> None:
    script = f"import wasmforge; p = wasmforge.load({str(wasi.wasm)!r}, stdout='inherit', stderr='inherit'); print(p.shout('q'))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "shouting q\nQ\n" and result.stderr == "to stderr: 1\n"


@pytest.mark.cargo
def test_cli_call_shows_the_plugin_output_then_the_result(wasi) -> None:
    result = run_cli("call", "--plugin", str(wasi.wasm), "shout", "hi")
    assert result.stdout == "shouting hi\nHI\n"
    assert result.stderr == "to stderr: 2\n"


# ---- output is bounded (issue 11, item 7): WAT plugins that write to stdout ------------------------

FLOOD = Path(__file__).parent / "hostile" / "wasi_flood.wat"
BLOCK = 64 << 10  # what flood() writes at a time


def flood_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink, wrote=lambda: 1, **options) -> wasmforge.Plugin:
    """wasi_flood.wat, its captured output files made in ``tmp_path`` (to find them)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = bytes(wasmtime.wat2wasm(FLOOD.read_text()))
    return wasmforge.Plugin.from_bytes(data, name="flood.wasm", stdout=sink, host_functions={"wrote": wrote},
                                       limits=wasmforge.Limits(**options))


def disk_usage(path: Path) -> int:
    return path.stat().st_blocks * 512


def test_captured_output_is_not_kept_after_it_is_delivered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out: list[bytes] = []
    with flood_plugin(tmp_path, monkeypatch, out.append) as plugin:
        [captured] = tmp_path.glob("wasmforge-stdout-*")
        for _ in range(2000):
            plugin.say(1024)
        assert b"".join(out) == b"x" * (2000 * 1024)  # every byte delivered, in order
        assert disk_usage(captured) <= 8192  # not the 2 MiB written: each delivery emptied the file


def test_a_call_delivers_at_most_max_output_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    chunks: list[bytes] = []
    with flood_plugin(tmp_path, monkeypatch, chunks.append, max_output=1 << 20) as plugin:
        plugin.flood(40)  # 2.5 MiB
        assert sum(map(len, chunks)) == 1 << 20
        assert max(map(len, chunks)) <= BLOCK and len(chunks) == 16  # streamed 64 KiB at a time
        assert "flood.wasm wrote 2.5 MiB to stdout in one call, over its limit of 1 MiB (max_output=)" in caplog.text
        chunks.clear()
        plugin.say(10)  # the next call delivers its own output, from its first byte
        assert chunks == [b"x" * 10]
    assert wasmforge.Limits().max_output == 16 << 20  # the documented default


def test_a_flooding_call_is_cut_back_while_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # flood(0) writes 64 KiB blocks until wrote() says stop. Past 8x the limit, wrote() waits
    # (the plugin writes nothing meanwhile) until the file on disk is back to the limit: the
    # monitor cut it while the call ran. Without it the file holds all 8 MiB until the call ends.
    limit = 1 << 20
    blocks, seen = [0], []
    deadline = [0.0]

    def wrote() -> int:
        blocks[0] += 1
        if blocks[0] < 8 * limit // BLOCK:
            return 1
        [captured] = tmp_path.glob("wasmforge-stdout-*")
        deadline[0] = deadline[0] or time.monotonic() + 120
        while disk_usage(captured) > limit + BLOCK and time.monotonic() < deadline[0]:
            time.sleep(0.01)
        seen.append(disk_usage(captured))
        return 0

    delivered: list[bytes] = []
    with flood_plugin(tmp_path, monkeypatch, delivered.append, wrote=wrote, max_output=limit) as plugin:
        plugin.flood(0)
    assert seen and seen[0] <= limit + BLOCK, seen
    assert sum(map(len, delivered)) == limit


def test_delivering_output_counts_against_the_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks: list[bytes] = []

    def slow_sink(data: bytes) -> None:  # a reader that takes 0.3 s per 64 KiB
        chunks.append(data)
        time.sleep(0.3)

    with flood_plugin(tmp_path, monkeypatch, slow_sink, timeout=1) as plugin:
        with pytest.raises(wasmforge.PluginTimeout, match=r"flood\(\) in flood.wasm exceeded its time limit of 1 s"):
            plugin.flood(16)  # 1 MiB: 16 chunks, 4.8 s to deliver
        assert 1 <= len(chunks) < 16


def test_a_flood_under_a_time_limit_ends_with_the_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    delivered: list[bytes] = []
    with flood_plugin(tmp_path, monkeypatch, delivered.append, timeout=0.5, max_output=4 << 20) as plugin:
        with pytest.raises(wasmforge.PluginTimeout, match="exceeded its time limit of 0.5 s"):
            plugin.flood(0)  # forever
        assert 0 < sum(map(len, delivered)) <= 4 << 20
        delivered.clear()
        plugin.say(3)
        assert delivered == [b"xxx"]
