"""#[plugin_fn(wire = "msgpack")]: MessagePack twins of JSON functions in the real
boundary plugin give the same answers, bad arguments are named, and a hostile
guest's MessagePack result is a PluginProtocolError (docs/ABI.md, "The MessagePack wire")."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass

import pytest
import wasmtime

import wasmforge
from wasmforge import ArgumentError, PluginError, PluginLoadError, PluginProtocolError

from test_boundary import host_functions


@pytest.fixture(scope="module")
def plugin(boundary):
    with wasmforge.load(boundary.wasm, host_functions=host_functions([])) as loaded:
        yield loaded


def corpus(depth: int = 1) -> dict:
    return {
        "name": "héllo ✓ 日本 " * 3,
        "big": 2**64 - 1,
        "small": -(2**63),
        "ratio": 0.1,
        "single": 1.5,
        "tags": ["", "a"],
        "shapes": ["Dot", {"Circle": 2.5}, {"Pair": [-1, 70000]}, {"Rect": {"w": 1, "h": 300}}],
        "maybe": corpus(depth - 1) if depth else None,
        "pair": (255, "ß"),
        "data": b"\x00\x01\xff",
        "empty": [[], []],
    }


def expected(value: dict) -> dict:
    """What comes back: one more tag at each top level, tuples and bytes as lists (as from JSON)."""
    out = dict(value, tags=value["tags"] + [f"{len(value['tags'])}✓"], pair=list(value["pair"]),
               data=list(value["data"]))
    if value["maybe"] is not None:
        out["maybe"] = dict(value["maybe"], pair=list(value["maybe"]["pair"]), data=list(value["maybe"]["data"]))
    return out


@pytest.mark.cargo
def test_the_metadata_says_msgpack_and_json_stays_the_default(plugin) -> None:
    assert plugin.exports["corpus_mp"].wire == "msgpack"
    assert plugin.exports["corpus"].wire == "json"
    # A lone &str still travels raw; only the JSON-encoded parts change.
    assert plugin.exports["chars_of_mp"].input == "str"


@pytest.mark.cargo
def test_msgpack_twins_give_the_json_answers(plugin) -> None:
    for value in (corpus(0), corpus(1), dict(corpus(0), name="", tags=[], shapes=[], data=b"")):
        answer = plugin.corpus_mp(value, 7)
        assert answer == plugin.corpus(value, 7) == [expected(value), 7]
    assert plugin.multiply_mp(3, "ab") == plugin.multiply(3, "ab") == [18, "ababab"]
    state = {"one": 250, "two": 2**32 - 1, "three": "✓"}
    assert plugin.evolve_mp(state) == plugin.evolve(state) == {"one": 54, "two": 4294967290, "three": "✓0"}
    assert plugin.first_or_mp([], -(2**63)) == plugin.first_or([], -(2**63)) == -(2**63)
    assert plugin.first_or_mp([], None) is None
    series = {"one": 1, "two": 2, "three": "s"}
    assert plugin.mixed_mp(-7, "t", b"\x01\x02", True, b"\x03", None, series) == \
        plugin.mixed(-7, "t", b"\x01\x02", True, b"\x03", None, series) == '-7|t|[1, 2]|true|[3]|None|1/2/s'
    assert plugin.floats_mp([0.1, 0.2]) == plugin.floats([0.1, 0.2]) == 0.1 + 0.2
    assert plugin.chars_of_mp("aé✓") == plugin.chars_of("aé✓") == ["a", "é", "✓"]
    assert plugin.checked_div_mp(7, 2) == 3


@pytest.mark.cargo
def test_python_values_convert_as_for_json(plugin) -> None:
    @dataclass
    class Series:
        one: int
        two: int
        three: str

    assert plugin.evolve_mp(Series(1, 2, "x")) == plugin.evolve(Series(1, 2, "x"))
    assert plugin.first_or_mp((5, 6), None) == plugin.first_or((5, 6), None) == 5
    assert plugin.mixed_mp(1, "t", bytearray(b"\x01"), False, memoryview(b"\x02"), "m", series := {
        "one": 1, "two": 2, "three": "s"}) == plugin.mixed(1, "t", bytearray(b"\x01"), False, memoryview(b"\x02"), "m", series)


@pytest.mark.cargo
def test_errors_keep_their_statuses(plugin) -> None:
    with pytest.raises(PluginError, match="^cannot divide 7 by zero$"):
        plugin.checked_div_mp(7, 0)


@pytest.mark.cargo
@pytest.mark.parametrize(
    "function, args, message",
    [
        ("evolve_mp", ({"one": 300, "two": 1, "three": ""},), r"argument `state`: integer 300 is out of range for u8"),
        ("evolve_mp", ({"one": 1, "two": 1},), r"argument `state`: missing field `three`"),
        ("evolve_mp", ({"one": "x", "two": 1, "three": ""},), r"argument `state`: invalid type: a string, expected u8"),
        ("first_or_mp", ([1.5], None), r"argument `items`: invalid type: a float, expected i64"),
        ("corpus_mp", (dict(corpus(0), shapes=["Hexagon"]), 1), r"argument `c`: unknown variant `Hexagon`"),
    ],
)
def test_bad_arguments_name_the_argument(plugin, function: str, args: tuple, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        getattr(plugin, function)(*args)


@pytest.mark.cargo
def test_arguments_the_host_cannot_send_are_refused_before_the_call(plugin) -> None:
    with pytest.raises(ArgumentError, match="arguments of first_or_mp cannot be sent as MessagePack: an integer does not fit in 64 bits"):
        plugin.first_or_mp([2**64], None)
    with pytest.raises(ArgumentError, match="arguments of evolve_mp cannot be sent as MessagePack: object cannot be sent"):
        plugin.evolve_mp(object())


@pytest.mark.cargo
def test_nan_and_infinity_travel_as_floats_where_json_refuses_them(plugin) -> None:
    assert math.isnan(plugin.floats_mp([math.nan]))
    assert plugin.floats_mp([math.inf, 1.0]) == math.inf
    with pytest.raises(ArgumentError, match="cannot be sent as JSON"):
        plugin.floats([math.nan])


@pytest.mark.cargo
def test_deeper_than_128_is_refused_by_the_guest(plugin) -> None:
    deep: dict = dict(corpus(0))
    for _ in range(130):
        deep = dict(corpus(0), maybe=deep)
    with pytest.raises(ArgumentError, match="argument `c`: nested more than 128 arrays and maps deep"):
        plugin.corpus_mp(deep, 1)


@pytest.mark.cargo
def test_cli_call_list_and_inspect_handle_a_msgpack_function(boundary) -> None:
    def wasmforge_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "wasmforge", *args], capture_output=True, text=True, timeout=120)

    listed = wasmforge_cli("call", "--plugin", str(boundary.wasm), "--list")
    assert listed.returncode == 0, listed.stderr
    assert "evolve_mp(state: Series) -> Series" in listed.stdout
    called = wasmforge_cli("call", "--plugin", str(boundary.wasm), "evolve_mp", '{"one": 1, "two": 2, "three": "a"}')
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == {"one": 61, "two": 15, "three": "a1"}
    refused = wasmforge_cli("call", "--plugin", str(boundary.wasm), "evolve_mp", '{"one": 1000, "two": 2, "three": "a"}')
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == \
        "error: evolve_mp(state: Series) -> Series: argument `state`: integer 1000 is out of range for u8"
    text = wasmforge_cli("inspect", str(boundary.wasm))
    assert "  evolve_mp(state: Series) -> Series  [buffer, msgpack]" in text.stdout.splitlines()
    assert "  evolve(state: Series) -> Series  [buffer]" in text.stdout.splitlines()
    inspected = wasmforge_cli("inspect", str(boundary.wasm), "--json")
    assert inspected.returncode == 0, inspected.stderr
    (entry,) = [e for e in json.loads(inspected.stdout)["exports"] if e["name"] == "evolve_mp"]
    assert entry["wire"] == "msgpack"


# ---- a hostile guest's MessagePack -----------------------------------------------------


def record(name: str) -> str:
    return json.dumps({
        "v": 3, "kind": "export", "name": name, "abi": "buffer", "input": "str", "output": "json", "wire": "msgpack",
        "params": [{"name": "s", "type": "&str", "wire": "str"}], "returns": "Series", "fallible": False,
    })


DEEP = 100_000
HOSTILE = {  # name: (offset, bytes)
    "truncated": (100, b"\x82\xa3one\x01"),
    "trailing": (120, b"\x01\x02"),
    "int_keys": (140, b"\x81\x01\x02"),
    "bin_keys": (160, b"\x81\xc4\x03one\x01"),
    "ext": (180, b"\xd4\x05\x00"),
    "timestamp": (200, b"\xd6\xff\x00\x00\x00\x01"),
    "huge_length": (220, b"\xdd\xff\xff\xff\xff"),
    "unused_marker": (240, b"\xc1"),
    "bad_utf8": (260, b"\xa2\xff\xfe"),
    "deep": (1024, b"\x91" * DEEP + b"\xc0"),
    "fine": (300, b"\x81\xa3one\x01"),
}


def wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


WAT = "(module\n  (memory (export \"memory\") 4)\n" + "".join(
    f'  (data (i32.const {offset}) "{wat_bytes(data)}")\n'
    f'  (func (export "{name}") (param i32 i32) (result i32)\n'
    f"    (i32.store (i32.const 16) (i32.const 0)) (i32.store (i32.const 20) (i32.const {offset}))\n"
    f"    (i32.store (i32.const 24) (i32.const {len(data)})) (i32.const 16))\n"
    for name, (offset, data) in HOSTILE.items()
) + """  (global $heap (mut i32) (i32.const 131072))
  (func (export "__wf_alloc") (param $n i32) (result i32)
    (global.get $heap) (global.set $heap (i32.add (global.get $heap) (local.get $n))))
  (@custom "wasmforge.exports" """ + json.dumps("\n".join(record(name) for name in HOSTILE) + "\n") + "))"


@pytest.fixture(scope="module")
def hostile() -> wasmforge.Plugin:
    with wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(WAT)), name="hostile.wasm") as loaded:
        yield loaded


@pytest.mark.parametrize(
    "function, problem",
    [
        ("truncated", r"ValueError: Unpack failed: incomplete input"),
        ("trailing", r"ExtraData"),
        ("int_keys", r"int is not allowed for map key"),
        ("bin_keys", r"a map key that is not a string"),
        ("ext", r"ext type 5 is not part of the wire"),
        ("timestamp", r"ext type -1, a timestamp, is not part of the wire"),
        ("huge_length", r"exceeds max_array_len"),
        ("unused_marker", r"FormatError"),
        ("bad_utf8", r"UnicodeDecodeError"),
        ("deep", r"StackError"),
    ],
)
def test_a_hostile_msgpack_result_is_a_protocol_error(hostile, function: str, problem: str) -> None:
    with pytest.raises(PluginProtocolError, match=rf"^{function}\(\) in hostile.wasm returned invalid MessagePack \(.*{problem}.*\) for Series$") as caught:
        hostile.call(function, "x")
    assert (caught.value.plugin, caught.value.function) == ("hostile.wasm", function)
    assert hostile.fine("x") == {"one": 1}  # the host is intact


def test_a_host_function_record_cannot_claim_msgpack() -> None:
    bad = json.dumps({"v": 3, "kind": "import", "name": "f", "abi": "buffer", "input": "json", "output": "json",
                      "wire": "msgpack", "params": [], "returns": "u8", "fallible": False})
    wat = f'(module (@custom "wasmforge.exports" {json.dumps(bad + chr(10))}))'
    with pytest.raises(PluginLoadError, match=r"a host function with wire 'msgpack' \(host functions speak JSON\)"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="x.wasm")


def test_an_unknown_wire_is_refused() -> None:
    bad = json.loads(record("f"))
    bad["wire"] = "cbor"
    wat = f'(module (@custom "wasmforge.exports" {json.dumps(json.dumps(bad) + chr(10))}))'
    with pytest.raises(PluginLoadError, match=r"wire 'cbor' is not one of json, msgpack"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="x.wasm")


def test_start_up_does_not_import_msgpack() -> None:
    code = "import sys, wasmforge.cli; assert 'msgpack' not in sys.modules, 'imported'"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr


@pytest.mark.cargo
def test_recorded_structs_are_checked_and_error_data_stays_json(plugin) -> None:
    assert plugin.mirror_mp({"x": 1, "y": -2}) == {"x": -1, "y": 2, "label": None}
    with pytest.raises(ArgumentError, match=r"^mirror_mp\(p: Point\) -> Result<Point, Shape>: argument `p` is missing field `y`"):
        plugin.mirror_mp({"x": 1})
    with pytest.raises(PluginError) as caught:
        plugin.mirror_mp({"x": 0, "y": 0, "label": "o"})
    assert str(caught.value) == "Pair(0, 0)"
    assert caught.value.data == {"Pair": [0, 0]}


@pytest.mark.cargo
def test_two_threads_on_two_instances_get_their_own_answers(boundary) -> None:
    import threading

    with wasmforge.load(boundary.wasm, host_functions=host_functions([]), instances=2) as shared:
        failures: list = []

        def worker(n: int) -> None:
            try:
                for i in range(300):
                    value = dict(corpus(0), name=f"t{n}-{i}", big=i)
                    assert shared.corpus_mp(value, n) == [expected(value), n]
            except BaseException as error:  # reported below, not lost in the thread
                failures.append(error)

        threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert failures == [] and not any(t.is_alive() for t in threads)
