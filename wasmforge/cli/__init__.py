"""The `wasmforge` command: parses arguments, calls the library, prints results.

This is the one place that prints and picks exit codes: every command
(wasmforge.cli.commands) returns an exit code or raises a WasmforgeError, and
:func:`main` has errors.py turn the error into one line on stderr and the
error's exit code (table in docs/CLI.md). Nothing outside this package
imports it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..errors import EXIT_USAGE
from .errors import result_lost, run_reported
from .output import Output
from .parser import ArgumentsRejected, build_parser
from .plugins import why_not_a_directory

log = logging.getLogger("wasmforge")


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="wasmforge: %(message)s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; returns the exit code."""
    stdout_closed = _fill_closed_standard_streams()
    parser = build_parser()
    out = Output()
    if stdout_closed:
        out.error("stdout is closed, so results would be lost; send them to /dev/null instead (>/dev/null)")
        return EXIT_USAGE
    try:
        args, extras = parser.parse_known_args(argv)
        if extras and getattr(args, "command", None) == "chain":
            # argparse gives trailing words after an option to no positional; chain checks them itself.
            args.extra, extras = [*args.extra, *extras], []
        if extras:
            prog = f"wasmforge {args.command}" if getattr(args, "command", None) else "wasmforge"
            raise ArgumentsRejected(prog, f"unrecognized arguments: {' '.join(extras)}")
    except ArgumentsRejected as rejected:
        out.error(f"{rejected} (see `{rejected.prog} --help`)")
        return EXIT_USAGE
    except SystemExit as exit_:  # --help and --version, which argparse has written to stdout
        try:
            sys.stdout.flush()
        except OSError as error:
            return result_lost(out, error)
        return int(exit_.code or 0)
    except OSError as error:  # --help or --version into a full stdout
        return result_lost(out, error)
    out.quiet = args.quiet
    _configure_logging(args.verbose, args.quiet)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    cwd, problem = _working_directory(args.directory)
    if problem and not _mdbook_question(args):
        out.error(problem)
        return EXIT_USAGE
    args.cwd = cwd

    def run() -> int:
        _quiet_wasmtime_log(args.verbose)
        command = importlib.import_module(f".commands.{args.command}", __name__)
        return int(command.run(args, out))

    return run_reported(run, args, out)


def _fill_closed_standard_streams() -> bool:
    """Puts /dev/null on closed file descriptors 0-2, so that no file opened later takes their
    numbers (and cargo, inheriting them, never writes into it); True if stdout was closed."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if 2 in closed and sys.stderr is None:
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    return 1 in closed


def _working_directory(directory: Optional[str]) -> tuple[Optional[Path], Optional[str]]:
    """The directory to work in (the current one, or -C's) and, if it cannot be used, why."""
    if directory is not None and os.path.isabs(directory):
        path = Path(directory)
    else:
        try:
            base = Path.cwd()
        except OSError as error:
            return None, (f"the current directory cannot be used ({error.strerror}; was it deleted?): "
                          "cd to one that exists, or pass -C with an absolute path")
        path = base / directory if directory else base
    flag = f"-C {directory}: " if directory else "the current directory: "
    try:
        if not path.is_dir():
            return None, flag + why_not_a_directory(path)
        path = path.resolve()
    except OSError as error:  # a directory on the way that may not be searched
        return None, f"{flag}cannot reach it ({error.strerror})"
    if not os.access(path, os.R_OK | os.X_OK):
        return None, f"{flag}permission denied: you may not read it"
    return path, None


def _mdbook_question(args: argparse.Namespace) -> bool:
    """`chain FUNC --mdbook supports RENDERER`: answered whatever the directory, because mdBook quietly skips
    a preprocessor that says no, and a problem then surfaces when mdBook runs the book and fails the build."""
    return bool(args.command == "chain" and args.mdbook and args.extra[:1] == ["supports"])


def _quiet_wasmtime_log(verbose: int) -> None:
    """Keeps wasmtime's own log quiet whatever RUST_LOG says (mdBook users often set RUST_LOG=debug);
    -vv lets it through.

    wasmtime sets up its logger from RUST_LOG once, when the process makes its first engine:
    making that engine with RUST_LOG hidden settles the question for the whole process."""
    if verbose > 1 or "RUST_LOG" not in os.environ:
        return
    import wasmtime

    saved = os.environ.pop("RUST_LOG")
    try:
        wasmtime.Engine()
    finally:
        os.environ["RUST_LOG"] = saved
