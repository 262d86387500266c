"""`wasmforge new`: writes a Cargo workspace from a template directory.

A template is a directory of files that read as the Rust and TOML they become,
with two placeholders, in file contents and in paths:

- ``{{name}}``: the name given to `wasmforge new` (``my-tool``);
- ``{{crate}}``: the same as a Rust identifier (``my_tool``).

An optional ``template.toml`` in it (not copied) gives a one-line
``description`` and ``include``: shared parts from wasmforge's own templates
directory (names starting with ``_``, such as ``_guest``: the guest support
crate and the ``#[plugin_fn]`` macro) copied along with it.

Nothing is ever overwritten: the destination must be absent or empty, every
output path must stay inside it, and each file is created exclusively.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

from .errors import ScaffoldError
from .toolchain import offline_config_toml

DEFAULT_TEMPLATE = "default"
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_MAX_NAME = 48
#: Rust keywords; `{{crate}}_plugin` is never one, but a bare `{{crate}}` might be.
_RUST_KEYWORDS = {
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "typeof", "unsized", "virtual", "yield", "try",
}


@dataclass(frozen=True)
class PlannedFile:
    """One file `new` would write: its path relative to the workspace, and bytes."""

    relative: Path
    content: bytes


@dataclass(frozen=True)
class Scaffold:
    """What `new` writes (or, for a dry run, would write)."""

    name: str
    destination: Path
    files: tuple[PlannedFile, ...]
    written: bool


def templates_root() -> Path:
    """Where the templates are: inside the installed package, or the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise ScaffoldError(f"wasmforge's templates are missing (looked in {here / 'templates'}); reinstall wasmforge")


TEMPLATE_CONFIG = "template.toml"


def available_templates() -> list[str]:
    return sorted(p.name for p in templates_root().iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def describe_template(template: str) -> str:
    """The template's one-line description, from its template.toml."""
    return str(_template_config(_template_dir(template)).get("description", ""))


def _template_config(source: Path) -> dict[str, Any]:
    path = source / TEMPLATE_CONFIG
    if not path.is_file():
        return {}
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ScaffoldError(f"{path} is not valid TOML: {error}") from None
    unknown = set(config) - {"description", "include", "next"}
    if unknown:
        raise ScaffoldError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: description, include, next")
    return config


def next_steps(template: str) -> list[str]:
    """Commands to suggest after `new`, from the template's template.toml."""
    steps = _template_config(_template_dir(template)).get("next", ["wasmforge build"])
    return [str(step) for step in steps] if isinstance(steps, list) else []


def _template_sources(source: Path) -> list[Path]:
    """The template's directory and the shared parts it includes, parts first."""
    include = _template_config(source).get("include", [])
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        raise ScaffoldError(f"{source / TEMPLATE_CONFIG}: include must be a list of names like [\"_guest\"]")
    parts = []
    for name in include:
        part = templates_root() / name
        if not name.startswith("_") or not part.is_dir():
            known = ", ".join(sorted(p.name for p in templates_root().iterdir() if p.name.startswith("_")))
            raise ScaffoldError(f"{source / TEMPLATE_CONFIG} includes {name!r}, which is not a shared part ({known})")
        parts.append(part)
    return [*parts, source]


def check_name(name: str) -> str:
    """``name`` if it makes valid crate names; ScaffoldError with a suggestion if not."""
    if _NAME.match(name) and len(name) <= _MAX_NAME and not name.endswith(("-", "_")) and "--" not in name:
        if name.replace("-", "_") in _RUST_KEYWORDS:
            raise ScaffoldError(f"invalid name {name!r}: it is a Rust keyword; try {name + '-plugin'!r}")
        return name
    suggestion = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if suggestion and not suggestion[0].isalpha():
        suggestion = "plugin-" + suggestion
    hint = f"; try {suggestion[:_MAX_NAME]!r}" if suggestion else ""
    raise ScaffoldError(
        f"invalid name {name!r}: use lowercase letters, digits, '-' and '_', starting with a letter, "
        f"at most {_MAX_NAME} characters{hint}"
    )


def render(text: str, name: str) -> str:
    return text.replace("{{name}}", name).replace("{{crate}}", name.replace("-", "_"))


def plan(name: str, destination: Path, template: str = DEFAULT_TEMPLATE, offline: bool = False) -> list[PlannedFile]:
    """Every file the workspace gets, rendered, without touching the disk."""
    check_name(name)
    files: list[PlannedFile] = []
    seen: set[Path] = set()
    for source in _template_sources(_template_dir(template)):
        for path in sorted(source.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path == source / TEMPLATE_CONFIG:
                continue
            relative = Path(render(path.relative_to(source).as_posix(), name))
            if relative in seen:
                raise ScaffoldError(f"template {template!r} writes {relative} twice (in {source.name} and a part it includes)")
            seen.add(relative)
            raw = path.read_bytes()
            try:
                content = render(raw.decode("utf-8"), name).encode("utf-8")
            except UnicodeDecodeError:
                content = raw  # binary files are copied as they are
            files.append(PlannedFile(relative, content))
    files.sort(key=lambda planned: planned.relative.as_posix())
    if offline:
        files.append(PlannedFile(Path(".cargo/config.toml"), offline_config_toml().encode("utf-8")))
    destination = destination.resolve()
    for planned in files:
        target = (destination / planned.relative).resolve()
        if destination not in target.parents:
            raise ScaffoldError(f"template {template!r} would write {planned.relative} outside {destination}; refusing")
    return files


def _template_dir(template: str) -> Path:
    candidate = Path(template)
    if template not in available_templates() and ("/" in template or candidate.is_dir()):
        if not candidate.is_dir():
            raise ScaffoldError(f"template directory {template} does not exist")
        return candidate.resolve()
    source = templates_root() / template
    if not source.is_dir():
        known = ", ".join(available_templates())
        raise ScaffoldError(f"unknown template {template!r}; available: {known}")
    return source


def new_workspace(
    name: str,
    destination: Optional[Path] = None,
    *,
    template: str = DEFAULT_TEMPLATE,
    offline: bool = False,
    dry_run: bool = False,
    cwd: Optional[Path] = None,
) -> Scaffold:
    """Creates workspace ``name`` at ``destination`` (default: ``cwd/name``)."""
    check_name(name)
    destination = (destination if destination is not None else Path(name))
    if not destination.is_absolute():
        destination = (cwd or Path.cwd()) / destination
    _check_destination(destination)
    files = plan(name, destination, template, offline)
    if not dry_run:
        _write(destination, files)
    return Scaffold(name=name, destination=destination, files=tuple(files), written=not dry_run)


def _check_destination(destination: Path) -> None:
    if destination.is_dir():
        if any(destination.iterdir()):
            raise ScaffoldError(
                f"{destination} already exists and is not empty; choose another name or --path, "
                "nothing was written"
            )
    elif destination.exists():
        raise ScaffoldError(f"{destination} exists and is not a directory; choose another --path")


def _write(destination: Path, files: list[PlannedFile]) -> None:
    for planned in files:
        target = destination / planned.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # "x": fail rather than overwrite, even if something appeared meanwhile.
            with open(target, "xb") as handle:
                handle.write(planned.content)
        except FileExistsError:
            raise ScaffoldError(f"{target} appeared while writing the workspace; it was left untouched") from None
        except OSError as error:
            raise ScaffoldError(f"could not write {target}: {error.strerror}") from None
