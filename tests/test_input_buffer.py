"""Buffer calls in one trip (issue 17, targets 2 and 4; docs/ABI.md, "Buffer calls"): the guest keeps a
reusable input buffer, the host writes arguments there and calls the export alone, and the descriptor
says where the buffer now is. Real cargo-built plugin (tests/plugins/boundary.rs) and hand-written WAT
for the old protocol and for hostile descriptors. Nothing is timed: calls into wasm are counted."""

from __future__ import annotations

import json
import struct
from typing import Any, Callable, Iterator

import pytest
import wasmtime

import wasmforge
from wasmforge import PluginProtocolError

from test_boundary import host_functions


def _live(plugin: wasmforge.Plugin) -> Any:
    live = plugin._instances.current
    assert live is not None
    return live


def _counting(plugin: wasmforge.Plugin, export: str) -> list[int]:
    """Counts the host's calls of ``export`` on the plugin's instance (the call path takes it from ``live.calls``)."""
    live = _live(plugin)
    inner = live.bound(export)
    seen: list[int] = []

    def counted(*values: Any) -> Any:
        seen.append(values[0])
        return inner(*values)

    live.calls[export] = counted
    return seen


@pytest.fixture(scope="module", params=["lean", "general"])
def plugin(boundary: Any, request: pytest.FixtureRequest) -> Iterator[wasmforge.Plugin]:
    options = {"timeout": 60} if request.param == "general" else {}
    with wasmforge.load(boundary.wasm, host_functions=host_functions([]), **options) as loaded:
        yield loaded


@pytest.mark.cargo
def test_a_buffer_call_is_one_trip_once_the_input_buffer_is_big_enough(plugin: wasmforge.Plugin) -> None:
    plugin.echo_bytes(b"x" * 5000)  # the buffer holds 5000 bytes from here on
    grows, allocs = _counting(plugin, "__wf_input"), _counting(plugin, "__wf_alloc")
    # The export itself is called from the generated code on the lean path (not through live.calls):
    # that it ran shows in its answers; that nothing else did, in the counts.
    for size in (1, 100, 5000, 4999):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        assert plugin.echo_bytes(data) == data
        assert plugin.join(["a", "b"], "-") == "a-b"  # JSON arguments: the same buffer
        assert plugin.double("ab") == "abab"
    assert grows == [] and allocs == []
    assert plugin.echo_bytes(b"y" * 6000) == b"y" * 6000  # bigger: the buffer grows, once
    assert grows == [6000] and allocs == []
    assert _live(plugin).in_cap >= 6000


@pytest.mark.cargo
def test_a_lone_owned_argument_takes_the_buffer_and_the_guest_makes_a_new_one(plugin: wasmforge.Plugin) -> None:
    plugin.reverse_bytes(b"z" * 3000)
    grows = _counting(plugin, "__wf_input")
    for round_ in range(5):
        data = bytes([round_]) * 2000 + b"end"
        assert plugin.reverse_bytes(data) == data[::-1]  # Vec<u8>: the buffer itself becomes the argument
        assert plugin.echo_str("é" * 1000) == "é" * 1000  # String: likewise
        assert _live(plugin).in_cap >= 3000  # the fresh buffer has the same capacity
    assert grows == []
    # The owned String path checks UTF-8 as the borrowed one does (Python never sends invalid UTF-8: by hand).
    live = _live(plugin)
    memory = live.fast_memory
    memory.write(live.in_ptr, b"ok\xff")
    address = live.bound("echo_str")(live.in_ptr, 3)
    status, out_ptr, out_len, live.in_ptr, live.in_cap = struct.unpack("<5I", memory.read(address, 20))
    assert (status, memory.read(out_ptr, out_len)) == (
        2, b"argument `s` is not valid UTF-8: invalid utf-8 sequence of 1 bytes from index 2")
    assert plugin.echo_str("fine") == "fine"


