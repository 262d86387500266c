"""`wasmforge new`: writes a Cargo workspace from a template directory.

A template is a directory of files that read as the Rust and TOML they become,
with two placeholders, in file contents and in paths:

- ``{{name}}``: the name given to `wasmforge new` (``my-tool``);
- ``{{crate}}``: the same as a Rust identifier (``my_tool``).

An optional ``template.toml`` in it (not copied) gives a one-line
``description`` and ``include``: shared parts from wasmforge's own templates
directory (names starting with ``_``, such as ``_guest``: the guest support
crate and the ``#[plugin_fn]`` macro) copied along with it.

Every output is planned before anything is written: a ``{{word}}`` that is not
a placeholder, two template files rendering to the same path, or a path that
would be both a file and a directory is refused up front. (Rust's escaped
braces, ``{{}}``, ``{{ x }}``, ``{{"k":{}}}`` or ``{{{value}}}``, are not
placeholders and are copied as they are.)

Nothing is ever overwritten: the destination must be absent or empty, every
output path must stay inside it, and each file is created exclusively. If
writing fails, what `new` created (files and directories, never anything that
was already there) is removed again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import ScaffoldError, ToolchainError, WorkspaceNotFound
from . import tomlfile
from .cargo import Cargo
from .lockfile import LOCK_FILE
from .manifest import registry_dependencies
from .settings import find_workspace, toml_repr
from .toolchain import find_toolchain, offline_config_toml, uses_debian_registry

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


CARGO_CONFIG = Path(".cargo/config.toml")


@dataclass(frozen=True)
class Scaffold:
    """What `new` writes (or, for a dry run, would write)."""

    name: str
    destination: Path
    files: tuple[PlannedFile, ...]
    written: bool
    #: .cargo/config.toml takes crates from Debian's registry, so plain cargo works as `wasmforge build` does.
    offline: bool = False
    #: Cargo.lock was resolved and written (by the cargo that builds, in a format it reads).
    locked: bool = False
    #: What `new` did not do that one would expect, and why.
    notes: tuple[str, ...] = ()

    def registry_dependencies(self) -> list[str]:
        """The crates its Cargo.toml files take from a registry (not a path), in name order: what a first build compiles."""
        manifests = []
        for planned in self.files:
            if planned.relative.name == "Cargo.toml":
                try:
                    manifests.append(tomlfile.parse(planned.content.decode("utf-8"), planned.relative, ScaffoldError))
                except (ScaffoldError, UnicodeDecodeError):
                    continue  # a template's own business: cargo says what is wrong with it
        return registry_dependencies(manifests)


def templates_root() -> Path:
    """Where the templates are: inside the installed package, or the source checkout."""
    package = Path(__file__).resolve().parents[1]  # wasmforge/, which the wheel ships the templates in
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise ScaffoldError(f"wasmforge's templates are missing (looked in {package / 'templates'}); reinstall wasmforge")


TEMPLATE_CONFIG = "template.toml"


def available_templates() -> list[str]:
    return sorted(p.name for p in templates_root().iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def describe_template(template: str, cwd: Optional[Path] = None) -> str:
    """The template's one-line description, from its template.toml."""
    return str(_template_config(_template_dir(template, cwd)).get("description", ""))


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


#: The keys of template.toml: what each must be, and the test for it.
_CONFIG_KEYS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "description": ("a string", lambda value: isinstance(value, str)),
    "include": ("a list of strings", _is_strings),
    "next": ("a list of strings", _is_strings),
    #: The plugin crate's directory that `wasmforge add` copies (default: the template's one cdylib crate).
    "plugin": ("a string", lambda value: isinstance(value, str)),
}


def _template_config(source: Path) -> dict[str, Any]:
    path = source / TEMPLATE_CONFIG
    try:
        if not path.is_file():
            return {}
    except OSError as error:
        raise ScaffoldError(f"cannot read {path}: {error.strerror or error}") from error
    config = tomlfile.read(path, missing_ok=True, error=ScaffoldError) or {}
    unknown = set(config) - set(_CONFIG_KEYS)
    if unknown:
        raise ScaffoldError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(_CONFIG_KEYS)}")
    for key, (expected, fits) in _CONFIG_KEYS.items():
        if key in config and not fits(config[key]):
            example = ' (names like ["_guest"])' if key == "include" else ""
            raise ScaffoldError(f"{path}: {key} must be {expected}{example}, got {toml_repr(config[key])}")
    return config


