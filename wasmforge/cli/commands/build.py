"""`wasmforge build`: the plugin crates for wasm, each .wasm with its size, or one JSON object."""

from __future__ import annotations

import argparse

from ..._json import json_line
from ..._text import format_bytes
from ...errors import BuildError, EXIT_OK
from ..output import Output, shown_path
from ..plugins import command_workspace, run_build


def run(args: argparse.Namespace, out: Output) -> int:
    workspace = command_workspace(args, offline=args.offline or None)
    if not args.json:
        result = run_build(out, workspace, args.package or (), stream=not out.quiet, prove=True)
        for artifact in result.artifacts if not out.quiet else ():
            out.result(
                f"built {artifact.crate}: {shown_path(artifact.path, args.cwd)} "
                f"({format_bytes(artifact.size, fixed_point=True)}) in {result.seconds:.2f} s"
            )
        return EXIT_OK
    try:
        result = run_build(out, workspace, args.package or (), stream=False, prove=True)
    except BuildError as error:
        out.result(json_line({"ok": False, "error": str(error), "diagnostics": error.diagnostics}))
        return error.exit_code
    out.result(json_line({
        "ok": True,
        "seconds": round(result.seconds, 3),
        "profile": result.profile,
        "target": result.target,
        "warnings": result.warnings,
        "artifacts": [
            {"crate": a.crate, "path": str(a.path), "size": a.size, "fresh": a.fresh} for a in result.artifacts
        ],
        "diagnostics": result.diagnostics,
    }))
    return EXIT_OK
