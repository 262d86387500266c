"""The `wasmforge` command: parses arguments, calls the library, prints results.

This is the one place that prints and picks exit codes: every handler returns
an exit code or raises a WasmforgeError, and :func:`main` turns the error into
one line on stderr and the error's exit code (table in docs/CLI.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, Sequence, TextIO

from ._version import __version__
from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, WasmforgeError

if TYPE_CHECKING:
    from .abi import Signature
    from .build import BuildResult
    from .config import Settings

log = logging.getLogger("wasmforge")


class _ArgumentsRejected(Exception):
    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line and exit 2, not usage + message."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentsRejected(self.prog, message)


class Output:
    """Where the CLI writes: results to stdout, messages to stderr, colour only on a terminal."""

    def __init__(self, quiet: bool = False, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> None:
        self.quiet = quiet
        self.stdout = stdout
        self.stderr = stderr
        self.color = stderr.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def result(self, text: str) -> None:
        """A command's answer: always printed, even with -q."""
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def info(self, text: str) -> None:
        if not self.quiet:
            self.stderr.write(text + "\n")
            self.stderr.flush()

    def success(self, text: str) -> None:
        self.info(self._paint(text, "32"))

    def error(self, text: str) -> None:
        self.stderr.write(f"{self._paint('error', '1;31')}: {text}\n")
        self.stderr.flush()

    def raw_stderr(self, text: str) -> None:
        self.stderr.write(text)
        self.stderr.flush()


# ---- commands ----------------------------------------------------------------------------


def cmd_new(args: argparse.Namespace, out: Output) -> int:
    from .scaffold import new_workspace

    destination = Path(args.path) if args.path else None
    scaffold = new_workspace(
        args.name, destination, template=args.template, offline=args.offline, dry_run=args.dry_run, cwd=args.cwd
    )
    if args.dry_run:
        out.result(f"would create {scaffold.destination} with:")
        for planned in scaffold.files:
            out.result(f"  {planned.relative.as_posix()}  ({len(planned.content)} bytes)")
        return EXIT_OK
    out.success(f"created workspace {scaffold.name!r} in {scaffold.destination} ({len(scaffold.files)} files)")
    shown = os.path.relpath(scaffold.destination, args.cwd)
    out.info(f"next:\n  cd {shown}\n  wasmforge build\n  wasmforge call add 1 2")
    return EXIT_OK


def _settings(args: argparse.Namespace, **overrides: Any) -> "Settings":
    from .config import find_workspace, load_settings

    root = find_workspace(args.cwd)
    return load_settings(root, overrides)


def _run_build(args: argparse.Namespace, out: Output, settings: "Settings", crates: Sequence[str], stream: bool) -> "BuildResult":
    from .build import build
    from .host import compile_module

    result = build(settings, crates, on_diagnostic=out.raw_stderr if stream else None, color=stream and out.color)
    for artifact in result.artifacts:
        compile_module(artifact.path.read_bytes(), str(artifact.path))  # proves it loads
    return result