def next_steps(template: str, cwd: Optional[Path] = None) -> list[str]:
    """Commands to suggest after `new`, from the template's template.toml."""
    return list(_template_config(_template_dir(template, cwd)).get("next", ["wasmforge build"]))


def _template_sources(source: Path) -> list[Path]:
    """The template's directory and the shared parts it includes, parts first."""
    include = _template_config(source).get("include", [])
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


#: The placeholders a template may use, and what each becomes.
PLACEHOLDERS = ("name", "crate")
#: ``{{word}}`` not inside a longer run of braces: a placeholder, known or not. Rust escapes
#: braces by doubling them (``{{}}``, ``{{ x }}``, ``{{"k":{}}}``, ``{{{value}}}``); none match.
_PLACEHOLDER = re.compile(r"(?<!\{)\{\{([A-Za-z_][A-Za-z0-9_-]*)\}\}(?!\})")


def render(text: str, name: str) -> str:
    return text.replace("{{name}}", name).replace("{{crate}}", name.replace("-", "_"))


def _check_placeholders(text: str, where: Path, what: str) -> None:
    """ScaffoldError if ``text`` (the contents or the path of ``where``) uses an unknown ``{{word}}``."""
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            line = text.count("\n", 0, match.start()) + 1
            at = f" (line {line})" if what == "contents" else " in its path"
            known = ", ".join("{{%s}}" % known for known in PLACEHOLDERS)
            raise ScaffoldError(
                f"template file {where} uses unknown placeholder {match.group(0)}{at}; known placeholders: {known}"
            )


def plan(
    name: str, destination: Path, template: str = DEFAULT_TEMPLATE, offline: bool = False, cwd: Optional[Path] = None
) -> list[PlannedFile]:
    """Every file the workspace gets, rendered and checked, without touching the disk.

    A relative template directory is found from ``cwd`` (default: the current directory).
    """
    check_name(name)
    template_dir = _template_dir(template, cwd)
    files: list[PlannedFile] = []
    origin: dict[Path, str] = {}  # output path -> the template file (or option) it comes from
    own = 0  # files from the template's own directory, which comes last
    for source in _template_sources(template_dir):
        try:
            paths = sorted(source.rglob("*"))
            own = 0
            for path in paths:
                if path.is_symlink():
                    # Copying what a link points at could put any file the user may read (say
                    # /etc/shadow, for root) into the new workspace, readable by everyone.
                    raise ScaffoldError(
                        f"template {template!r} holds a symbolic link, {path.relative_to(source)} -> "
                        f"{os.readlink(path)}; templates copy files, not links: put the file itself there; "
                        "nothing was written"
                    )
                if not path.is_file() or "__pycache__" in path.parts or path == source / TEMPLATE_CONFIG:
                    continue
                own += 1
                relative_text = path.relative_to(source).as_posix()
                _check_placeholders(relative_text, path, "path")
                relative = Path(render(relative_text, name))
                if relative in origin:
                    raise ScaffoldError(
                        f"template {template!r} writes {relative} twice: from {origin[relative]} and from {path}; "
                        "nothing was written"
                    )
                origin[relative] = str(path)
                raw = path.read_bytes()
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    content = raw  # binary files are copied as they are
                else:
                    _check_placeholders(text, path, "contents")
                    content = render(text, name).encode("utf-8")
                files.append(PlannedFile(relative, content))
        except OSError as error:
            raise ScaffoldError(f"could not read template {source}: {error.strerror or error}") from error
    if not own:  # the template's own directory (the last source) holds nothing to copy
        config = " besides template.toml" if (template_dir / TEMPLATE_CONFIG).is_file() else ""
        raise ScaffoldError(f"template {template!r} has no files{config}; nothing to create")
    files.sort(key=lambda planned: planned.relative.as_posix())
    if offline:
        cargo_config = CARGO_CONFIG
        if cargo_config in origin:
            raise ScaffoldError(
                f"template {template!r} writes {cargo_config} (from {origin[cargo_config]}), which --offline writes "
                "too; drop --offline or that file"
            )
        origin[cargo_config] = "--offline"
        files.append(PlannedFile(cargo_config, offline_config_toml().encode("utf-8")))
    for relative, source_file in origin.items():
        for parent in list(relative.parents)[:-1]:
            if parent in origin:
                raise ScaffoldError(
                    f"template {template!r} writes {parent} both as a file (from {origin[parent]}) and as a directory "
                    f"(for {relative}, from {source_file}); nothing was written"
                )
    destination = destination.resolve()
    for planned in files:
        target = (destination / planned.relative).resolve()
        if destination not in target.parents:
            raise ScaffoldError(f"template {template!r} would write {planned.relative} outside {destination}; refusing")
    return files


