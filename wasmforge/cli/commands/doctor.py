"""`wasmforge doctor`: the toolchain, the wasm targets, the linker and where crates come from, with the fix for each."""

from __future__ import annotations

import argparse

from ..._json import json_line
from ...errors import EXIT_FAILED, EXIT_OK
from ..output import Output


def run(args: argparse.Namespace, out: Output) -> int:
    from ...workspace.doctor import diagnose

    report = diagnose(offline=args.offline)
    if args.json:
        out.result(json_line(report.to_json()))
        return EXIT_OK if report.ok else EXIT_FAILED
    width = max(len(c.name) for c in report.checks)
    for check in report.checks:
        if check.warning:
            mark = out.paint("warn", "33")
        elif check.ok:
            mark = out.paint("ok  ", "32")
        else:
            mark = out.paint("MISSING" if check.required else "absent ", "31" if check.required else "33")
        out.result(f"{mark.ljust(4)} {check.name.ljust(width)}  {check.detail}")
        if check.fix:
            out.result(f"     {' ' * width}  fix: {check.fix}")
    for line in report.tried:
        out.result(f"tried {line}")
    if report.ok:
        out.result("builds for wasm32-unknown-unknown can work here")
        return EXIT_OK
    out.result("builds for wasm32-unknown-unknown cannot work yet: apply the fixes above")
    return EXIT_FAILED
