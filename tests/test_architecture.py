"""The package's layers, read from its source with ast: no cycle, no upward import, no reaching into privates.

errors/limits/events (and the small shared modules) <- abi <- runtime <- workspace <- devloop <- cli
(docs/ARCHITECTURE.md). Every import counts, lazy ones inside functions and TYPE_CHECKING ones
included: a lazy import that dodges a cycle is still a cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Iterator

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wasmforge"

#: Each module's layer, by the longest matching name; a module may import its own layer and those below.
LAYERS = {
    "wasmforge._version": 0,
    "wasmforge._text": 0,
    "wasmforge._json": 0,
    "wasmforge._files": 0,
    "wasmforge.errors": 0,
    "wasmforge.limits": 0,
    "wasmforge.events": 0,
    "wasmforge.abi": 1,
    "wasmforge.runtime": 2,
    "wasmforge.workspace": 3,
    "wasmforge.devloop": 4,
    # The pytest11 plugin may use anything below the command line.
    "wasmforge.pytest_plugin": 4,
    "wasmforge.cli": 5,
    "wasmforge.__main__": 6,
}
#: The package itself: its __init__ re-exports the public API from every layer, lazily; nothing imports it.
FACADE = "wasmforge"

#: Private names of code wasmforge does not own that it must read, each for a reason that is written down.
#: Everything else named ``obj._name`` must be defined in the module that reads it.
THIRD_PARTY_PRIVATES = {
    # wasmtime-py exposes no public handle to a function, memory, global or store context; the fast
    # path (runtime/fastcall.py) calls wasmtime's C API with the handles these hold.
    "_context", "_func", "_memory", "_anon_1", "_global", "_instance", "_Managed__ptr", "_from_ptr", "_from_raw",
    # CPython: a thread's current frame, for Ctrl-C (runtime/interrupt.py); whether the calling thread
    # holds an RLock, as threading.Condition asks it (runtime/instances.py).
    "_current_frames", "_is_owned",
    # CPython: making a lock another thread held at a fork usable in the child, in place (threading.py does
    # this for its own locks), so call paths that hold its methods keep working (runtime/instances.py).
    "_at_fork_reinit",
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = modules()


def layer(module: str) -> int:
    best = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Each wasmforge module ``module`` imports (anywhere in it), with the line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                yield (candidate if candidate in MODULES else target), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _ in imported(name, path):
            if target in MODULES and target != name:
                edges[name].add(target)
    return edges


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if m != FACADE and not any(m == p or m.startswith(p + ".") for p in LAYERS)] == []


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for name, path in MODULES.items():
        if name == FACADE:
            continue
        for target, line in imported(name, path):
            if target == FACADE:
                upward.append(f"{name}:{line} imports the package facade (import what it re-exports from its module)")
            elif target in MODULES and layer(target) > layer(name):
                upward.append(f"{name}:{line} imports {target} (layer {layer(target)} > {layer(name)})")
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for name in edges:
            if name not in index:
                visit(name)
    finally:
        sys.setrecursionlimit(limit)  # other tests rely on Python's own limit (JSON nested too deeply)
    assert cycles == []


def private_names_defined(tree: ast.AST) -> set[str]:
    """Every ``_name`` a module defines: functions, classes, methods, module names, attributes it assigns."""
    defined = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            defined.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Attribute):
            defined.add(node.target.attr)
        elif isinstance(node, ast.alias):
            defined.add(node.asname or node.name.rpartition(".")[2])
    return {name for name in defined if name.startswith("_")}


def reads_of_other_modules_privates(path: Path) -> list[str]:
    """``obj._name`` reads of a ``_name`` the module does not define itself (``self``/``cls`` aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = private_names_defined(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not isinstance(node.ctx, ast.Load):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") and name.endswith("__"):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if name in own or name in THIRD_PARTY_PRIVATES:
            continue
        found.append(f"{path.name}:{node.lineno} reads .{name}")
    return found


def test_no_module_reads_another_modules_private_attributes() -> None:
    assert [read for path in MODULES.values() for read in reads_of_other_modules_privates(path)] == []


def test_the_checks_themselves_catch_what_they_look_for(tmp_path: Path) -> None:
    """Each rule on a module that breaks it, so a rule that stopped working would show here."""
    (tmp_path / "reader.py").write_text("def f(plugin):\n    return plugin._current, self._x, plugin.__dict__\n")
    assert reads_of_other_modules_privates(tmp_path / "reader.py") == ["reader.py:2 reads ._current"]
    (tmp_path / "owner.py").write_text("class A:\n    def __init__(self):\n        self._x = 1\n\ndef f(a):\n    return a._x\n")
    assert reads_of_other_modules_privates(tmp_path / "owner.py") == []
    assert layer("wasmforge.runtime.plugin") == 2 and layer("wasmforge.cli.commands.call") == 5
    assert layer("wasmforge.abi") == 1 and layer("wasmforge.events") == 0


def lean_call_names(param_types: tuple[str, ...], fixes_result: bool, interruptible: bool) -> set[str]:
    """The global and attribute names the generated lean call's code uses (both its functions)."""
    from wasmforge.abi.codec import passes_as_is
    from wasmforge.runtime.function import _lean_code

    wasm = tuple("f32" if t == "f32" else "f64" if t == "f64" else "i64" if t in ("i64", "u64") else "i32"
                 for t in param_types)
    assert all(passes_as_is(t) is not None or t in ("f32", "f64", "bool") for t in param_types)
    module = _lean_code(param_types, wasm, ("i32",), fixes_result, interruptible)
    functions = [const for const in module.co_consts if hasattr(const, "co_names")]
    assert len(functions) == 2  # the solo path and the locked one
    return {name for function in functions for name in function.co_names}


@pytest.mark.parametrize("shape", [((), False, True), (("i32", "i32"), False, True), (("u8", "f32", "bool"), True, False)])
def test_generated_call_code_names_no_private_attribute(shape: tuple[tuple[str, ...], bool, bool]) -> None:
    names = lean_call_names(*shape)
    assert "acquire" in names and "holder" in names  # what it is given, as locals of its namespace
    assert sorted(name for name in names if name.startswith("_") and not name.endswith("__")) == []