def _template_dir(template: str, cwd: Optional[Path] = None) -> Path:
    candidate = Path(template) if cwd is None else cwd / template  # an absolute template stays as it is
    try:
        if template not in available_templates() and ("/" in template or candidate.is_dir()):
            if not candidate.is_dir():
                raise ScaffoldError(f"template directory {template} does not exist")
            return candidate.resolve()
    except OSError as error:  # a directory on the way that may not be searched
        raise ScaffoldError(f"cannot reach template directory {template}: {error.strerror or error}") from error
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
    offline: Optional[bool] = None,
    dry_run: bool = False,
    cwd: Optional[Path] = None,
    lock: bool = True,
) -> Scaffold:
    """Creates workspace ``name`` at ``destination`` (default: ``cwd/name``).

    ``offline``: write .cargo/config.toml taking crates from Debian's registry; None (the
    default) does so where `wasmforge build` takes them from there (Debian's toolchain, or
    WASMFORGE_OFFLINE), so plain cargo and editors work in the workspace as the build does.
    ``lock``: resolve Cargo.lock offline with the cargo that builds, in a format every cargo
    here reads, where crates come from Debian's registry.
    """
    check_name(name)
    destination = (destination if destination is not None else Path(name))
    if not destination.is_absolute():
        destination = (cwd or Path.cwd()) / destination
    _check_destination(destination)
    _check_not_inside_a_workspace(destination, name)
    notes: list[str] = []
    files = plan(name, destination, template, bool(offline), cwd)
    if offline is None and uses_debian_registry():
        if any(planned.relative == CARGO_CONFIG for planned in files):
            notes.append(f"template {template!r} writes its own {CARGO_CONFIG}; Debian's registry was not added to it")
        else:
            offline = True
            files = plan(name, destination, template, True, cwd)
    locked = False
    if not dry_run:
        _write(destination, files)
        if lock:
            locked, why_not = _write_lock(destination, bool(offline))
            if why_not:
                notes.append(f"{LOCK_FILE} not written ({why_not}); the first build writes it")
    return Scaffold(name=name, destination=destination, files=tuple(files), written=not dry_run,
                    offline=bool(offline), locked=locked, notes=tuple(notes))


def _write_lock(destination: Path, offline: bool) -> tuple[bool, Optional[str]]:
    """Writes Cargo.lock for a new workspace whose crates come from Debian's registry: (written, why it failed).

    Elsewhere (a rustup toolchain with the target, crates from crates.io) one cargo is in
    play and it writes the lock on the first build, with the network it needs.
    """
    try:
        toolchain = find_toolchain()
    except ToolchainError:
        return False, "no Rust toolchain builds for wasm here yet; `wasmforge doctor` says what is missing"
    if not (offline or toolchain.is_debian):
        return False, None
    failure = Cargo(destination, toolchain, debian_registry=True).write_lock()
    return failure is None, failure


def _check_not_inside_a_workspace(destination: Path, name: str) -> None:
    """A workspace inside another breaks the outer one's cargo (two workspace roots): `add` is the way there."""
    try:
        outer = find_workspace(destination.parent)
    except WorkspaceNotFound:
        return
    raise ScaffoldError(f"{destination} is inside the wasmforge workspace at {outer}, and a workspace in a workspace "
                        f"breaks its build; add a plugin crate to it with `wasmforge -C {outer} add {name}`, or "
                        "create the workspace elsewhere; nothing was written")


def _check_destination(destination: Path) -> None:
    try:
        if destination.is_dir():
            if any(destination.iterdir()):
                raise ScaffoldError(
                    f"{destination} already exists and is not empty; choose another name or --path, "
                    "nothing was written"
                )
        elif destination.exists():
            raise ScaffoldError(f"{destination} exists and is not a directory; choose another --path")
    except OSError as error:
        raise ScaffoldError(f"cannot use {destination}: {error.strerror or error}; nothing was written") from error


