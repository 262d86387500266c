"""`wasmforge add`: one more plugin crate in an existing workspace, as `cargo new` inside a Cargo workspace.

The crate comes from a template's plugin crate (scaffold.py renders it),
written where nothing is, never over a file. Then it is registered where the
workspace needs it: the Cargo workspace's members (unless a pattern there
covers it already), each runner crate's [dependencies] (so `call --native`
reaches it), and wasmforge.toml's ``[plugin] crates`` when that list is set
(without it, every cdylib crate is a plugin crate already). Each of those
files is edited in place as text, so its comments and layout stay; every
edit is planned before anything is written, and undone if a later step fails.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..errors import ScaffoldError
from . import tomlfile
from .manifest import MANIFEST, dependencies, workspace_crates
from .native import runner_crates
from .scaffold import DEFAULT_TEMPLATE, PlannedFile, check_name, plan_plugin_crate, write_files
from .settings import CONFIG_FILE, load_settings


@dataclass(frozen=True)
class Edit:
    """One file `add` changes: its text before and after, and what the change is, in words."""

    path: Path
    before: str
    after: str
    what: str


@dataclass(frozen=True)
class Added:
    """What `add` wrote (or, for a dry run, would write)."""

    name: str
    destination: Path
    files: tuple[PlannedFile, ...]
    edits: tuple[Edit, ...]
    written: bool


def add_plugin(root: Path, name: str, *, template: str = DEFAULT_TEMPLATE, destination: Optional[Path] = None,
               cwd: Optional[Path] = None, dry_run: bool = False) -> Added:
    """Adds plugin crate ``name`` from ``template`` to the workspace at ``root`` (default place: crates/NAME)."""
    check_name(name)
    members = workspace_crates(root)
    if name in members:
        raise ScaffoldError(f"the workspace at {root} has a crate {name!r} already (in {members[name]}); "
                            "choose another name; nothing was written")
    destination = (destination if destination is not None else root / "crates" / name).absolute()
    destination = Path(os.path.normpath(destination))
    if root.resolve() not in destination.resolve().parents:
        raise ScaffoldError(f"{destination} is outside the workspace at {root}; put the crate inside it")
    _check_free(destination)
    files = plan_plugin_crate(name, template, cwd)
    _check_path_dependencies(files, destination)
    settings = load_settings(root)
    edits = [edit for edit in (
        _register_member(root, destination),
        *(_register_dependency(members[runner], name, destination, runner)
          for runner in runner_crates(members, settings.plugin_crates, root) if _linkable(files)),
        _register_plugin(root, name),
    ) if edit is not None]
    if not dry_run:
        _apply(edits, lambda: write_files(destination, list(files)))
    return Added(name=name, destination=destination, files=tuple(files), edits=tuple(edits), written=not dry_run)


def _linkable(files: list[PlannedFile]) -> bool:
    """Whether the new crate's library links into a Rust program (an rlib too, not a cdylib alone): what a
    runner can depend on. The minimal template's plugin is a bare cdylib: no runner reaches it."""
    for planned in files:
        if planned.relative == Path(MANIFEST):
            lib = tomlfile.parse(planned.content.decode("utf-8"), planned.relative, ScaffoldError).get("lib")
            kinds = lib.get("crate-type", ["lib"]) if isinstance(lib, dict) else ["lib"]
            return any(kind in ("lib", "rlib") for kind in kinds)
    return False


def _check_free(destination: Path) -> None:
    try:
        if destination.is_dir() and any(destination.iterdir()) or destination.exists() and not destination.is_dir():
            raise ScaffoldError(f"{destination} exists already; choose another name or --path; nothing was written")
    except OSError as error:
        raise ScaffoldError(f"cannot use {destination}: {error.strerror or error}; nothing was written") from error


def _check_path_dependencies(files: list[PlannedFile], destination: Path) -> None:
    """The crates the new one depends on by path must be where its Cargo.toml says (the workspace's own)."""
    for planned in files:
        if planned.relative != Path(MANIFEST):
            continue
        manifest = tomlfile.parse(planned.content.decode("utf-8"), planned.relative, ScaffoldError)
        for dependency, spec in dependencies(manifest):
            if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                target = Path(os.path.normpath(destination / spec["path"]))
                if not (target / MANIFEST).is_file():
                    raise ScaffoldError(
                        f"the new crate depends on {dependency} at {spec['path']}, which is not there from "
                        f"{destination} ({target} has no {MANIFEST}); put it beside the workspace's {dependency} "
                        "with --path; nothing was written")


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _register_member(root: Path, destination: Path) -> Optional[Edit]:
    """The crate's directory in [workspace] members, unless a member pattern covers it already."""
    manifest_path = root / MANIFEST
    text = tomlfile.read_text(manifest_path, ScaffoldError)
    data = tomlfile.parse(text, manifest_path, ScaffoldError)
    workspace = data.get("workspace")
    members = workspace.get("members", []) if isinstance(workspace, dict) else []
    relative = _relative(destination, root)
    if any(isinstance(pattern, str) and fnmatch.fnmatchcase(relative, pattern.rstrip("/")) for pattern in members):
        return None
    after = _append_to_list(text, "workspace", "members", relative)
    if after is None:
        raise ScaffoldError(f"{manifest_path} has no [workspace] members list to add {relative} to; add "
                            f"members = [\"{relative}\"] under [workspace]; nothing was written")
    return Edit(manifest_path, text, after, f"added {relative} to [workspace] members")


