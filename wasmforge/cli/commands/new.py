"""`wasmforge new`: scaffold a workspace from a template."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ...errors import EXIT_OK, UsageError
from ..output import Output


def run(args: argparse.Namespace, out: Output) -> int:
    from ...workspace.scaffold import available_templates, describe_template, new_workspace, next_steps

    if args.list_templates:
        for name in available_templates():
            out.result(f"{name:<10} {describe_template(name)}")
        return EXIT_OK
    if args.name is None:
        raise UsageError("name the workspace, e.g. `wasmforge new my-plugin`, or see --list-templates")

    destination = Path(args.path) if args.path else None
    offline = True if args.offline else False if args.online else None
    scaffold = new_workspace(
        args.name, destination, template=args.template, offline=offline, dry_run=args.dry_run, cwd=args.cwd
    )
    if args.dry_run:
        out.result(f"would create {scaffold.destination} with:")
        for planned in scaffold.files:
            out.result(f"  {planned.relative.as_posix()}  ({len(planned.content)} bytes)")
        return EXIT_OK
    out.success(f"created workspace {scaffold.name!r} in {scaffold.destination} ({len(scaffold.files)} files)")
    if scaffold.offline:
        opt_out = "" if args.offline else "; `new --online` leaves it out"
        out.info("plain cargo and editors take crates from Debian's registry too, as `wasmforge build` does "
                 f"(.cargo/config.toml{opt_out})")
    for note in scaffold.notes:
        out.info(f"note: {note}")
    shown = os.path.relpath(scaffold.destination, args.cwd)
    if shown.startswith(".."):
        shown = str(scaffold.destination)
    steps = "".join(f"\n  {step}" for step in next_steps(args.template, args.cwd))
    out.info(f"next:\n  cd {shown}{steps}")
    crates = scaffold.registry_dependencies()
    if crates and not os.environ.get("CARGO_TARGET_DIR"):
        out.info(f"tip: its first build compiles {', '.join(crates)} and what they need; to compile them once for "
                 "all your workspaces, set target_dir in wasmforge.toml (or CARGO_TARGET_DIR) to one directory")
    return EXIT_OK
