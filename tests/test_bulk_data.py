"""Bulk data (issue 17, target 4): bytearray and memoryview arguments go into wasm memory without an
intermediate bytes object, and ``out=`` reads a bytes result into the caller's buffer.

Real cargo-built plugin (tests/plugins/boundary.rs); "no intermediate copy" is checked with tracemalloc,
which sees every Python allocation and none of wasm's linear memory. Nothing is timed.
"""

from __future__ import annotations

import array
import tracemalloc
from typing import Any, Iterator

import pytest

import wasmforge

from test_boundary import host_functions

MIB = 1024 * 1024


@pytest.fixture(scope="module", params=["lean", "general"])
def plugin(boundary: Any, request: pytest.FixtureRequest) -> Iterator[wasmforge.Plugin]:
    """The boundary plugin on the lean buffer path (no limits) and the general one (a time limit)."""
    options = {"timeout": 60} if request.param == "general" else {}
    with wasmforge.load(boundary.wasm, host_functions=host_functions([]), **options) as loaded:
        yield loaded


def _peak_python_allocation(call: Any) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.cargo
def test_a_bytes_result_is_read_into_the_callers_buffer(plugin: wasmforge.Plugin) -> None:
    data = bytes(range(256)) * 40
    out = bytearray(len(data) + 100)
    assert plugin.echo_bytes(data, out=out) == len(data)
    assert out[: len(data)] == data and out[len(data):] == bytes(100)  # the rest untouched
    view = memoryview(bytearray(8))
    assert plugin.make_bytes(5, out=view[2:]) == 5
    assert bytes(view) == b"\0\0" + bytes(range(5)) + b"\0"
    words = array.array("I", [0xFFFFFFFF] * 4)  # any writable contiguous buffer, as bytes
    assert plugin.echo_bytes(b"\1\2\3\4", out=words) == 4
    assert words.tobytes()[:4] == b"\1\2\3\4"
    assert plugin.function("echo_bytes")(b"xy", out=out) == 2 and out[:2] == b"xy"


@pytest.mark.cargo
def test_out_is_checked_before_the_call_and_a_result_too_large_copies_nothing(plugin: wasmforge.Plugin) -> None:
    for wrong, why in ((b"read only", "read-only"), (memoryview(bytearray(16))[::2], "not contiguous"),
                       (42, "got int")):
        with pytest.raises(wasmforge.ArgumentError, match=why):
            plugin.echo_bytes(b"data", out=wrong)
    with pytest.raises(wasmforge.ArgumentError, match=r"out= is for functions returning bytes"):
        plugin.echo_str("text", out=bytearray(10))
    small = bytearray(b"untouched")
    with pytest.raises(wasmforge.ArgumentError, match=r"returned 20 bytes, more than out= holds \(9 bytes\); nothing was copied"):
        plugin.make_bytes(20, out=small)
    assert small == b"untouched"
    assert plugin.echo_bytes(b"still fine") == b"still fine"  # the instance was not thrown away


@pytest.mark.cargo
def test_bytearray_and_memoryview_arguments_are_not_copied_into_bytes_first(plugin: wasmforge.Plugin) -> None:
    payload = bytearray(MIB)
    payload[::4097] = b"\x07" * len(payload[::4097])
    out = bytearray(MIB)
    for argument in (payload, memoryview(payload), memoryview(payload).cast("I")):
        plugin.echo_bytes(argument, out=out)  # the first call grows wasm memory; then measure
        peak = _peak_python_allocation(lambda: plugin.echo_bytes(argument, out=out))
        assert peak < MIB // 8, f"{type(argument).__name__}: {peak} bytes allocated in Python for a 1 MiB echo"
        assert out == payload
    # Without out= the result is one new bytes object, and nothing more.
    peak = _peak_python_allocation(lambda: plugin.echo_bytes(payload))
    assert MIB <= peak < MIB + MIB // 8
    assert plugin.byte_len(memoryview(array.array("d", [1.0, 2.0]))) == 16  # a view of any format, as its bytes


@pytest.mark.cargo
def test_out_goes_through_plugin_call_and_a_hot_plugin(plugin: wasmforge.Plugin, boundary: Any) -> None:
    out = bytearray(8)
    assert plugin.call("echo_bytes", b"abc", out=out) == 3 and out[:3] == b"abc"
    with wasmforge.HotPlugin.from_file(boundary.wasm, host_functions=host_functions([])) as hot:
        assert hot.call("echo_bytes", b"hot", out=out) == 3 and out[:3] == b"hot"
        assert hot.echo_bytes(b"fn", out=out) == 2 and out[:2] == b"fn"
        assert hot.echo_bytes(b"no out") == b"no out"
