"""The plugin boundary on a real Rust plugin (tests/plugins/boundary.rs): every
supported type round-trips, the blog series' examples give their exact values,
and errors, panics and host functions become Python values and exceptions."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wasmforge
from wasmforge import (
    ArgumentError,
    HostFunctionError,
    PluginError,
    PluginPanic,
)

from conftest import PLUGINS

SOURCE_LINES = (PLUGINS / "boundary.rs").read_text().splitlines()


def line_of(marker: str) -> tuple[int, int]:
    """1-based line of ``marker`` in boundary.rs, and the column of the code on it."""
    for number, text in enumerate(SOURCE_LINES, 1):
        if marker in text:
            return number, len(text) - len(text.lstrip()) + 1
    raise AssertionError(marker)


def host_functions(printed: list) -> wasmforge.HostFunctions:
    host = wasmforge.HostFunctions()
    host.function("print_str")(printed.append)

    @host.function
    def lookup(key: str):
        return {"ada": "Countess"}.get(key)

    @host.function
    def host_add(a: int, b: int) -> int:
        return a + b

    @host.function
    def host_bytes(data: bytes) -> bytes:
        return data[::-1]

    @host.function
    def host_pair(name: str, count: int) -> list:
        return [name] * count

    @host.function
    def host_number() -> int:
        return 2**64 - 1

    return host


@pytest.fixture(scope="module")
def printed() -> list:
    return []


@pytest.fixture(scope="module")
def plugin(boundary, printed):
    with wasmforge.load(boundary.wasm, host_functions=host_functions(printed)) as loaded:
        yield loaded


# ---- every supported type round-trips ---------------------------------------------------

settings.register_profile("wasm", max_examples=60, deadline=None)
settings.load_profile("wasm")

I64 = st.integers(-(2**63), 2**63 - 1)
U64 = st.integers(0, 2**64 - 1)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@pytest.mark.cargo
@given(a=I64, b=I64)
def test_i64(plugin, a, b) -> None:
    expected = (a + b + 2**63) % 2**64 - 2**63
    assert plugin.add_i64(a, b) == expected


@pytest.mark.cargo
@given(a=U64, b=U64)
def test_u64(plugin, a, b) -> None:
    assert plugin.add_u64(a, b) == (a + b) % 2**64


@pytest.mark.cargo
@given(a=st.integers(-(2**31), 2**31 - 1), b=st.integers(-(2**31), 2**31 - 1))
def test_i32(plugin, a, b) -> None:
    assert plugin.add(a, b) == (a + b + 2**31) % 2**32 - 2**31


@pytest.mark.cargo
@given(x=st.integers(-128, 127))
def test_i8(plugin, x) -> None:
    assert plugin.negate_i8(x) == (-x if x != -128 else -128)


@pytest.mark.cargo
@given(x=st.integers(0, 255), y=st.integers(0, 65535), z=st.integers(-(2**15), 2**15 - 1))
def test_u8_u16_i16(plugin, x, y, z) -> None:
    assert plugin.succ_u8(x) == (x + 1) % 256
    assert plugin.succ_u16(y) == (y + 1) % 65536
    assert plugin.neg_i16(z) == (-z if z != -(2**15) else z)


@pytest.mark.cargo
@given(x=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_f32(plugin, x) -> None:
    expected = struct.unpack("<f", struct.pack("<f", x / 2))[0]
    assert plugin.half(x) == expected


@pytest.mark.cargo
@given(a=st.floats(-1e150, 1e150), b=st.floats(-1e150, 1e150))
def test_f64(plugin, a, b) -> None:
    assert plugin.hypot(a, b) == pytest.approx(math.hypot(a, b), rel=1e-12)


@pytest.mark.cargo
@pytest.mark.parametrize(
    "function, text, expected",
    [
        ("parse_i8", "-128", -128), ("parse_i8", "127", 127),
        ("parse_i16", "-32768", -32768), ("parse_i16", "32767", 32767),
        ("parse_i32", "-2147483648", -(2**31)), ("parse_i32", "2147483647", 2**31 - 1),
        ("parse_i64", "-9223372036854775808", -(2**63)), ("parse_i64", "9223372036854775807", 2**63 - 1),
        ("parse_u8", "255", 255), ("parse_u16", "65535", 65535),
        ("parse_u32", "4294967295", 2**32 - 1), ("parse_u64", "18446744073709551615", 2**64 - 1),
        ("parse_u64", "0", 0), ("parse_f32", "0.1", 0.1),  # JSON carries an f32's shortest decimal
        ("parse_f32", "-3.4028235e38", -3.4028235e38), ("parse_f64", "2.5e-308", 2.5e-308),
        ("parse_f64", "-0.0", -0.0), ("parse_bool", "true", True), ("parse_bool", "false", False),
    ],
)
def test_every_number_type_as_a_buffer_calls_result(plugin, function: str, text: str, expected) -> None:
    # Taking a &str makes these buffer calls: the number comes back as JSON, written by
    # the pdk's encoder for that type (not the plugin's own serde code).
    value = plugin.call(function, text)
    assert value == expected and type(value) is type(expected)
    assert math.copysign(1, value) == math.copysign(1, expected)


@pytest.mark.cargo
def test_bool_unit_and_static(plugin) -> None:
    assert plugin.call("not", True) is False and plugin.call("not", False) is True
    assert plugin.nothing() is None
    assert plugin.max_u32() == 2**32 - 1
    assert plugin.static_text() == "static"


@pytest.mark.cargo
@given(s=TEXT)
def test_str(plugin, s) -> None:
    assert plugin.echo_str(s) == s
    assert plugin.double(s) == s + s


@pytest.mark.cargo
@given(data=st.binary(max_size=300))
def test_bytes(plugin, data) -> None:
    assert plugin.echo_bytes(data) == data
    assert plugin.reverse_bytes(bytearray(data)) == data[::-1]
    assert plugin.byte_len(memoryview(data)) == len(data)


@pytest.mark.cargo
@given(parts=st.lists(TEXT, max_size=8), sep=TEXT)
def test_vec_of_strings_and_str(plugin, parts, sep) -> None:
    assert plugin.join(parts, sep) == sep.join(parts)


@pytest.mark.cargo
@given(items=st.lists(I64, max_size=5), default=st.none() | I64)
def test_vec_and_option(plugin, items, default) -> None:
    assert plugin.first_or(items, default) == (items[0] if items else default)


# Up to Cyrillic: case mappings there have not changed between the Unicode
# versions of any rustc and Python the suite runs with (Rust's to_uppercase and
# Python's upper both apply the full mappings, ß -> SS included).
@pytest.mark.cargo
@given(s=st.none() | st.text(st.characters(max_codepoint=0x52F, blacklist_categories=("Cs",)), max_size=100))
def test_option_string(plugin, s) -> None:
    assert plugin.maybe_upper(s) == (None if s is None else s.upper())


@pytest.mark.cargo
@pytest.mark.parametrize("text, upper", [("straße", "STRASSE"), ("é", "É"), ("ﬁ", "FI"), ("ǆ", "Ǆ"), ("", "")])
def test_option_string_full_case_mapping(plugin, text, upper) -> None:
    assert plugin.maybe_upper(text) == upper


@pytest.mark.cargo
@given(values=st.lists(st.floats(-1e6, 1e6), max_size=10))
def test_vec_f64(plugin, values) -> None:
    assert plugin.floats(values) == pytest.approx(sum(values), abs=1e-6)


@pytest.mark.cargo
@given(data=st.binary(max_size=50), extra=st.integers(0, 255))
def test_bytes_among_several_arguments(plugin, data, extra) -> None:
    assert plugin.sum_u8s(data, extra) == sum(data) + extra


@pytest.mark.cargo
def test_chars_and_many_arguments_of_every_kind(plugin) -> None:
    assert plugin.chars_of("héj") == ["h", "é", "j"]
    series = {"one": 1, "two": 2, "three": "s"}
    assert plugin.mixed(-7, "t", b"\x01\x02", True, b"\x03", None, series) == \
        '-7|t|[1, 2]|true|[3]|None|1/2/s'
    assert plugin.mixed(0, "", b"", False, b"", "x", series) == '0||[]|false|[]|Some("x")|1/2/s'


# ---- the blog series' examples, exactly ---------------------------------------------------


@pytest.mark.cargo
def test_double(plugin) -> None:
    assert plugin.double("supercalifragilisticexpialidocious") == "supercalifragilisticexpialidocious" * 2


@pytest.mark.cargo
@pytest.mark.parametrize("n", [2, 5, 10])
def test_multiply(plugin, n) -> None:
    word = "supercalifragilisticexpialidocious"
    repeated = word * n
    assert plugin.multiply(n, word) == [(n * len(repeated)) % 256, repeated]


@pytest.mark.cargo
def test_multiply_exact_values(plugin) -> None:
    word = "supercalifragilisticexpialidocious"  # 34 bytes
    assert plugin.multiply(2, word)[0] == 136  # 2 * 68
    assert plugin.multiply(5, word)[0] == 82  # 5 * 170 = 850, wrapped: 850 - 768
    assert plugin.multiply(10, word)[0] == 72  # 340 as u8 = 84; 10 * 84 = 840, wrapped: 840 - 768


@pytest.mark.cargo
def test_struct_evolves_over_ten_calls(plugin) -> None:
    state = {"one": 1, "two": 2, "three": ""}
    expected = dict(state)
    for _ in range(10):
        state = plugin.evolve(state)
        expected = {
            "one": (expected["one"] + 60) % 256,
            "two": (expected["two"] * 7 + 1) % 2**32,
            "three": expected["three"] + str(expected["one"] % 10),
        }
        assert state == expected
    assert state == {"one": 89, "two": 612029706, "three": "1111155559"}  # u8 and u32 both wrapped


# ---- errors and panics ------------------------------------------------------------------


@pytest.mark.cargo
def test_err_raises_plugin_error_with_the_display_text(plugin) -> None:
    with pytest.raises(PluginError) as caught:
        plugin.parse_positive("x")
    assert str(caught.value) == '"x" is not a positive number: invalid digit found in string'
    assert (caught.value.function, caught.value.plugin) == ("parse_positive", "boundary_plugin.wasm")
    with pytest.raises(PluginError) as custom:
        plugin.checked_div(7, 0)
    assert str(custom.value) == "cannot divide 7 by zero"
    with pytest.raises(PluginError, match="^asked to fail$"):
        plugin.unit_or_error(True)
    assert plugin.parse_positive(" 42 ") == 42 and plugin.checked_div(7, 2) == 3
    assert plugin.unit_or_error(False) is None


@pytest.mark.cargo
def test_panic_carries_message_file_and_line(plugin) -> None:
    line, column = line_of("PANIC-LINE")
    with pytest.raises(PluginPanic) as caught:
        plugin.explode(3)
    panic = caught.value
    assert panic.panic_message == "exploded on 3"
    assert panic.file == "crates/boundary-plugin/src/lib.rs"
    assert (panic.line, panic.column) == (line, column)
    assert str(panic) == (
        f"explode() in boundary_plugin.wasm panicked at crates/boundary-plugin/src/lib.rs:{line}:{column}: exploded on 3"
    )
    native_line, _ = line_of("NATIVE-PANIC-LINE")
    with pytest.raises(PluginPanic, match=f"lib.rs:{native_line}:5: index out of bounds: the len is 3 but the index is 7"):
        plugin.explode_native(7)


@pytest.mark.cargo
@pytest.mark.parametrize(
    "message",
    [
        'say "hi"', "back\\slash \\n", "two\nlines", "tab\tand\rreturn", "nul \x00 bell \x07 esc \x1b unit \x1f del \x7f",
        "ünïcödé ✓ 🦀 \u2028", '{"message": "not this"}', "", "\\u0041 is not A",
    ],
)
def test_a_panic_message_reaches_python_exactly(plugin, message: str) -> None:
    # The pdk writes the panic report's JSON by hand; every character must survive it.
    line, column = line_of("PANIC-WITH-LINE")
    with pytest.raises(PluginPanic) as caught:
        plugin.explode_with(message)
    assert caught.value.panic_message == message
    assert (caught.value.file, caught.value.line, caught.value.column) == ("crates/boundary-plugin/src/lib.rs", line, column)


@pytest.mark.cargo
def test_a_panic_does_not_poison_the_plugin(plugin) -> None:
    plugin.counter()
    assert plugin.counter() >= 2
    with pytest.raises(PluginPanic):
        plugin.explode(3)
    assert plugin.counter() == 1  # a fresh instance
    assert plugin.explode(4) == "fine 4"


@pytest.mark.cargo
def test_arguments_the_guest_cannot_decode_are_argument_errors(plugin) -> None:
    with pytest.raises(ArgumentError, match=r'^evolve\(state: Series\) -> Series: argument `state`: invalid type: string "x", expected u8 at line 1 column \d+$'):
        plugin.evolve({"one": "x", "two": 1, "three": ""})
    with pytest.raises(ArgumentError, match="missing field `three`"):
        plugin.evolve({"one": 1, "two": 1})
    with pytest.raises(ArgumentError, match=r"argument 1 of join \(parts: Vec<String>\)|cannot be sent as JSON"):
        plugin.join([object()], ",")
    with pytest.raises(ArgumentError, match=r"argument 2 of join \(sep: &str\): expected str, got int 5"):
        plugin.join([], 5)
    with pytest.raises(ArgumentError, match=r"argument 1 of echo_bytes \(data: &\[u8\]\): expected bytes, got 'text'"):
        plugin.echo_bytes("text")
    with pytest.raises(ArgumentError, match=r"argument 1 of add_u64 \(a: u64\): -1 is out of range"):
        plugin.add_u64(-1, 0)
    with pytest.raises(ArgumentError, match=r"expected True or False, got int 1"):
        plugin.call("not", 1)


# ---- no size limit but memory ------------------------------------------------------------

MIB = 1024 * 1024


def raw_buffer_call(plugin, name: str, payload: bytes) -> tuple[int, bytes]:
    """Calls buffer export ``name`` with ``payload`` as its input bytes, as any host could: (status, output)."""
    pointer = plugin.call_raw("__wf_alloc", len(payload)) if payload else 0
    plugin.memory.write(pointer, payload) if payload else None
    descriptor = plugin.call_raw(name, pointer, len(payload)) & 0xFFFFFFFF
    status, out_ptr, out_len = struct.unpack("<III", plugin.memory.read(descriptor, 12))
    return status, plugin.memory.read(out_ptr, out_len)


@pytest.mark.cargo
@pytest.mark.parametrize(
    "payload, output",
    [
        (b'[["a", "b"], "-"]', b"a-b"),
        (b' \n[ [] ,"" ]\t', b""),
        (b'[["],[", "\\"]", "{"], "}"]', b'],[}"]}{'),  # brackets and quotes inside strings
        (b'[["\\\\"], "\\\\"]', b"\\"),  # an escaped backslash ends before the quote
        (b'[["\xc3\xa9\xe2\x9c\x93"], ","]', "\u00e9\u2713".encode()),
    ],
)
def test_json_arguments_are_split_at_the_top_level_only(plugin, payload: bytes, output: bytes) -> None:
    # join(parts: Vec<String>, sep: &str): the pdk splits the array, then decodes each element.
    assert raw_buffer_call(plugin, "join", payload) == (0, output)


@pytest.mark.cargo
@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", b"the arguments are not a JSON array"),
        (b'{"parts": []}', b"the arguments are not a JSON array"),
        (b'[["a"], "-"', b"the arguments are not a JSON array"),
        (b'[["a"], "-"] x', b"the arguments are not a JSON array"),
        (b'[["a"], "-"}', b"the arguments are not a JSON array"),
        (b'[["a"}, "-"]', b"argument `parts`: "),
        (b'[["a"], "-", 3]', b"expected 2 arguments, got 3"),
        (b"[]", b"expected 2 arguments, got 0"),
        (b'[["a"],]', b"argument `sep`: EOF while parsing a value"),
        (b'[["a"], 7]', b"argument `sep`: invalid type: integer `7`, expected a string"),
        (b'[["a"], "\xff"]', b"the arguments are not valid UTF-8"),
    ],
)
def test_malformed_json_arguments_are_bad_input_not_a_trap(plugin, payload: bytes, message: bytes) -> None:
    status, output = raw_buffer_call(plugin, "join", payload)
    assert status == 2 and output.startswith(message), output
    assert plugin.join(["still", "fine"], " ") == "still fine"  # the instance is not poisoned


@pytest.mark.cargo
@given(payload=st.binary(max_size=48) | st.text('[]{}",\\ a1-', max_size=40).map(str.encode))
def test_any_argument_bytes_decode_or_are_bad_input(plugin, payload: bytes) -> None:
    status, output = raw_buffer_call(plugin, "join", payload)
    assert status in (0, 2), (payload, status, output)


@pytest.mark.cargo
def test_64_mib_in_and_out(plugin) -> None:
    data = bytes(range(256)) * (64 * MIB // 256)
    assert plugin.byte_len(data) == 64 * MIB
    echoed = plugin.echo_bytes(data)
    assert len(echoed) == 64 * MIB and echoed == data
    made = plugin.make_bytes(64 * MIB)
    assert len(made) == 64 * MIB and made[:3] == b"\x00\x01\x02" and made[-1] == (64 * MIB - 1) % 251
    text = "é" * (16 * MIB)  # 32 MiB of UTF-8
    assert plugin.double(text) == text + text


# ---- host functions -----------------------------------------------------------------------


@pytest.mark.cargo
def test_host_functions_marshal_both_ways(plugin, printed) -> None:
    printed.clear()
    assert plugin.greet_via_host("ada") == "Hello, Countess ada!"
    assert plugin.greet_via_host("bob") == "Hello, bob!"
    assert printed == ["greeting ada", "greeting bob"]
    assert plugin.sum_via_host(40, 2) == 42
    assert plugin.bytes_via_host(b"abc") == b"cba"
    assert plugin.pair_via_host("n", 3) == ["n", "n", "n"]
    assert plugin.number_via_host() == 2**64 - 1
    assert str(plugin.imports["lookup"]) == "lookup(key: &str) -> Option<String>"


@pytest.mark.cargo
def test_an_exception_in_a_host_function_fails_only_that_call(boundary, printed) -> None:
    host = host_functions(printed)

    @host.function
    def lookup(key):
        raise KeyError(key)

    with wasmforge.load(boundary.wasm, host_functions=host) as loaded:
        with pytest.raises(HostFunctionError) as caught:
            loaded.greet_via_host("x")
        assert str(caught.value) == (
            "greet_via_host() in boundary_plugin.wasm failed: host function lookup raised KeyError: 'x'"
        )
        assert isinstance(caught.value.__cause__, KeyError)
        assert loaded.add(1, 2) == 3 and loaded.sum_via_host(1, 1) == 2


@pytest.mark.cargo
def test_a_host_function_returning_the_wrong_type(boundary, printed) -> None:
    host = host_functions(printed)
    host["host_bytes"] = lambda data: "not bytes"
    host["lookup"] = lambda key: 5
    with wasmforge.load(boundary.wasm, host_functions=host) as loaded:
        with pytest.raises(HostFunctionError, match="host function host_bytes returned 'not bytes', but it returns Vec<u8>: expected bytes"):
            loaded.bytes_via_host(b"x")
        with pytest.raises(PluginPanic, match="host function lookup returned a value that does not fit its signature"):
            loaded.greet_via_host("x")
        assert loaded.double("ok") == "okok"


@pytest.mark.cargo
def test_missing_host_functions_load_and_fail_only_when_called(boundary, caplog) -> None:
    with wasmforge.load(boundary.wasm) as loaded:
        assert "needs host functions that were not provided" in caplog.text
        assert loaded.add(2, 3) == 5
        with pytest.raises(HostFunctionError, match=r"called host function print_str\(message: &str\) -> \(\), which was not provided; pass host_functions=\{'print_str': \.\.\.\}"):
            loaded.greet_via_host("x")
        assert loaded.double("still") == "stillstill"


@pytest.mark.cargo
def test_host_functions_as_a_list_of_functions(boundary) -> None:
    def host_add(a, b):
        return a * b

    with wasmforge.load(boundary.wasm, host_functions=[host_add]) as loaded:
        assert loaded.sum_via_host(6, 7) == 42


@pytest.mark.cargo
def test_host_function_numeric_result_is_checked(boundary) -> None:
    with wasmforge.load(boundary.wasm, host_functions={"host_add": lambda a, b: "x"}) as loaded:
        with pytest.raises(HostFunctionError, match="host function host_add returned 'x', but it returns i32"):
            loaded.sum_via_host(1, 2)