@pytest.mark.cargo
@pytest.mark.parametrize("function", ["bytes_around_host", "owned_around_host"])
def test_a_host_function_that_calls_back_in_does_not_overwrite_the_outer_input(boundary: Any, function: str) -> None:
    holder: dict[str, wasmforge.Plugin] = {}
    nested: list[object] = []
    host = host_functions([])

    @host.function
    def host_bytes(data: bytes) -> bytes:
        inner = holder["plugin"]
        # Same size as the outer input, then bigger, then JSON, then the owned path: each would land in
        # the outer call's buffer if the host still took it for free.
        nested.append(inner.echo_bytes(b"N" * len(data)))
        nested.append(inner.echo_bytes(b"M" * (len(data) * 3)))
        nested.append(inner.join(["q" * len(data), "r"], "-"))
        nested.append(inner.reverse_bytes(b"R" * len(data)))
        return data[::-1]

    with wasmforge.load(boundary.wasm, host_functions=host) as plugin:
        holder["plugin"] = plugin
        for size in (1000, 1000, 2500):
            data = bytes(range(250)) * (size // 250)
            assert plugin.call(function, data) == data + data[::-1]
            assert nested[-4:] == [b"N" * size, b"M" * (size * 3), "q" * size + "-r", b"R" * size]
            assert plugin.echo_bytes(data) == data  # and the buffer serves the next outer call


@pytest.mark.cargo
@pytest.mark.parametrize("function", ["echo_bytes", "reverse_bytes"])
def test_an_input_buffer_over_16_mib_is_freed_after_its_call(plugin: wasmforge.Plugin, function: str) -> None:
    huge = b"h" * (17 << 20)
    assert len(plugin.call(function, huge)) == len(huge)
    assert _live(plugin).in_cap == 0  # not kept: the next call asks for a buffer again
    assert plugin.call(function, b"small") in (b"small", b"llams")
    assert 5 <= _live(plugin).in_cap <= 16 << 20
    big = b"b" * (16 << 20)  # up to 16 MiB it is kept
    assert len(plugin.call(function, big)) == len(big)
    assert _live(plugin).in_cap >= 16 << 20


@pytest.mark.cargo
def test_a_new_plugin_still_takes_calls_from_an_older_host(plugin: wasmforge.Plugin) -> None:
    """An older host knows only __wf_alloc and 3 descriptor words: the guest takes that buffer as its own."""
    from test_boundary import raw_buffer_call

    for name, payload, output in (("echo_bytes", b"abc" * 500, b"abc" * 500), ("reverse_bytes", b"abc", b"cba"),
                                  ("echo_str", "é".encode() * 10, "é".encode() * 10),
                                  ("join", b'[["a", "b"], "-"]', b"a-b")):
        assert raw_buffer_call(plugin, name, payload) == (0, output)
        assert plugin.echo_bytes(b"new host " * 100) == b"new host " * 100  # and the input buffer, in between


@pytest.mark.cargo
def test_a_pointer_that_is_neither_the_input_buffer_nor_an_allocation_is_refused(plugin: wasmforge.Plugin) -> None:
    """A host that bypasses the descriptor (call_raw) leaves the host's record stale: the guest refuses the
    pointer as a bad input instead of freeing it as its own, and the next call finds the buffer again."""
    live = _live(plugin)
    plugin.echo_bytes(b"a" * 64)
    stale = live.in_ptr
    address = plugin.call_raw("reverse_bytes", stale, 10) & 0xFFFFFFFF  # takes the buffer; the host never hears
    assert struct.unpack("<I", plugin.memory.read(address, 4)) == (0,)
    with pytest.raises(wasmforge.ArgumentError, match="neither the input buffer nor the last __wf_alloc"):
        plugin.echo_bytes(b"b" * 20)  # written where the buffer was
    assert plugin.echo_bytes(b"c" * 20) == b"c" * 20
    address = plugin.call_raw("echo_bytes", 8, 16) & 0xFFFFFFFF  # a made-up pointer
    assert struct.unpack("<I", plugin.memory.read(address, 4)) == (2,)
    assert plugin.echo_bytes(b"d" * 20) == b"d" * 20


# ---- the old protocol: a plugin without __wf_input ---------------------------------------------

_RECORD = json.dumps({"v": 1, "kind": "export", "name": "echo", "abi": "buffer", "input": "bytes", "output": "bytes",
                      "params": [{"name": "data", "type": "Vec<u8>", "wire": "bytes"}], "returns": "Vec<u8>",
                      "fallible": False}) + "\n"

#: The shape of plugins built before the input buffer: __wf_alloc per call, a descriptor of 3 words,
#: followed in memory by two words that a host must not take for an input buffer (here: 64, 8).
OLD_WAT = f"""
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (global $allocs (mut i32) (i32.const 0))
  (func (export "__wf_alloc") (param $n i32) (result i32)
    (global.set $allocs (i32.add (global.get $allocs) (i32.const 1)))
    (global.get $heap)
    (global.set $heap (i32.add (global.get $heap) (local.get $n))))
  (func (export "allocs") (result i32) (global.get $allocs))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (local.get $ptr))
    (i32.store (i32.const 24) (local.get $len))
    (i32.store (i32.const 28) (i32.const 64))
    (i32.store (i32.const 32) (i32.const 8))
    (i32.const 16))
  (@custom "wasmforge.exports" {json.dumps(_RECORD)})
)
"""


@pytest.mark.parametrize("options", [{}, {"limits": wasmforge.Limits(timeout=60)}])
def test_a_plugin_without_an_input_buffer_is_called_the_old_way(options: dict[str, Any]) -> None:
    with wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(OLD_WAT)), name="old.wasm", **options) as plugin:
        for count in range(1, 4):
            assert plugin.echo(b"abc" * count) == b"abc" * count
            assert plugin.call_raw("allocs") == count  # one __wf_alloc per call
        assert plugin.memory.read(64, 8) == bytes(8)  # nothing written where the extra words pointed


