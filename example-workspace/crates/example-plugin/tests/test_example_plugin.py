"""The plugin, tested from Python. `wasmforge test` runs these after the Rust
unit tests; plain `pytest` works too. The fixtures come with wasmforge:
`wasm_plugin` is the plugin crate this file is in (whatever its name, among
any number of plugin crates), built once per session and loaded fresh for
each test."""

import pytest

import wasmforge


def test_add(wasm_plugin):
    assert wasm_plugin.add(1, 2) == 3


def test_length_of_the_seed_word(wasm_plugin):
    assert wasm_plugin.length("supercalifragilisticexpialidocious") == 34


def test_structs_arrive_as_dicts(wasm_plugin):
    assert wasm_plugin.stats("hello big world") == {"words": 3, "longest": "hello"}


def test_errors_arrive_as_exceptions(wasm_plugin):
    with pytest.raises(wasmforge.PluginError, match="is not a port number"):
        wasm_plugin.parse_port("http")