def plan_plugin_crate(name: str, template: str = DEFAULT_TEMPLATE, cwd: Optional[Path] = None) -> list[PlannedFile]:
    """The files of one plugin crate from ``template``, for `wasmforge add`: relative to the crate's directory.

    The template's plugin crate (its template.toml ``plugin``, else its one
    crate whose [lib] crate-type is a cdylib) is rendered with the crate named
    ``name``: its directory's name (``{{name}}-plugin``) and that name as a
    Rust identifier (``{{crate}}_plugin``) become ``name``, and any other
    placeholder becomes ``name`` too.
    """
    check_name(name)
    template_dir = _template_dir(template, cwd)
    crate_dir = _plugin_dir(template_dir, template)
    package = crate_dir.name
    identifier = package.replace("{{name}}", "{{crate}}").replace("-", "_")
    files = []
    try:
        for path in sorted(crate_dir.rglob("*")):
            if path.is_symlink():
                raise ScaffoldError(f"template {template!r} holds a symbolic link, {path.relative_to(template_dir)}; "
                                    "templates copy files, not links; nothing was written")
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            relative_text = path.relative_to(crate_dir).as_posix()
            _check_placeholders(relative_text, path, "path")
            relative = Path(render(relative_text.replace(identifier, name.replace("-", "_")), name))
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                files.append(PlannedFile(relative, raw))
                continue
            _check_placeholders(text, path, "contents")
            text = text.replace(package, name).replace(identifier, name.replace("-", "_"))
            files.append(PlannedFile(relative, render(text, name).encode("utf-8")))
    except OSError as error:
        raise ScaffoldError(f"could not read template {crate_dir}: {error.strerror or error}") from error
    return files


def _plugin_dir(template_dir: Path, template: str) -> Path:
    """The template's plugin crate directory: template.toml's ``plugin``, else its one cdylib crate."""
    given = _template_config(template_dir).get("plugin")
    if given is not None:
        directory: Path = template_dir / str(given)
        if not (directory / "Cargo.toml").is_file() or template_dir.resolve() not in directory.resolve().parents:
            raise ScaffoldError(f"{template_dir / TEMPLATE_CONFIG}: plugin = {given!r} is not a crate directory "
                                "of the template (one holding a Cargo.toml)")
        return directory
    found = []
    for manifest in sorted(template_dir.rglob("Cargo.toml")):
        try:
            data = tomlfile.parse(manifest.read_text(encoding="utf-8"), manifest, ScaffoldError)
        except (OSError, UnicodeDecodeError):
            continue
        lib = data.get("lib")
        if isinstance(lib, dict) and "cdylib" in (lib.get("crate-type") or []):
            found.append(manifest.parent)
    if len(found) != 1:
        which = f"several ({', '.join(d.name for d in found)})" if found else "none"
        raise ScaffoldError(f"template {template!r} has {which} cdylib crates; name the one `wasmforge add` copies "
                            f"in its {TEMPLATE_CONFIG}, e.g. plugin = \"crates/{{{{name}}}}-plugin\"")
    return found[0]


def write_files(destination: Path, files: list[PlannedFile]) -> None:
    """Writes ``files`` under ``destination``, never over anything; on a failure, removes what it made and raises."""
    _write(destination, files)


def _write(destination: Path, files: list[PlannedFile]) -> None:
    """Writes ``files`` under ``destination``; on any failure, removes what it created and raises."""
    created: list[tuple[Path, bool]] = []  # (path, is a directory), in the order made
    current = destination
    try:
        for planned in files:
            target = destination / planned.relative
            missing = []
            directory = current = target.parent
            while not directory.is_dir():
                missing.append(directory)
                directory = directory.parent
            for directory in reversed(missing):
                current = directory
                try:
                    directory.mkdir()
                except FileExistsError:
                    if not directory.is_dir():
                        raise
                    continue  # made by someone else meanwhile: not ours to remove
                created.append((directory, True))
            current = target
            try:
                # "x": fail rather than overwrite, even if something appeared meanwhile.
                handle = open(target, "xb")
            except FileExistsError as error:
                raise ScaffoldError(f"{target} appeared while writing the workspace; it was left untouched") from error
            created.append((target, False))
            with handle:
                handle.write(planned.content)
    except BaseException as error:
        left = _remove(created)
        if left:
            note = f"could not remove {', '.join(map(str, left))}"
        else:
            note = "removed what it had created" if created else "nothing was written"
        if isinstance(error, OSError):
            raise ScaffoldError(f"could not create {current}: {error.strerror or error}; {note}") from error
        if isinstance(error, ScaffoldError):
            raise ScaffoldError(f"{error}; {note}") from None
        raise


def _remove(created: list[tuple[Path, bool]]) -> list[Path]:
    """Removes what `new` made, newest first; returns what could not be removed.

    Directories are only removed when empty, so anything put into them meanwhile stays.
    """
    left = []
    for path, is_directory in reversed(created):
        try:
            if is_directory:
                path.rmdir()
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            left.append(path)
    return left
