"""Typed Python from the Rust signatures (issue 15): doc comments, #[plugin_type], serde errors.

The cargo tests load tests/plugins/typed.rs, built once per session (the ``typed``
fixture); the rest read metadata records written here, as a v1 or v2 plugin writes them.
"""

from __future__ import annotations

import inspect
import json
import os
import pydoc
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import wasmforge
from wasmforge.abi.pytypes import missing_field, parse_rust_type, type_from_record, types_used
from wasmforge.abi.signature import parse_metadata
from wasmforge.errors import ArgumentError, PluginLoadError

from helpers import assert_one_line_error, run_cli

ORDER = {"id": 7, "lines": [{"sku": "tea", "quantity": 3}, {"sku": "cup", "quantity": 2, "note": "blue"}]}


@pytest.fixture
def typed_plugin(typed: Any) -> Any:
    with wasmforge.load(typed.wasm) as plugin:
        yield plugin


# ---- 1a: doc comments and signatures ----

@pytest.mark.cargo
def test_functions_have_python_signatures(typed_plugin: Any) -> None:
    assert str(inspect.signature(typed_plugin.add)) == "(one: int, two: int) -> int"
    assert str(inspect.signature(typed_plugin.invoice)) == "(order: typed_plugin.Order) -> int"
    assert str(inspect.signature(typed_plugin.notes)) == "(orders: list[typed_plugin.Order], prefix: str) -> list[str]"
    assert str(inspect.signature(typed_plugin.function("parse"))) == "(text: str) -> int"
    # The signature binds arguments as Python would.
    inspect.signature(typed_plugin.add).bind(1, two=2)
    with pytest.raises(TypeError):
        inspect.signature(typed_plugin.add).bind(1, 2, 3)


@pytest.mark.cargo
def test_doc_comments_are_the_docstrings(typed_plugin: Any) -> None:
    assert typed_plugin.add.__doc__ == "Adds two numbers.\n\nWraps around on overflow, as `i32::wrapping_add` does."
    assert typed_plugin.invoice.__doc__ == ("The total quantity of an order; an empty order or one asking for more\n"
                                            "than 100 of anything is an `InvoiceError`.")
    assert typed_plugin.exports["parse"].doc == "A plain string error stays a message."


@pytest.mark.cargo
def test_help_lists_the_functions_and_types(typed_plugin: Any) -> None:
    text = pydoc.render_doc(typed_plugin, renderer=pydoc.plaintext)
    assert "add(one: int, two: int) -> int\n        Adds two numbers." in text
    assert "invoice(order: typed_plugin.Order) -> int" in text
    assert "Order {id: u64, lines: Vec<Line>}\n          An order: an id and its lines." in text
    assert wasmforge.Plugin.__doc__ is not None and "A loaded plugin" in wasmforge.Plugin.__doc__


def test_a_doc_field_is_read_and_a_v1_record_without_one_still_loads() -> None:
    with_doc = (b'{"v":1,"kind":"export","name":"f","abi":"buffer","input":"str","output":"str",'
                b'"params":[{"name":"s","type":"&str","wire":"str"}],"returns":"String","fallible":false,'
                b'"doc":"Says \\"hi\\".\\nTwice."}\n')
    without = with_doc.replace(b',"doc":"Says \\"hi\\".\\nTwice."', b"").replace(b'"name":"f"', b'"name":"g"')
    metadata = parse_metadata([with_doc + without], "x.wasm")
    assert metadata.exports["f"].doc == 'Says "hi".\nTwice.'
    assert metadata.exports["g"].doc == ""
    assert metadata.version == 1


# ---- 1b: recorded types ----

TYPE_RECORD = {"v": 2, "kind": "type", "name": "Order", "doc": "", "checked": True, "shape": "struct",
               "fields": [{"name": "id", "type": "u64", "required": True, "checked": True, "doc": ""},
                          {"name": "note", "type": "Option<String>", "required": False, "checked": True, "doc": ""}]}


def test_a_type_record_is_a_v2_record() -> None:
    metadata = parse_metadata([json.dumps(TYPE_RECORD).encode()], "x.wasm")
    assert str(metadata.types["Order"]) == "Order {id: u64, note: Option<String>}"
    assert metadata.version == 2


