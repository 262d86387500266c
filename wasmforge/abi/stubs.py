"""Typed stubs for a plugin: a ``.pyi`` with a class of typed methods and a ``TypedDict`` per recorded type.

``wasmforge stubs`` and ``watch --stubs`` write them (docs/PYTHON_API.md,
"Typed stubs"). The text is made from the plugin's metadata, which is not
trusted: every name written as code is checked to be a Python identifier,
and every doc comment is written as a string literal (``repr``), never as code.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from typing import Mapping

from .pytypes import Field, RecordedType, annotation_text, parse_rust_type, python_name
from .signature import Signature

#: The first line of every stub file wasmforge writes: a file without it is the user's, never overwritten.
HEADER = "# Typed stubs written by `wasmforge stubs`"


def module_name(plugin_file: str) -> str:
    """The stub module of a plugin file: ``typed_plugin.wasm`` -> ``typed_plugin``."""
    stem = Path(plugin_file).name.split(".")[0]
    name = re.sub(r"\W", "_", stem) or "plugin"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"_{name}"
    return name


def class_name(plugin_file: str) -> str:
    """The class of a plugin's typed methods: ``typed_plugin.wasm`` -> ``TypedPlugin``."""
    name = "".join(part[:1].upper() + part[1:] for part in module_name(plugin_file).split("_") if part)
    return name if python_name(name) else "Plugin_"


def stub_text(plugin_file: str, exports: Mapping[str, Signature], types: Mapping[str, RecordedType]) -> str:
    """The ``.pyi`` text for a plugin with these exports and recorded types."""
    name = class_name(plugin_file)
    # A recorded type may not take a name the stub itself uses; one that would is typed Any.
    taken = {"Any", "Optional", "Union", "Literal", "NotRequired", "TypedDict", "wasmforge", name}
    types = {key: recorded for key, recorded in types.items() if python_name(key) and key not in taken}
    lines = [
        HEADER + f" from {Path(plugin_file).name}: do not edit, run it again.",
        f'"""Types of {Path(plugin_file).name}\'s functions, for mypy and IDEs (wasmforge stubs)."""',
        "",
        "from typing import Any, Optional, Union",
        "",
        "from typing_extensions import Literal, NotRequired, TypedDict",
        "",
        "import wasmforge",
        "",
    ]
    for recorded in types.values():
        lines += _type_lines(recorded, types) + [""]
    lines.append(f"class {name}(wasmforge.Plugin):")
    lines.append(f"    {_doc_literal(f'{Path(plugin_file).name}: cast wasmforge.load(...) to this for typed calls.')}")
    for export in exports.values():
        if python_name(export.name) and not export.name.startswith("_"):
            lines += [""] + _method_lines(export, types)
    return "\n".join(lines) + "\n"


def _type_lines(recorded: RecordedType, types: Mapping[str, RecordedType]) -> list[str]:
    if recorded.shape == "enum":
        units = [v.name for v in recorded.variants if v.fields is None and not v.tuple_types]
        parts = [f"Literal[{', '.join(repr(u) for u in units)}]"] if units else []
        if len(units) < len(recorded.variants):
            parts.append("dict[str, Any]")  # {"Variant": data}
        alias = parts[0] if len(parts) == 1 else f"Union[{', '.join(parts)}]"
        return [f"{recorded.name} = {alias}"] + ([f"{_doc_literal(recorded.doc)}"] if recorded.doc else [])
    if recorded.tuple_types:
        items = ", ".join(annotation_text(parse_rust_type(t, types)) for t in recorded.tuple_types)
        return [f"{recorded.name} = {'tuple[' + items + ']' if len(recorded.tuple_types) > 1 else items}"]
    fields = [(f, _field_annotation(f, types)) for f in recorded.fields]
    if all(python_name(f.name) for f, _ in fields):
        lines = [f"class {recorded.name}(TypedDict):"]
        if recorded.doc:
            lines.append(f"    {_doc_literal(recorded.doc)}")
        lines += [f"    {f.name}: {text}" for f, text in fields]
        if len(lines) == 1:
            lines.append("    pass")
        return lines
    entries = ", ".join(f"{f.name!r}: {text}" for f, text in fields)
    return [f"{recorded.name} = TypedDict({recorded.name!r}, {{{entries}}})"]


def _field_annotation(field: Field, types: Mapping[str, RecordedType]) -> str:
    text = annotation_text(parse_rust_type(field.type, types))
    return text if field.required else f"NotRequired[{text}]"


def _method_lines(export: Signature, types: Mapping[str, RecordedType]) -> list[str]:
    params = ["self"] + [
        f"{p.name if python_name(p.name) else f'p{i}'}: {annotation_text(parse_rust_type(p.type, types))}"
        for i, p in enumerate(export.params)
    ]
    returns = "None" if export.returns in ("()", "") else annotation_text(parse_rust_type(export.returns, types))
    # Positional-only: calls pass arguments by position.
    signature = ", ".join(params + (["/"] if export.params else []))
    doc = export.doc or str(export)
    return [f"    def {export.name}({signature}) -> {returns}:", f"        {_doc_literal(doc)}", "        ..."]


def _doc_literal(text: str) -> str:
    """A docstring as a plain string literal: whatever the text holds, it stays text."""
    return repr(text)


__all__ = ["HEADER", "class_name", "module_name", "stub_text"]
