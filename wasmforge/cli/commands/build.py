"""`wasmforge build`: the plugin crates for wasm, each .wasm with its size, or one JSON object."""

from __future__ import annotations

import argparse

from ..._json import json_line
from ..._text import format_bytes
from ...errors import BuildError, EXIT_OK, UsageError
from ..output import Output, shown_path
from ...workspace.build import copy_artifacts, prepare_out_dir
from ..plugins import command_workspace, run_build


def run(args: argparse.Namespace, out: Output) -> int:
    out_dir = getattr(args, "out_dir", None)
    if out_dir is not None and not out_dir.strip():
        raise UsageError("--out-dir needs a directory, got an empty name")
    if out_dir is not None:
        prepare_out_dir(args.cwd / out_dir)  # a bad directory fails before the build, not after
    # Artifacts copied out are for shipping: the release build, unless asked otherwise.
    workspace = command_workspace(args, profile="release" if out_dir and not args.debug else None,
                                  offline=args.offline or None)
    if not args.json:
        result = run_build(out, workspace, args.package or (), stream=not out.quiet, prove=True)
        copies = copy_artifacts(result.artifacts, args.cwd / out_dir) if out_dir else ()
        for artifact in result.artifacts if not out.quiet else ():
            out.result(
                f"built {artifact.crate}: {shown_path(artifact.path, args.cwd)} "
                f"({format_bytes(artifact.size, fixed_point=True)}) in {result.seconds:.2f} s"
            )
        for artifact in result.artifacts if not out.quiet else ():
            if artifact.size_before_wasm_opt is not None:
                out.result(f"wasm-opt {artifact.crate}: {format_bytes(artifact.size_before_wasm_opt, fixed_point=True)}"
                           f" -> {format_bytes(artifact.size, fixed_point=True)} "
                           f"({_change(artifact.size_before_wasm_opt, artifact.size)})")
        for copy in copies if not out.quiet else ():
            out.result(f"copied {copy.crate}: {shown_path(copy.path, args.cwd)}")
        return EXIT_OK
    try:
        result = run_build(out, workspace, args.package or (), stream=False, prove=True)
    except BuildError as error:
        out.result(json_line({"ok": False, "error": str(error), "diagnostics": error.diagnostics}))
        return error.exit_code
    copies = copy_artifacts(result.artifacts, args.cwd / out_dir) if out_dir else ()
    out.result(json_line({
        "ok": True,
        "seconds": round(result.seconds, 3),
        "profile": result.profile,
        "target": result.target,
        "warnings": result.warnings,
        "artifacts": [
            {"crate": a.crate, "path": str(a.path), "size": a.size, "fresh": a.fresh,
             **({"size_before_wasm_opt": a.size_before_wasm_opt} if a.size_before_wasm_opt is not None else {})}
            for a in result.artifacts
        ],
        "diagnostics": result.diagnostics,
        **({"copied": [{"crate": c.crate, "path": str(c.path)} for c in copies]} if out_dir else {}),
    }))
    return EXIT_OK


def _change(before: int, after: int) -> str:
    return f"{(after - before) * 100 / before:+.0f}%" if before else "no change"