def test_a_newer_record_kind_is_refused_with_upgrade_and_a_malformed_type_record_by_name() -> None:
    future = {**TYPE_RECORD, "v": 4, "kind": "state"}
    with pytest.raises(PluginLoadError, match="uses wire contract v4; this wasmforge understands up to v3: upgrade"):
        parse_metadata([json.dumps(future).encode()], "x.wasm")
    with pytest.raises(PluginLoadError, match=r"malformed wasmforge metadata \(type record: shape 'union'"):
        parse_metadata([json.dumps({**TYPE_RECORD, "shape": "union"}).encode()], "x.wasm")


def test_missing_fields_are_found_inside_lists_and_options_and_only_where_serde_needs_them() -> None:
    line = type_from_record({"name": "Line", "shape": "struct", "fields": [
        {"name": "sku", "type": "String"}, {"name": "n", "type": "u32"},
        {"name": "note", "type": "Option<String>", "required": False},
        {"name": "renamed", "type": "u8", "checked": False}]})
    order = type_from_record({"name": "Order", "shape": "struct",
                              "fields": [{"name": "lines", "type": "Vec<Line>"}]})
    types = {"Line": line, "Order": order}
    tree = parse_rust_type("Option<Order>", types)
    assert missing_field({"lines": [{"sku": "a", "n": 1}]}, tree, types, "o") is None
    assert missing_field(None, tree, types, "o") is None
    assert missing_field({"lines": [{"sku": "a", "n": 1}, {"sku": "b"}]}, tree, types, "o") == (
        "`o.lines[1]` is missing field `n` (Line {sku: String, n: u32, note: Option<String>, renamed: u8})")
    # Not a dict: serde says what is wrong, in wasm.
    assert missing_field("nope", tree, types, "o") is None
    assert [t.name for t in types_used(["Result<Vec<Order>, Line>"], types)] == ["Order", "Line"]


@pytest.mark.cargo
def test_a_dict_missing_a_field_is_an_argument_error_before_wasm(typed_plugin: Any) -> None:
    assert typed_plugin.invoice(ORDER) == 5
    with pytest.raises(ArgumentError, match=r"^invoice\(order: Order\) -> Result<u64, InvoiceError>: argument "
                                            r"`order` is missing field `lines` \(Order \{id: u64, lines: Vec<Line>\}\)$"):
        typed_plugin.invoice({"id": 7})
    with pytest.raises(ArgumentError, match=r"argument `orders\[0\].lines\[1\]` is missing field `quantity`"):
        typed_plugin.notes([{"id": 1, "lines": [{"sku": "a", "quantity": 1}, {"sku": "b"}]}], "> ")
    # Optional fields may be left out.
    assert typed_plugin.notes([ORDER], "> ") == ["> ", "> blue"]


@pytest.mark.cargo
def test_typed_dicts_for_the_recorded_structs(typed_plugin: Any) -> None:
    order = typed_plugin.typed_dicts["Order"]
    assert order.__name__ == "Order" and order.__module__ == "typed_plugin"
    assert order.__annotations__["id"] is int
    assert order.__annotations__["lines"] == list[typed_plugin.typed_dicts["Line"]]
    assert typed_plugin.types["InvoiceError"].shape == "enum"


@pytest.mark.cargo
def test_typed_dicts_are_made_once_per_compiled_module_and_name(typed: Any, tmp_path: Path) -> None:
    """Loads of one file share them; a copy under another name gets its own, named after it."""
    with wasmforge.load(typed.wasm) as first, wasmforge.load(typed.wasm) as second:
        assert second.typed_dicts["Order"] is first.typed_dicts["Order"]
    copy = tmp_path / "renamed.wasm"
    copy.write_bytes(typed.wasm.read_bytes())
    with wasmforge.Plugin.from_bytes(copy.read_bytes(), name="renamed.wasm") as renamed:
        assert renamed.typed_dicts["Order"].__module__ == "renamed"


