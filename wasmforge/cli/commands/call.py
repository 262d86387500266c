"""`wasmforge call`: call a plugin function (built in the workspace, or named by path) and print the result."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from ..._json import json_fields, json_line
from ...errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from ..output import Output, print_value
from ..plugins import command_workspace, host_options, load_options, optional_workspace, plugin_exporting, plugin_paths

if TYPE_CHECKING:
    from ...workspace.workspace import Workspace


def run(args: argparse.Namespace, out: Output) -> int:
    from ...runtime.plugin import load

    if args.native:
        return _call_native(args)
    paths, workspace = plugin_paths(args, out)
    if args.list:
        return _list_exports(args, out, paths, workspace)
    if not args.function:
        raise UsageError("name the function to call, e.g. `wasmforge call add 1 2`, or list them with --list")
    from ...abi.arguments import parse_cli_argument

    chosen = plugin_exporting(paths, args.function, host_options(args))
    options = load_options(args, workspace if workspace is not None else optional_workspace(args))
    with load(chosen, **options) as plugin:
        function = plugin.function(args.function)
        values = [parse_cli_argument(function.signature, i, a) for i, a in enumerate(args.args)]
        value = function(*values)
        if args.json:
            out.result(json_line({"ok": True, "function": args.function, **json_fields("result", value)}))
        elif function.signature.returns != "()":
            print_value(out, value)
    return EXIT_OK


def _list_exports(args: argparse.Namespace, out: Output, paths: Sequence[Path], workspace: "Optional[Workspace]") -> int:
    """`call --list`: each plugin's typed functions; with several plugins, grouped under each one's name."""
    from ...runtime.plugin import load

    listed = []
    options = load_options(args, workspace if workspace is not None else optional_workspace(args))
    for path in paths:
        with load(path, **options) as plugin:
            listed.append((plugin.name, list(plugin.exports.values())))
    if args.json:
        if len(listed) == 1:
            out.result(json_line([s.to_json() for s in listed[0][1]]))
        else:
            out.result(json_line([{"plugin": name, "exports": [s.to_json() for s in signatures]}
                                   for name, signatures in listed]))
        return EXIT_OK
    for index, (name, signatures) in enumerate(listed):
        if len(listed) > 1:
            out.result(f"{'' if index == 0 else chr(10)}{name}:")
        for signature in signatures:
            out.result(f"  {signature}" if len(listed) > 1 else str(signature))
    return EXIT_OK


def _call_native(args: argparse.Namespace) -> int:
    """`call --native`: the same call through the runner crate, compiled for this machine."""
    if args.plugin:
        raise UsageError("--native runs the workspace's runner crate; it cannot call a --plugin file")
    ignored = [flag for flag, given in (("--json", args.json), ("--sha256", args.sha256), ("--timeout", args.timeout),
                                        ("--memory-limit", args.memory_limit), ("--fuel", args.fuel),
                                        ("--host-functions", args.host_functions),
                                        ("--target", args.wasm_target)) if given]
    if ignored:
        raise UsageError(f"--native runs the plugin as native code, where {', '.join(ignored)} cannot apply; "
                         "drop --native to call the .wasm")
    if args.list:
        words: list[str] = []  # the runner lists its functions when given none
    elif args.function:
        words = [args.function, *args.args]
    else:
        raise UsageError("name the function to call, e.g. `wasmforge call --native add 1 2`, or --list")
    workspace = command_workspace(args)
    if args.package and len(args.package) > 1:
        raise UsageError(f"--native calls one plugin crate; got -p {' -p '.join(args.package)}")
    crate = (args.package or [None])[0]
    status = workspace.run_native(words, crate=crate)
    # The runner exits 2 for a call that could not start (no such plugin or function, an ambiguous one), as we do.
    return EXIT_OK if status == 0 else EXIT_USAGE if status == EXIT_USAGE else EXIT_FAILED