def cmd_build(args: argparse.Namespace, out: Output) -> int:
    from .errors import BuildError

    settings = _settings(args, profile="release" if args.release else None, target=args.target, offline=args.offline or None)
    if not args.json:
        result = _run_build(args, out, settings, args.package or (), stream=not out.quiet)
        for artifact in result.artifacts:
            out.result(
                f"built {artifact.crate}: {_shown_path(artifact.path, args.cwd)} "
                f"({_human_size(artifact.size)}) in {result.seconds:.2f} s"
            )
        return EXIT_OK
    try:
        result = _run_build(args, out, settings, args.package or (), stream=False)
    except BuildError as error:
        out.result(json.dumps({"ok": False, "error": str(error), "diagnostics": error.diagnostics}))
        return error.exit_code
    out.result(json.dumps({
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


def cmd_call(args: argparse.Namespace, out: Output) -> int:
    from .errors import UsageError
    from .host import load

    if args.plugin:
        path = Path(args.plugin) if Path(args.plugin).is_absolute() else args.cwd / args.plugin
    else:
        try:
            settings = _settings(args, profile="release" if args.release else None)
        except WasmforgeError as error:
            raise UsageError(f"{error}; or name a .wasm with --plugin PATH") from None
        result = _run_build(args, out, settings, (), stream=args.verbose > 0)
        path = result.artifacts[0].path
    with load(path) as plugin:
        if args.list:
            signatures = list(plugin.exports.values())
            if args.json:
                out.result(json.dumps([s.to_json() for s in signatures]))
            else:
                for signature in signatures:
                    out.result(str(signature))
            return EXIT_OK
        if not args.function:
            raise UsageError("name the function to call, e.g. `wasmforge call add 1 2`, or list them with --list")
        function = plugin.function(args.function)
        values = [parse_cli_argument(function.signature, i, a) for i, a in enumerate(args.args)]
        value = function(*values)
        if args.json:
            out.result(json.dumps({"function": args.function, **_json_result(value)}))
        else:
            _print_value(out, value)
    return EXIT_OK


def parse_cli_argument(signature: "Signature", index: int, text: str) -> Any:
    """A command-line argument as the Python value the parameter wants."""
    from .abi import _BYTES_TYPES, _TEXT_TYPES

    param = signature.params[index] if index < len(signature.params) else None
    if param is not None and param.type in _TEXT_TYPES:
        return text
    if param is not None and param.type in _BYTES_TYPES:
        return text.encode("utf-8")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _json_result(value: Any) -> dict[str, Any]:
    if isinstance(value, (bytes, bytearray)):
        import base64

        return {"result": base64.b64encode(value).decode("ascii"), "encoding": "base64"}
    return {"result": value}


def _print_value(out: Output, value: Any) -> None:
    if isinstance(value, str):
        out.result(value)
    elif isinstance(value, (bytes, bytearray)):
        out.stdout.flush()
        sys.stdout.buffer.write(bytes(value)) if out.stdout is sys.stdout else out.result(repr(value))
        if out.stdout is sys.stdout:
            sys.stdout.buffer.flush()
    elif value is None:
        pass
    else:
        out.result(json.dumps(value))


def cmd_watch(args: argparse.Namespace, out: Output) -> int:
    """Serves the plugin and rebuilds and reloads it on every save until Ctrl-C."""
    from ._watch_output import CliCall, WatchPrinter
    from .hot import HotPlugin

    settings = _settings(
        args, profile="release" if args.release else None, debounce_ms=args.debounce, poll=args.poll or None
    )
    check = CliCall.parse(args.call) if args.call is not None else None
    printer = WatchPrinter(out, settings.root, as_json=args.json, call=check)
    hot: Optional[HotPlugin] = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        hot = HotPlugin.from_workspace(
            settings.root, settings=settings, crate=args.package, check=check, on_event=printer, wait=False
        )
        hot.wait_closed()
        return EXIT_OK
    except KeyboardInterrupt:
        printer.closing.set()
        if hot is not None:
            hot.close()  # kills a running cargo and waits for it
        out.info("stopped watching")
        return EXIT_INTERRUPTED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        if hot is not None:
            hot.close()


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops `watch` the way Ctrl-C does."""
    raise KeyboardInterrupt


def cmd_doctor(args: argparse.Namespace, out: Output) -> int:
    from .doctor import diagnose
    from .errors import EXIT_FAILED

    report = diagnose(offline=args.offline)
    if args.json:
        out.result(json.dumps(report.to_json()))
        return EXIT_OK if report.ok else EXIT_FAILED
    width = max(len(c.name) for c in report.checks)
    for check in report.checks:
        mark = out._paint("ok  ", "32") if check.ok else out._paint("MISSING" if check.required else "absent ", "31" if check.required else "33")
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


# ---- helpers -----------------------------------------------------------------------------


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _milliseconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of milliseconds, got {text!r}")
    return int(text)


def _shown_path(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


# ---- parser ------------------------------------------------------------------------------

_EXAMPLES = {
    "new": "example: wasmforge new my-plugin && cd my-plugin && wasmforge build",
    "build": "example: wasmforge build --release --json",
    "call": "examples: wasmforge call add 1 2 | wasmforge call length hello | wasmforge call --plugin x.wasm --list",
    "doctor": "example: wasmforge doctor --json",
    "watch": "examples: wasmforge watch --call 'add 1 2' | wasmforge watch --json --release",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wasmforge",
        description="Write WebAssembly plugins in Rust and run them inside Python.",
        epilog="Exit codes: 0 ok, 1 failed (build error, plugin error), 2 usage error, 3 toolchain missing, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"wasmforge {__version__}")
    parser.add_argument("-C", dest="directory", metavar="DIR", help="run as if started in DIR")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more (repeat for debug logs)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, handler: Callable[[argparse.Namespace, Output], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=_EXAMPLES.get(name))
        sub.set_defaults(handler=handler)
        return sub

    new = command("new", cmd_new, "create a plugin workspace (plugin, macro and runner crates)")
    new.add_argument("name", metavar="NAME", help="workspace and crate name prefix, e.g. my-plugin")
    new.add_argument("--path", metavar="DIR", help="create the workspace in DIR instead of ./NAME")
    new.add_argument("--dry-run", action="store_true", help="list the files that would be written, write nothing")
    new.add_argument("--offline", action="store_true", help="take crates from Debian's registry (writes .cargo/config.toml)")
    new.add_argument("--template", default="default", help="template name or directory (default: default)")

    build = command("build", cmd_build, "compile the workspace's plugin crate(s) to .wasm")
    build.add_argument("--release", action="store_true", help="optimised build")
    build.add_argument("-p", "--package", action="append", metavar="CRATE", help="build this crate (repeatable)")
    build.add_argument("--target", choices=("wasm32-unknown-unknown", "wasm32-wasi"), help="wasm target")
    build.add_argument("--offline", action="store_true", help="take crates from Debian's registry")
    build.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    call = command("call", cmd_call, "call a plugin function and print the result")
    call.add_argument("function", nargs="?", metavar="FUNC", help="the export to call")
    call.add_argument("args", nargs="*", metavar="ARGS", help="arguments: JSON values where they parse, else strings")
    call.add_argument("--plugin", metavar="PATH", help="the .wasm to load (default: build and use the workspace's plugin)")
    call.add_argument("--list", action="store_true", help="list the plugin's functions and signatures")
    call.add_argument("--release", action="store_true", help="use the release build")
    call.add_argument("--json", action="store_true", help="print the result as one JSON object")

    watch = command("watch", cmd_watch, "rebuild the plugin on every save and hot-reload it, checked first")
    watch.add_argument("--release", action="store_true", help="build and serve the release profile")
    watch.add_argument("--call", metavar="'FUNC ARGS...'", help="call this on each new version before it goes live; print the result")
    watch.add_argument("--json", action="store_true", help="print NDJSON events instead of one line per cycle")
    watch.add_argument("--poll", action="store_true", help="poll for changes instead of native file events")
    watch.add_argument("--debounce", type=_milliseconds, metavar="MS", help="quiet time after a save before building (default 50)")
    watch.add_argument("-p", "--package", metavar="CRATE", help="the plugin crate to watch (default: the first in [plugin] crates)")

    doctor = command("doctor", cmd_doctor, "report the Rust toolchain, wasm targets, linker and crate source")
    doctor.add_argument("--offline", action="store_true", help="check Debian's registry even for a rustup toolchain")
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="wasmforge: %(message)s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; returns the exit code."""
    parser = build_parser()
    out = Output()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            prog = f"wasmforge {args.command}" if getattr(args, "command", None) else "wasmforge"
            raise _ArgumentsRejected(prog, f"unrecognized arguments: {' '.join(extras)}")
    except _ArgumentsRejected as rejected:
        out.error(f"{rejected} (see `{rejected.prog} --help`)")
        return EXIT_USAGE
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    out.quiet = args.quiet
    _configure_logging(args.verbose, args.quiet)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    base = Path.cwd()
    args.cwd = (base / args.directory).resolve() if args.directory else base
    if not args.cwd.is_dir():
        out.error(f"-C {args.directory}: no such directory")
        return EXIT_USAGE
    try:
        return int(args.handler(args, out))
    except WasmforgeError as error:
        out.error(str(error))
        return error.exit_code
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `wasmforge call ... | head`: the reader left; that is not our failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