@pytest.mark.cargo
def test_call_list_and_inspect_show_the_types(typed: Any) -> None:
    listed = run_cli("call", "--plugin", str(typed.wasm), "--list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    at = lines.index("invoice(order: Order) -> Result<u64, InvoiceError>")
    assert lines[at + 1:at + 4] == [
        "    Order {id: u64, lines: Vec<Line>}",
        "    Line {sku: String, quantity: u32, note: Option<String>}",
        "    InvoiceError {Empty | OutOfStock {sku: String, missing: u32}}",
    ]
    as_json = json.loads(run_cli("call", "--plugin", str(typed.wasm), "--list", "--json").stdout)
    invoice = next(e for e in as_json if e["name"] == "invoice")
    assert [t["name"] for t in invoice["types"]] == ["Order", "Line", "InvoiceError"]
    assert invoice["doc"].startswith("The total quantity of an order")
    report = json.loads(run_cli("inspect", str(typed.wasm), "--json").stdout)
    assert report["wire_version"] == 2
    assert {t["name"]: t["description"] for t in report["types"]}["Order"] == "Order {id: u64, lines: Vec<Line>}"
    text = run_cli("inspect", str(typed.wasm)).stdout
    assert "types (#[plugin_type]):\n  Line {sku: String, quantity: u32, note: Option<String>}\n" in text
    missing = run_cli("call", "--plugin", str(typed.wasm), "invoice", '{"id": 1}')
    assert_one_line_error(missing, 2, "argument `order` is missing field `lines`")


# ---- 4: serde errors as values ----

@pytest.mark.cargo
@pytest.mark.parametrize("order, message, data", [
    ({"id": 1, "lines": []}, "Empty", "Empty"),
    ({"id": 1, "lines": [{"sku": "tea", "quantity": 130}]}, 'OutOfStock { sku: "tea", missing: 30 }',
     {"OutOfStock": {"sku": "tea", "missing": 30}}),
])
def test_a_serde_error_is_plugin_error_data(typed_plugin: Any, order: dict, message: str, data: Any) -> None:
    with pytest.raises(wasmforge.PluginError) as caught:
        typed_plugin.invoice(order)
    assert str(caught.value) == message  # no Display: its Debug text
    assert caught.value.data == data
    assert caught.value.function == "invoice" and caught.value.plugin == "typed_plugin.wasm"
    assert typed_plugin.invoice(ORDER) == 5  # the instance stays usable


@pytest.mark.cargo
def test_a_string_error_stays_a_message_without_data(typed_plugin: Any) -> None:
    with pytest.raises(wasmforge.PluginError, match='^"x": invalid digit found in string$') as caught:
        typed_plugin.parse("x")
    assert caught.value.data is None


@pytest.mark.cargo
def test_the_template_error_has_display_text_and_data(demo_plugin: Any) -> None:
    with pytest.raises(wasmforge.PluginError, match="^port 0 is not a usable port$") as zero:
        demo_plugin.parse_port("0")
    assert zero.value.data == "Zero"
    with pytest.raises(wasmforge.PluginError) as word:
        demo_plugin.parse_port("http")
    assert word.value.data == {"NotANumber": {"text": "http", "reason": "invalid digit found in string"}}
    assert str(word.value) == '"http" is not a port number: invalid digit found in string'


def _status3_wat(payload: bytes) -> str:
    """A module whose export `f` returns status 3 with ``payload`` as its output."""
    def data(raw: bytes) -> str:
        return "".join(f"\\{b:02x}" for b in raw)
    descriptor = (3).to_bytes(4, "little") + (64).to_bytes(4, "little") + len(payload).to_bytes(4, "little")
    return f"""
    (module
      (memory (export "memory") 1)
      (data (i32.const 16) "{data(descriptor)}")
      (data (i32.const 64) "{data(payload)}")
      (func (export "__wf_alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "__wf_free") (param i32 i32))
      (func (export "f") (param i32 i32) (result i32) (i32.const 16)))
    """


@pytest.mark.parametrize("payload, problem", [
    (b"not json", "(Expecting value: line 1 column 1 (char 0))"),
    (b'{"data": 1}', "('message')"),
    (b'{"message": 5, "data": 1}', "(message int 5 is not a string)"),
])
def test_malformed_error_data_is_a_protocol_error(payload: bytes, problem: str) -> None:
    import wasmtime

    from wasmforge.abi.signature import METADATA_SECTION

    record = (b'{"v":1,"kind":"export","name":"f","abi":"buffer","input":"none","output":"json",'
              b'"params":[],"returns":"Result<u8, E>","fallible":true}\n')
    module = wasmtime.wat2wasm(_status3_wat(payload))
    section = _custom_section(METADATA_SECTION, record)
    plugin = wasmforge.Plugin.from_bytes(bytes(module) + section, name="e.wasm")
    expected = f"f() in e.wasm returned an error that is not {{message, data}} JSON {problem}"
    with pytest.raises(wasmforge.PluginProtocolError, match=f"^{re.escape(expected)}$"):
        plugin.f()
    plugin.close()


def _custom_section(name: str, payload: bytes) -> bytes:
    body = _leb(len(name.encode())) + name.encode() + payload
    return b"\x00" + _leb(len(body)) + body


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


# ---- 1c: typed stubs ----

HOST_PROGRAM = '''
from typing import TYPE_CHECKING, cast

import wasmforge

if TYPE_CHECKING:
    from typed_plugin import Order, TypedPlugin

plugin = cast("TypedPlugin", wasmforge.load("typed_plugin.wasm"))
order: "Order" = {"id": 1, "lines": [{"sku": "tea", "quantity": 2}]}
total: int = plugin.invoice(order)
names: list[str] = plugin.notes([order], "> ")
'''


def run_mypy(directory: Path, program: str) -> "subprocess.CompletedProcess[str]":
    (directory / "app.py").write_text(program)
    env = {**os.environ, "MYPYPATH": str(directory / "stubs")}
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "app.py"], cwd=directory,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.cargo
def test_stubs_make_mypy_check_calls(typed: Any, tmp_path: Path) -> None:
    written = run_cli("stubs", str(typed.wasm), "-o", "stubs", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert written.stdout == f"wrote {tmp_path / 'stubs' / 'typed_plugin.pyi'}\n"
    stub = (tmp_path / "stubs" / "typed_plugin.pyi").read_text()
    assert "    def add(self, one: int, two: int, /) -> int:\n" in stub
    assert "class Line(TypedDict):\n    'One line of an order.'\n    sku: str\n    quantity: int\n" \
           "    note: NotRequired[Optional[str]]\n" in stub
    assert "InvoiceError = Union[Literal['Empty'], dict[str, Any]]" in stub
    good = run_mypy(tmp_path, HOST_PROGRAM)
    assert good.returncode == 0, good.stdout
    bad = run_mypy(tmp_path, HOST_PROGRAM + 'plugin.add(1, "two")\nplugin.invoice({"id": 1})\n')
    assert bad.returncode == 1
    assert 'app.py:13: error: Argument 2 to "add" of "TypedPlugin" has incompatible type "str"; expected "int"' \
           in bad.stdout
    assert 'app.py:14: error: Missing key "lines" for TypedDict "Order"' in bad.stdout
    again = run_cli("stubs", str(typed.wasm), "-o", "stubs", cwd=tmp_path)
    assert again.stdout == f"unchanged {tmp_path / 'stubs' / 'typed_plugin.pyi'}\n"


@pytest.mark.cargo
def test_stubs_never_overwrite_a_file_wasmforge_did_not_write(typed: Any, tmp_path: Path) -> None:
    mine = tmp_path / "stubs" / "typed_plugin.pyi"
    mine.parent.mkdir()
    mine.write_text("# my own stub\n")
    refused = run_cli("stubs", str(typed.wasm), cwd=tmp_path)
    assert_one_line_error(refused, 2, "typed_plugin.pyi is not a stub file wasmforge wrote; leaving it as it is")
    assert mine.read_text() == "# my own stub\n"
    (tmp_path / "file").write_text("")
    assert_one_line_error(run_cli("stubs", str(typed.wasm), "-o", "file", cwd=tmp_path), 2,
                          "-o file is not a directory")
    assert_one_line_error(run_cli("stubs", "nope.wasm", cwd=tmp_path), 2, "no plugin at nope.wasm")


def test_stub_text_keeps_untrusted_names_and_docs_out_of_the_code() -> None:
    from wasmforge.abi.signature import Param, Signature
    from wasmforge.abi.stubs import stub_text

    hostile = Signature("f", (Param("x", "Evil"),), "()", "buffer", "json", "unit",
                        doc="'''\nimport os; os.system('echo hi')\n\"\"\"")
    evil = type_from_record({"name": "Evil = 1; import os #", "shape": "struct", "fields": []})
    text = stub_text("9 bad-name.wasm", {"f": hostile, "bad name": hostile}, {evil.name: evil})
    compile(text, "stub.pyi", "exec")  # valid Python
    assert "import os" not in text.replace(repr(hostile.doc), "")
    assert "class Plugin_(wasmforge.Plugin):" in text
    assert "    def f(self, x: Any, /) -> None:" in text


@pytest.mark.cargo
def test_watch_keeps_the_stubs_current(watched_workspace: Path, lib_rs: Path) -> None:
    from watching import WatchProcess, add_plugin_source, save

    stub = watched_workspace / "typings" / "watched_plugin.pyi"
    process = WatchProcess(watched_workspace, "--json", "--call", "add 1 2", "--stubs", "typings")
    try:
        first = process.until_result(3)
        written = [e for e in first if e["event"] == "stubs_written"]
        assert written == [{"event": "stubs_written", "path": str(stub), "version": 1, "changed": True, "error": None}]
        assert "    def add(self, one: int, two: int, /) -> int:" in stub.read_text()
        # A new signature and doc comment: the stub follows.
        save(lib_rs, add_plugin_source(1).replace("pub fn add(one: i32, two: i32) -> i32",
                                                  "/// Adds, in u8.\npub fn add(one: u8, two: u8) -> u8"))
        second = process.until_result(4)
        assert [e["changed"] for e in second if e["event"] == "stubs_written"] == [True]
        assert "    def add(self, one: int, two: int, /) -> int:\n        'Adds, in u8.'" in stub.read_text()
        # The same signatures again: the stub is left alone.
        save(lib_rs, add_plugin_source(2).replace("pub fn add(one: i32, two: i32) -> i32",
                                                  "/// Adds, in u8.\npub fn add(one: u8, two: u8) -> u8"))
        third = process.until_result(5)
        assert [e["changed"] for e in third if e["event"] == "stubs_written"] == [False]
        assert process.interrupt() == 130
    finally:
        process.close()
    shutil.rmtree(stub.parent)


def test_the_cycle_line_says_when_the_stubs_changed_or_could_not_be_written() -> None:
    from test_watch_output import LIB_RS, ROOT, printer, stdout

    from wasmforge.events import BuildFinished, Changed, CycleFinished, Reloaded, StubsWritten

    shown = printer()
    for stubs in (StubsWritten(path=ROOT / "typings" / "demo_plugin.pyi", version=2, changed=True),
                  StubsWritten(path=ROOT / "typings" / "demo_plugin.pyi", version=3, changed=False),
                  StubsWritten(path=None, version=4, changed=False, error="typings/demo_plugin.pyi is not a stub")):
        shown(Changed(paths=(LIB_RS,), kinds=("modified",)))
        shown(BuildFinished(ok=True, seconds=0.3, diagnostics="", size=2048))
        shown(Reloaded(version=stubs.version, path=None, size=2048, size_change=0, seconds=0.0031))
        shown(stubs)
        shown(CycleFinished(outcome="reloaded", version=stubs.version, seconds=0.5))
    assert stdout(shown) == [
        "src/lib.rs: built in 0.30 s, 2.0 KiB (+0 B), reloaded in 3.1 ms as v2, stubs typings/demo_plugin.pyi; "
        "save to result 0.50 s",
        "src/lib.rs: built in 0.30 s, 2.0 KiB (+0 B), reloaded in 3.1 ms as v3; save to result 0.50 s",
        "src/lib.rs: built in 0.30 s, 2.0 KiB (+0 B), reloaded in 3.1 ms as v4, stubs not written: "
        "typings/demo_plugin.pyi is not a stub; save to result 0.50 s",
    ]


@pytest.mark.cargo
def test_a_hot_plugin_shows_the_serving_versions_signatures_and_docs(typed: Any) -> None:
    hot = wasmforge.HotPlugin.from_file(typed.wasm)
    try:
        assert str(inspect.signature(hot.add)) == "(one: int, two: int) -> int"
        assert hot.add.__doc__.startswith("Adds two numbers.")
        assert hot.add(1, 2) == 3
    finally:
        hot.close()
