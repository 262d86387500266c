"""`wasmforge inspect`: what a .wasm offers and needs, without running it."""

from __future__ import annotations

import argparse
from typing import Any

from ..._json import json_line
from ..._text import format_bytes
from ...errors import EXIT_OK, UsageError
from ..output import Output
from ..plugins import build_flag_given, existing_file, host_options, plugin_paths


def run(args: argparse.Namespace, out: Output) -> int:
    from ...runtime.inspection import inspect_plugin

    given = [flag for flag, value in build_flag_given(args) if value]
    if args.target and given:
        flag = given[0]
        raise UsageError(f"PLUGIN names the .wasm to inspect; {flag} chooses what to build in a workspace: use one or the other")
    paths = [existing_file(args, args.target, "plugin")] if args.target else plugin_paths(args, out)[0]
    host = host_options(args).get("host_functions")
    reports = [inspect_plugin(path, host) for path in paths]
    if args.json:
        out.result(json_line(reports[0] if len(reports) == 1 else reports))
        return EXIT_OK
    for index, report in enumerate(reports):
        if index:
            out.result("")
        out.result(f"{report['file']}  {format_bytes(report['size'], fixed_point=True)}  sha256 {report['sha256'][:16]}…")
        version = report["wire_version"]
        out.result(f"wire contract: v{version}" if version else "wire contract: none (plain wasm: numeric exports, call_raw)")
        out.result(f"memory: {report['memory']}")
        out.result(f"wasi: {'yes' if report['wasi'] else 'no'}")
        out.result("exports:")
        for export in report["exports"]:
            wire = f", {export['wire']}" if "wire" in export else ""
            out.result(f"  {export['signature']}  [{export['abi']}{wire}]")
        if report["types"]:
            out.result("types (#[plugin_type]):")
            for recorded in report["types"]:
                out.result(f"  {recorded['description']}")
        if len(report["memories"]) > 1:
            out.result("memories: " + ", ".join(f"{m['name']} ({m['kind']}: {m['type']})" for m in report["memories"]))
        if report["host_functions"]:
            out.result("host functions (imported from Python):")
            for imported in report["host_functions"]:
                out.result(f"  {imported['signature']}{_provided_mark(imported)}")
        if report["imports"]:
            out.result("other imports:")
            for imported in report["imports"]:
                out.result(f"  {imported['module']}.{imported['name']}  {imported['kind']} "
                           f"{imported['type']}{_provided_mark(imported)}")
    return EXIT_OK


def _provided_mark(imported: dict[str, Any]) -> str:
    """" (missing)" for an import --host-functions does not supply; nothing without --host-functions."""
    return " (missing)" if imported.get("provided") is False else ""
