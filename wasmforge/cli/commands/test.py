"""`wasmforge test`: the plugin crates' cargo tests, natively, then pytest in the workspace."""

from __future__ import annotations

import argparse

from ..._json import json_line
from ...errors import EXIT_FAILED, EXIT_OK
from ..output import Output
from ..plugins import command_workspace


def run(args: argparse.Namespace, out: Output) -> int:
    workspace = command_workspace(args)
    workspace.check_crates(args.package or ())
    echo = (lambda line: None) if out.quiet else out.raw_stderr
    results = []
    if not args.python_only:
        out.info("== cargo test (native) ==")
        results.append(workspace.run_cargo_tests(echo, args.package or ()))
    if not args.rust_only:
        out.info("== pytest ==")
        profile = "release" if args.release else "debug" if args.debug else None
        results.append(workspace.run_pytest(echo, args.pytest_args, profile=profile))
    ok = all(r.ok for r in results)
    if args.json:
        out.result(json_line({"ok": ok, "suites": [r.to_json() for r in results]}))
    else:
        for result in results:
            out.result(result.summary())
    return EXIT_OK if ok else EXIT_FAILED