# ---- hostile descriptors -------------------------------------------------------------------------


def _hostile_wat(in_ptr: int, in_cap: int) -> str:
    """A guest with __wf_input whose descriptor reports an input buffer at ``in_ptr`` of ``in_cap`` bytes."""
    return f"""
(module
  (memory (export "memory") 1)
  (func (export "__wf_input") (param $n i32) (result i32) (i32.const 1024))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (local.get $ptr))
    (i32.store (i32.const 24) (local.get $len))
    (i32.store (i32.const 28) (i32.const {in_ptr}))
    (i32.store (i32.const 32) (i32.const {in_cap}))
    (i32.const 16))
  (@custom "wasmforge.exports" {json.dumps(_RECORD)})
)
"""


@pytest.mark.parametrize("options", [{}, {"limits": wasmforge.Limits(timeout=60)}])
@pytest.mark.parametrize("in_ptr, in_cap", [(65530, 100), (0xFFFFFFF0, 4096), (65536, 64), (65500, 0xFFFFFFFF)])
def test_an_input_buffer_outside_memory_is_a_protocol_error_on_the_next_call(
        in_ptr: int, in_cap: int, options: dict[str, Any]) -> None:
    wasm = bytes(wasmtime.wat2wasm(_hostile_wat(in_ptr, in_cap)))
    with wasmforge.Plugin.from_bytes(wasm, name="liar.wasm", **options) as plugin:
        assert plugin.echo(b"first") == b"first"  # written where __wf_input said; the descriptor then lies
        before = plugin.memory.read(0, plugin.memory.size)
        with pytest.raises(PluginProtocolError, match=r"^echo\(\) in liar.wasm returned an argument buffer outside its "
                                                      r"memory: write of 40 bytes at \d+ is outside liar.wasm's memory"):
            plugin.echo(b"x" * 40)
        assert plugin.memory.read(0, plugin.memory.size) == before  # nothing written anywhere
        assert plugin.echo(b"again") == b"again"  # the buffer is asked for afresh: the host is intact
