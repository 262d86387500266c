"""The plugin, tested from Python. `wasmforge test` runs these after the Rust
unit tests; plain `pytest` works too. The fixtures come with wasmforge:
`wasm_plugin` is the plugin crate this file is in (whatever its name, among
any number of plugin crates), built once per session and loaded fresh for
each test."""

import inspect

import pytest

import wasmforge


def test_add(wasm_plugin):
    assert wasm_plugin.add(1, 2) == 3
    # The signature and the doc comment come from the Rust.
    assert str(inspect.signature(wasm_plugin.add)) == "(one: int, two: int) -> int"
    assert wasm_plugin.add.__doc__.startswith("Adds two numbers.")


def test_length_of_the_seed_word(wasm_plugin):
    assert wasm_plugin.length("supercalifragilisticexpialidocious") == 34


def test_structs_arrive_as_dicts(wasm_plugin):
    assert wasm_plugin.stats("hello big world") == {"words": 3, "longest": "hello"}


def test_errors_arrive_as_exceptions(wasm_plugin):
    with pytest.raises(wasmforge.PluginError, match="is not a port number") as error:
        wasm_plugin.parse_port("http")
    assert error.value.data["NotANumber"]["text"] == "http"  # a serde error arrives as a value too
