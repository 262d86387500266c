"""`wasmforge chain`: stdin through FUNC of every plugin in turn, like mdBook preprocessors (and as one, with --mdbook)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..._json import json_fields, json_line
from ...errors import EXIT_OK, UsageError
from ..output import Output, print_value
from ..plugins import load_options, optional_workspace, plugin_paths, why_not_a_directory


def run(args: argparse.Namespace, out: Output) -> int:
    from ...abi.arguments import parse_stdin_value
    from ...runtime.chain import load_dir, load_paths
    if args.mdbook and args.function == "supports" and len(args.extra) == 1:
        raise UsageError("--mdbook needs the function to run before it: "
                         "command = \"wasmforge chain preprocess --mdbook\" in book.toml")
    if args.extra and not (args.mdbook and args.extra[0] == "supports"):
        raise UsageError(f"unexpected argument(s) {' '.join(args.extra)}; chain reads its input from stdin")
    if args.mdbook and args.extra:
        from ..mdbook import check_supports

        check_supports(args.extra)
        return EXIT_OK  # the chain works on any renderer's book; anything else is checked when the book runs
    workspace = optional_workspace(args)
    options = load_options(args, workspace)
    if args.dir:
        folder = Path(args.dir) if Path(args.dir).is_absolute() else args.cwd / args.dir
        if not folder.is_dir():
            raise UsageError(f"--dir {args.dir}: {why_not_a_directory(folder)}")
        chain = load_dir(folder, **options)
    else:
        built, _ = plugin_paths(args, out, workspace)
        paths: list[Path] = sorted(built, key=lambda path: path.name)
        chain = load_paths(paths, **options)
    with chain:
        if args.input is not None:
            raw = _argument_bytes("--input", args.input)
        elif sys.stdin is None or sys.stdin.isatty():
            raise UsageError(f"pipe the input in, e.g. `wasmforge chain {args.function} < book.md`, or pass --input TEXT")
        else:
            raw = sys.stdin.buffer.read()
        chain.check(args.function)
        if args.mdbook:
            from ..mdbook import parse_input

            given = parse_input(raw, getattr(args, "argv", ()))
            result = chain.call(args.function, given.book, context=given.context)
        else:
            result = chain.call(args.function, parse_stdin_value(chain.plugins[0].exports[args.function], raw))
        if args.mdbook:
            out.result(json.dumps(result, ensure_ascii=False, separators=(",", ":")))
        elif args.json:
            out.result(json_line({"ok": True, "function": args.function, "steps": [p.name for p in chain],
                                  **json_fields("result", result)}))
        else:
            print_value(out, result, newline=False)
    return EXIT_OK


def _argument_bytes(flag: str, text: str) -> bytes:
    """A command-line value as UTF-8; bytes that were not UTF-8 in argv are a usage error, not a traceback."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        at = len(text[:error.start].encode("utf-8", "surrogateescape"))
        raise UsageError(f"{flag} is not UTF-8 text (at byte {at}); pipe such input in on stdin instead") from None
