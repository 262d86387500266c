"""What `call`, `inspect` and `chain` work on: the workspace's plugins, freshly built, or files named by path.

Each command makes one :class:`~wasmforge.workspace.workspace.Workspace`
(:func:`command_workspace`) and passes it down: the build, the plugin's
``[limits]`` and the load all come from the same settings.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ..errors import ArgumentError, UnknownFunctionError, UsageError, WorkspaceNotFound
from .output import Output

if TYPE_CHECKING:
    from ..workspace.build import BuildResult
    from ..workspace.workspace import Workspace


def command_workspace(args: argparse.Namespace, **overrides: Any) -> "Workspace":
    """The workspace -C (or the current directory) is in, with the build flags and the command's overrides:
    made once per command."""
    from ..workspace.workspace import Workspace

    return Workspace.find(args.cwd, {**build_overrides(args), **{k: v for k, v in overrides.items() if v is not None}})


def build_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The build flags every building command takes, as the settings they override (none given: none)."""
    profile = "release" if getattr(args, "release", False) else "debug" if getattr(args, "debug", False) else None
    features = None
    if getattr(args, "features", None):
        features = [name for given in args.features for name in given.replace(",", " ").split()]
    given = {"profile": profile, "target": getattr(args, "wasm_target", None), "features": features,
             "no_default_features": getattr(args, "no_default_features", None)}
    return {key: value for key, value in given.items() if value is not None}


def optional_workspace(args: argparse.Namespace, **overrides: Any) -> "Optional[Workspace]":
    """The workspace, if there is one: its [limits] apply to plugins named by path too."""
    try:
        return command_workspace(args, **overrides)
    except WorkspaceNotFound:
        return None


#: How each command works outside a workspace, for the error that says there is none.
WITHOUT_WORKSPACE = {
    "call": "name a .wasm with --plugin PATH",
    "inspect": "name a .wasm: `wasmforge inspect PATH`",
    "chain": "name a folder of .wasm files with --dir DIR",
}


def workspace_for_plugins(args: argparse.Namespace) -> "Workspace":
    """The workspace whose plugins `call`, `inspect` or `chain` build; UsageError saying how to do without one."""
    try:
        return command_workspace(args)
    except WorkspaceNotFound as error:
        raise UsageError(f"{error}; or {WITHOUT_WORKSPACE[args.command]}") from error


def run_build(out: Output, workspace: "Workspace", crates: Sequence[str], stream: bool,
               prove: bool = False) -> "BuildResult":
    """Builds, showing cargo's output as it comes when ``stream``; ``prove``: and checks each .wasm compiles
    (`call`, `inspect` and `chain` load what they build, which proves it anyway)."""
    from ..runtime.compiled import compiled_file
    from ..limits import Limits

    # An older rustc than the one on PATH: say so once cargo starts, above what it prints.
    pending = [note for note in [workspace.toolchain.choice_note()] if note and stream]

    def show(line: str) -> None:
        while pending:
            out.info(pending.pop())
        out.raw_stderr(line)

    result = workspace.build(crates, on_diagnostic=show if stream else None, color=stream and out.color)
    while pending:
        out.info(pending.pop())
    for artifact in result.artifacts if prove else ():
        compiled_file(artifact.path.absolute(), artifact.path.read_bytes(), str(artifact.path), Limits())
    return result


def existing_file(args: argparse.Namespace, given: str, what: str) -> Path:
    """A path from the command line, relative to -C; a usage error unless it is a file."""
    path = Path(given) if Path(given).is_absolute() else args.cwd / given
    try:
        if not path.exists():
            if what == "plugin" and path.suffix == ".wasm":
                from ..abi.wasmfile import build_command_for

                raise UsageError(f"no {what} at {given}: no such file; build it with `{build_command_for(path)}`")
            raise UsageError(f"no {what} at {given}: no such file")
        if path.is_dir():
            raise UsageError(f"{given} is a directory; name the .wasm file in it")
        if not path.is_file():  # a FIFO or a device: reading it would hang or never end
            from .._files import describe_kind

            raise UsageError(f"{given} is {describe_kind(path.stat().st_mode)}, not a file; name a .wasm file")
    except OSError as error:  # a directory on the way that may not be searched
        raise UsageError(f"cannot reach the {what} {given}: {error.strerror} ({error.filename})") from None
    return path