def _register_dependency(runner_dir: Path, name: str, destination: Path, runner: str) -> Edit:
    """``name = { path = ... }`` at the end of the runner's [dependencies], so it runs the new plugin too."""
    manifest_path = runner_dir / MANIFEST
    text = tomlfile.read_text(manifest_path, ScaffoldError)
    line = f'{name} = {{ path = "{_relative(destination, runner_dir)}" }}\n'
    header = re.search(r"^\[dependencies\][ \t]*(#.*)?$", text, re.MULTILINE)
    if header is None:
        after = (text.rstrip("\n") + "\n\n" if text.strip() else "") + "[dependencies]\n" + line
    else:
        following = re.search(r"^[ \t]*\[", text[header.end():], re.MULTILINE)
        end = header.end() + following.start() if following else len(text)
        body = text[header.end():end].rstrip()
        after = text[:header.end()] + body + "\n" + line + ("\n" if following else "") + text[end:]
    return Edit(manifest_path, text, after, f"{runner} depends on {name} (call --native runs it)")


def _register_plugin(root: Path, name: str) -> Optional[Edit]:
    """``name`` in wasmforge.toml's [plugin] crates when that list is set (else every cdylib crate is in it)."""
    path = root / CONFIG_FILE
    text = tomlfile.read_text(path, ScaffoldError)
    plugin = tomlfile.parse(text, path, ScaffoldError).get("plugin")
    if not (isinstance(plugin, dict) and isinstance(plugin.get("crates"), list)):
        return None
    after = _append_to_list(text, "plugin", "crates", name)
    if after is None:
        raise ScaffoldError(f"{path}: cannot find the [plugin] crates list to add {name!r} to; add it by hand")
    return Edit(path, text, after, f"added {name} to [plugin] crates")


def _append_to_list(text: str, table: str, key: str, value: str) -> Optional[str]:
    """``text`` with ``"value"`` appended to the list ``key = [...]`` in ``[table]``; None if it is not there."""
    header = re.search(rf"^\[{re.escape(table)}\][ \t]*(#.*)?$", text, re.MULTILINE)
    if header is None:
        return None
    following = re.search(r"^\s*\[[^\]\"]*\][ \t]*(#.*)?$", text[header.end():], re.MULTILINE)
    end = header.end() + following.start() if following else len(text)
    found = re.search(rf"^{re.escape(key)}\s*=\s*\[(?P<items>[^\]]*)\]", text[header.end():end], re.MULTILINE)
    if found is None:
        return None
    start = header.end() + found.start("items")
    items = found.group("items")
    body = items.rstrip()
    tail = items[len(body):]
    quoted = f'"{value}"'
    if not body.strip():
        body, tail = quoted, ""
    elif "\n" in body:  # one item per line: the new one on a line of its own, indented as the others
        indent = re.search(r"\n([ \t]*)\S", body)
        comma = "," if body.endswith(",") else ""
        body = f"{body}{'' if comma else ','}\n{indent.group(1) if indent else '    '}{quoted}{comma}"
    else:
        body = f"{body} {quoted}" if body.endswith(",") else f"{body}, {quoted}"
    return text[:start] + body + tail + text[start + len(items):]


def _apply(edits: list[Edit], write_crate: Callable[[], None]) -> None:
    """Edits each file in place (a whole new file, renamed over it), then writes the crate; undoes it all on failure."""
    done: list[Edit] = []
    try:
        for edit in edits:
            _replace(edit.path, edit.after)
            done.append(edit)
        write_crate()
    except BaseException as error:
        for edit in reversed(done):
            try:
                _replace(edit.path, edit.before)
            except OSError:
                pass
        if isinstance(error, OSError):
            raise ScaffoldError(f"could not write {getattr(error, 'filename', None) or 'a file'}: "
                                f"{error.strerror or error}; nothing was changed") from error
        raise


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.wasmforge-add")
    with open(temporary, "x", encoding="utf-8") as handle:
        handle.write(text)
    try:
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
