"""`wasmforge add`: a plugin crate added to the workspace, and registered where the workspace needs it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ...errors import EXIT_OK
from ..output import Output


def run(args: argparse.Namespace, out: Output) -> int:
    from ...workspace.adding import add_plugin
    from ...workspace.settings import find_workspace

    root = find_workspace(args.cwd)
    destination = Path(args.path) if args.path else None
    if destination is not None and not destination.is_absolute():
        destination = args.cwd / destination
    added = add_plugin(root, args.name, template=args.template, destination=destination, cwd=args.cwd,
                       dry_run=args.dry_run)
    shown = os.path.relpath(added.destination, args.cwd)
    if shown.startswith(".."):
        shown = str(added.destination)
    if args.dry_run:
        out.result(f"would create {added.destination} with:")
        for planned in added.files:
            out.result(f"  {planned.relative.as_posix()}  ({len(planned.content)} bytes)")
        for edit in added.edits:
            out.result(f"would change {edit.path}: {edit.what}")
        return EXIT_OK
    out.success(f"added plugin crate {added.name!r} in {shown} ({len(added.files)} files)")
    for edit in added.edits:
        out.info(f"{os.path.relpath(edit.path, args.cwd)}: {edit.what}")
    out.info(f"next:\n  wasmforge build -p {added.name}\n  wasmforge call -p {added.name} --list")
    return EXIT_OK