def why_not_a_directory(path: Path) -> str:
    return "not a directory" if path.exists() else "no such directory"


def plugin_paths(args: argparse.Namespace, out: Output, workspace: "Optional[Workspace]" = None) -> "tuple[list[Path], Optional[Workspace]]":
    """--plugin PATH if given, else the workspace's plugin(s), freshly built (like `cargo run`); and the workspace."""
    plugin = getattr(args, "plugin", None)
    if plugin:
        for flag, given in build_flag_given(args):
            if given:
                raise UsageError(f"--plugin names the .wasm to load; {flag} chooses what to build in a workspace: use one or the other")
        return [existing_file(args, plugin, "plugin")], workspace
    workspace = workspace or workspace_for_plugins(args)
    result = run_build(out, workspace, getattr(args, "package", None) or (), stream=args.verbose > 0)
    return [artifact.path for artifact in result.artifacts], workspace


def build_flag_given(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """Each build flag and what was given for it: they choose what to build, which a .wasm named by path is not."""
    return [("-p", getattr(args, "package", None)), ("--release", getattr(args, "release", False)),
            ("--debug", getattr(args, "debug", False)), ("--target", getattr(args, "wasm_target", None)),
            ("--features", getattr(args, "features", None)),
            ("--no-default-features", getattr(args, "no_default_features", None))]


def load_options(args: argparse.Namespace, workspace: "Optional[Workspace]") -> dict[str, Any]:
    """Sandbox options for `load`: the workspace's [limits] (wasmforge.toml), overridden by flags."""
    options = dict(workspace.settings.limit_options()) if workspace is not None else {}
    flags = {"timeout": args.timeout, "memory_limit": args.memory_limit, "fuel": args.fuel}
    options.update({option: value for option, value in flags.items() if value is not None})
    if getattr(args, "sha256", None):
        options["sha256"] = args.sha256
    options.update(host_options(args))
    return options


def host_options(args: argparse.Namespace) -> dict[str, Any]:
    """``host_functions=`` from --host-functions MODULE:ATTRIBUTE, imported once (from -C's directory)."""
    spec = getattr(args, "host_functions", None)
    if not spec:
        return {}
    if not hasattr(args, "host_functions_loaded"):
        args.host_functions_loaded = import_host_functions(spec, args.cwd)
    return {"host_functions": args.host_functions_loaded}


def import_host_functions(spec: str, directory: "os.PathLike[str]") -> dict[str, Callable[..., Any]]:
    """The host functions named by ``MODULE:ATTRIBUTE`` (as uvicorn and pytest name objects).

    ``MODULE`` is imported with ``directory`` first on ``sys.path`` (it stays there, so the
    functions' own imports keep working); ``ATTRIBUTE`` may be dotted, and names a mapping,
    a :class:`HostFunctions` registry or a list of functions.
    """
    module_name, _, attribute = spec.partition(":")
    import importlib

    from ..runtime.imports import normalize_host_functions

    if not module_name or not attribute or not all(part.isidentifier() for part in attribute.split(".")):
        raise UsageError(f"--host-functions {spec}: expected MODULE:ATTRIBUTE, e.g. host:functions")
    folder = os.fspath(directory)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"--host-functions {spec}: cannot import {module_name} from {folder}: {error}") from None
    except Exception as error:  # noqa: BLE001 - the user's module ran and failed: say so in one line
        raise UsageError(f"--host-functions {spec}: importing {module_name} raised {type(error).__name__}: {error}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"--host-functions {spec}: {module_name} has no attribute {attribute}") from None
    try:
        return normalize_host_functions(target)
    except ArgumentError as error:
        raise UsageError(f"--host-functions {spec}: {error}") from error


def plugin_exporting(paths: Sequence[Path], function: Optional[str], options: Optional[dict[str, Any]] = None) -> Path:
    """Of several plugins, the one that exports ``function``."""
    from ..runtime.plugin import load

    if len(paths) == 1 or function is None:
        return paths[0]
    having = []
    for path in paths:
        with load(path, **(options or {})) as plugin:
            if function in plugin.exports:
                having.append(path)
    if len(having) == 1:
        return having[0]
    names = ", ".join(p.name for p in (having or paths))
    if having:
        raise UsageError(f"{function} is exported by {names}; choose one with -p CRATE or --plugin PATH")
    raise UnknownFunctionError(f"none of the workspace's plugins ({names}) has a function {function!r}")
