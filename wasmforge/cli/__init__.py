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
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, Sequence, TextIO

from ._json import json_fields, json_line
from ._text import format_bytes
from ._version import __version__
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, WasmforgeError

if TYPE_CHECKING:
    from .abi.signature import Signature
    from .workspace.build import BuildResult
    from .workspace.workspace import Workspace

log = logging.getLogger("wasmforge")


class _ArgumentsRejected(Exception):
    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line and exit 2, not usage + message."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentsRejected(self.prog, message)

    def _print_message(self, message: str, file: Any = None) -> None:
        # argparse's own swallows write errors: --help into a full stdout would exit 0 having printed nothing.
        if message:
            (file or sys.stderr).write(message)


class Output:
    """Where the CLI writes: results to stdout, messages to stderr, colour only on a terminal."""

    def __init__(self, quiet: bool = False, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None) -> None:
        self.quiet = quiet
        # The streams of the moment, not of import time: main() may have put them back first.
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        #: How many results were printed: a failing --json command with none yet prints its error as JSON.
        self.results = 0
        self.color = self.stderr.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def result(self, text: str, end: str = "\n") -> None:
        """A command's answer: always printed, even with -q."""
        try:
            self.stdout.write(text + end)
            self.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise _ResultLost(error) from None
        self.results += 1

    def result_bytes(self, data: bytes) -> None:
        """A binary answer, as it is (its repr where stdout takes only text)."""
        binary = getattr(self.stdout, "buffer", None)
        if binary is None:
            self.result(repr(data))
            return
        try:
            self.stdout.flush()
            binary.write(data)
            binary.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise _ResultLost(error) from None
        self.results += 1

    def info(self, text: str) -> None:
        if not self.quiet:
            self.raw_stderr(text + "\n")

    def success(self, text: str) -> None:
        self.info(self._paint(text, "32"))

    def error(self, text: str) -> None:
        self.raw_stderr(f"{self._paint('error', '1;31')}: {text}\n")

    def raw_stderr(self, text: str) -> None:
        try:
            self.stderr.write(text)
            self.stderr.flush()
        except OSError:
            pass  # stderr itself is full or gone: there is nowhere left to say so

    def clear_screen(self) -> None:
        """Clears the terminal (and its scrollback) where results go; nothing when that is no terminal."""
        if self.stdout.isatty():
            self.stdout.write("\033[H\033[2J\033[3J")
            self.stdout.flush()


class _ResultLost(Exception):
    """stdout would not take a result (its disk is full, or it is /dev/full)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


# ---- commands ----------------------------------------------------------------------------


def cmd_new(args: argparse.Namespace, out: Output) -> int:
    from .errors import UsageError
    from .workspace.scaffold import available_templates, describe_template, new_workspace, next_steps

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


def _workspace(args: argparse.Namespace, **overrides: Any) -> "Workspace":
    """The workspace -C (or the current directory) is in, with the command's overrides: made once per command."""
    from .workspace.workspace import Workspace

    return Workspace.find(args.cwd, overrides)


def _optional_workspace(args: argparse.Namespace, **overrides: Any) -> "Optional[Workspace]":
    """The workspace, if there is one: its [limits] apply to plugins named by path too."""
    from .errors import WorkspaceNotFound

    try:
        return _workspace(args, **overrides)
    except WorkspaceNotFound:
        return None


def _workspace_for_plugins(args: argparse.Namespace) -> "Workspace":
    """The workspace whose plugins `call`, `inspect` or `chain` build; UsageError saying how to do without one."""
    from .errors import UsageError, WorkspaceNotFound

    try:
        return _workspace(args, profile="release" if getattr(args, "release", False) else None)
    except WorkspaceNotFound as error:
        raise UsageError(f"{error}; or {_WITHOUT_WORKSPACE[args.command]}") from error


def _run_build(out: Output, workspace: "Workspace", crates: Sequence[str], stream: bool,
               prove: bool = False) -> "BuildResult":
    """Builds, showing cargo's output as it comes when ``stream``; ``prove``: and checks each .wasm compiles
    (`call`, `inspect` and `chain` load what they build, which proves it anyway)."""
    from .runtime.compiled import compiled_file
    from .limits import Limits

    # An older rustc than the one on PATH: say so once cargo starts, above what it prints.
    pending = [note for note in [workspace.toolchain.choice_note()] if note and stream]

    def show(line: str) -> None:
        while pending:
            out.info(pending.pop())
        out.raw_stderr(line)

    result = workspace.build(crates, on_diagnostic=show if stream else None, color=stream and out.color)
    while pending:
        out.info(pending.pop())
    for artifact in result.artifacts if prove else ():
        compiled_file(artifact.path.absolute(), artifact.path.read_bytes(), str(artifact.path), Limits())
    return result


def cmd_build(args: argparse.Namespace, out: Output) -> int:
    from .errors import BuildError

    workspace = _workspace(args, profile="release" if args.release else None, target=args.target,
                           offline=args.offline or None)
    if not args.json:
        result = _run_build(out, workspace, args.package or (), stream=not out.quiet, prove=True)
        for artifact in result.artifacts if not out.quiet else ():
            out.result(
                f"built {artifact.crate}: {_shown_path(artifact.path, args.cwd)} "
                f"({format_bytes(artifact.size, fixed_point=True)}) in {result.seconds:.2f} s"
            )
        return EXIT_OK
    try:
        result = _run_build(out, workspace, args.package or (), stream=False, prove=True)
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


#: How each command works outside a workspace, for the error that says there is none.
_WITHOUT_WORKSPACE = {
    "call": "name a .wasm with --plugin PATH",
    "inspect": "name a .wasm: `wasmforge inspect PATH`",
    "chain": "name a folder of .wasm files with --dir DIR",
}


def _existing_file(args: argparse.Namespace, given: str, what: str) -> Path:
    """A path from the command line, relative to -C; a usage error unless it is a file."""
    from .errors import UsageError

    path = Path(given) if Path(given).is_absolute() else args.cwd / given
    try:
        if not path.exists():
            if what == "plugin" and path.suffix == ".wasm":
                from .abi.wasmfile import build_command_for

                raise UsageError(f"no {what} at {given}: no such file; build it with `{build_command_for(path)}`")
            raise UsageError(f"no {what} at {given}: no such file")
        if path.is_dir():
            raise UsageError(f"{given} is a directory; name the .wasm file in it")
        if not path.is_file():  # a FIFO or a device: reading it would hang or never end
            from ._files import describe_kind

            raise UsageError(f"{given} is {describe_kind(path.stat().st_mode)}, not a file; name a .wasm file")
    except OSError as error:  # a directory on the way that may not be searched
        raise UsageError(f"cannot reach the {what} {given}: {error.strerror} ({error.filename})") from None
    return path


def _why_not_a_directory(path: Path) -> str:
    return "not a directory" if path.exists() else "no such directory"


def _plugin_paths(args: argparse.Namespace, out: Output, workspace: "Optional[Workspace]" = None) -> "tuple[list[Path], Optional[Workspace]]":
    """--plugin PATH if given, else the workspace's plugin(s), freshly built (like `cargo run`); and the workspace."""
    from .errors import UsageError

    plugin = getattr(args, "plugin", None)
    if plugin:
        for flag, given in (("-p", getattr(args, "package", None)), ("--release", getattr(args, "release", False))):
            if given:
                raise UsageError(f"--plugin names the .wasm to load; {flag} chooses what to build in a workspace: use one or the other")
        return [_existing_file(args, plugin, "plugin")], workspace
    workspace = workspace or _workspace_for_plugins(args)
    result = _run_build(out, workspace, getattr(args, "package", None) or (), stream=args.verbose > 0)
    return [artifact.path for artifact in result.artifacts], workspace


def _load_options(args: argparse.Namespace, workspace: "Optional[Workspace]") -> dict[str, Any]:
    """Sandbox options for `load`: the workspace's [limits] (wasmforge.toml), overridden by flags."""
    options = dict(workspace.settings.limit_options()) if workspace is not None else {}
    flags = {"timeout": args.timeout, "memory_limit": args.memory_limit, "fuel": args.fuel}
    options.update({option: value for option, value in flags.items() if value is not None})
    if getattr(args, "sha256", None):
        options["sha256"] = args.sha256
    options.update(_host_options(args))
    return options


def _host_options(args: argparse.Namespace) -> dict[str, Any]:
    """``host_functions=`` from --host-functions MODULE:ATTRIBUTE, imported once (from -C's directory)."""
    spec = getattr(args, "host_functions", None)
    if not spec:
        return {}
    if not hasattr(args, "host_functions_loaded"):
        args.host_functions_loaded = import_host_functions(spec, args.cwd)
    return {"host_functions": args.host_functions_loaded}


def import_host_functions(spec: str, directory: "os.PathLike[str]") -> dict[str, Callable[..., Any]]:
    """The host functions named by ``MODULE:ATTRIBUTE`` (as uvicorn and pytest name objects).

    ``MODULE`` is imported with ``directory`` first on ``sys.path`` (it stays there, so the
    functions' own imports keep working); ``ATTRIBUTE`` may be dotted, and names a mapping,
    a :class:`HostFunctions` registry or a list of functions.
    """
    module_name, _, attribute = spec.partition(":")
    import importlib

    from .errors import ArgumentError, UsageError
    from .runtime.imports import normalize_host_functions

    if not module_name or not attribute or not all(part.isidentifier() for part in attribute.split(".")):
        raise UsageError(f"--host-functions {spec}: expected MODULE:ATTRIBUTE, e.g. host:functions")
    folder = os.fspath(directory)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"--host-functions {spec}: cannot import {module_name} from {folder}: {error}") from None
    except Exception as error:  # noqa: BLE001 - the user's module ran and failed: say so in one line
        raise UsageError(f"--host-functions {spec}: importing {module_name} raised {type(error).__name__}: {error}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"--host-functions {spec}: {module_name} has no attribute {attribute}") from None
    try:
        return normalize_host_functions(target)
    except ArgumentError as error:
        raise UsageError(f"--host-functions {spec}: {error}") from error


def _plugin_exporting(paths: Sequence[Path], function: Optional[str], options: Optional[dict[str, Any]] = None) -> Path:
    """Of several plugins, the one that exports ``function``."""
    from .errors import UnknownFunctionError, UsageError
    from .runtime.plugin import load

    if len(paths) == 1 or function is None:
        return paths[0]
    having = []
    for path in paths:
        with load(path, **(options or {})) as plugin:
            if function in plugin.exports:
                having.append(path)
    if len(having) == 1:
        return having[0]
    names = ", ".join(p.name for p in (having or paths))
    if having:
        raise UsageError(f"{function} is exported by {names}; choose one with -p CRATE or --plugin PATH")
    raise UnknownFunctionError(f"none of the workspace's plugins ({names}) has a function {function!r}")


def cmd_call(args: argparse.Namespace, out: Output) -> int:
    from .errors import UsageError
    from .runtime.plugin import load

    if args.native:
        return _call_native(args)
    paths, workspace = _plugin_paths(args, out)
    if args.list:
        return _list_exports(args, out, paths, workspace)
    if not args.function:
        raise UsageError("name the function to call, e.g. `wasmforge call add 1 2`, or list them with --list")
    from .abi.arguments import parse_cli_argument

    chosen = _plugin_exporting(paths, args.function, _host_options(args))
    options = _load_options(args, workspace if workspace is not None else _optional_workspace(args))
    with load(chosen, **options) as plugin:
        function = plugin.function(args.function)
        values = [parse_cli_argument(function.signature, i, a) for i, a in enumerate(args.args)]
        value = function(*values)
        if args.json:
            out.result(json_line({"ok": True, "function": args.function, **json_fields("result", value)}))
        elif function.signature.returns != "()":
            _print_value(out, value)
    return EXIT_OK


def _list_exports(args: argparse.Namespace, out: Output, paths: Sequence[Path], workspace: "Optional[Workspace]") -> int:
    """`call --list`: each plugin's typed functions; with several plugins, grouped under each one's name."""
    from .runtime.plugin import load

    listed = []
    options = _load_options(args, workspace if workspace is not None else _optional_workspace(args))
    for path in paths:
        with load(path, **options) as plugin:
            listed.append((plugin.name, list(plugin.exports.values())))
    if args.json:
        if len(listed) == 1:
            out.result(json_line([s.to_json() for s in listed[0][1]]))
        else:
            out.result(json_line([{"plugin": name, "exports": [s.to_json() for s in signatures]}
                                   for name, signatures in listed]))
        return EXIT_OK
    for index, (name, signatures) in enumerate(listed):
        if len(listed) > 1:
            out.result(f"{'' if index == 0 else chr(10)}{name}:")
        for signature in signatures:
            out.result(f"  {signature}" if len(listed) > 1 else str(signature))
    return EXIT_OK


def _call_native(args: argparse.Namespace) -> int:
    """`call --native`: the same call through the runner crate, compiled for this machine."""
    from .errors import EXIT_FAILED, UsageError

    if args.plugin:
        raise UsageError("--native runs the workspace's runner crate; it cannot call a --plugin file")
    ignored = [flag for flag, given in (("--json", args.json), ("--sha256", args.sha256), ("--timeout", args.timeout),
                                        ("--memory-limit", args.memory_limit), ("--fuel", args.fuel),
                                        ("--host-functions", args.host_functions)) if given]
    if ignored:
        raise UsageError(f"--native runs the plugin as native code, where {', '.join(ignored)} cannot apply; "
                         "drop --native to call the .wasm")
    if args.list:
        words: list[str] = []  # the runner lists its functions when given none
    elif args.function:
        words = [args.function, *args.args]
    else:
        raise UsageError("name the function to call, e.g. `wasmforge call --native add 1 2`, or --list")
    workspace = _workspace(args, profile="release" if args.release else None)
    crate = (args.package or [None])[0]
    return EXIT_OK if workspace.run_native(words, crate=crate) == 0 else EXIT_FAILED


def cmd_chain(args: argparse.Namespace, out: Output) -> int:
    from .abi.arguments import parse_stdin_value
    from .runtime.chain import load_dir, load_paths
    from .errors import UsageError

    if args.mdbook and args.function == "supports" and len(args.extra) == 1:
        raise UsageError("--mdbook needs the function to run before it: "
                         "command = \"wasmforge chain preprocess --mdbook\" in book.toml")
    if args.extra and not (args.mdbook and args.extra[0] == "supports"):
        raise UsageError(f"unexpected argument(s) {' '.join(args.extra)}; chain reads its input from stdin")
    if args.mdbook and args.extra:
        from ._mdbook import check_supports

        check_supports(args.extra)
        return EXIT_OK  # the chain works on any renderer's book; anything else is checked when the book runs
    workspace = _optional_workspace(args, profile="release" if args.release else None)
    options = _load_options(args, workspace)
    if args.dir:
        folder = Path(args.dir) if Path(args.dir).is_absolute() else args.cwd / args.dir
        if not folder.is_dir():
            raise UsageError(f"--dir {args.dir}: {_why_not_a_directory(folder)}")
        chain = load_dir(folder, **options)
    else:
        built, _ = _plugin_paths(args, out, workspace)
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
            from ._mdbook import parse_input

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
            _print_value(out, result, newline=False)
    return EXIT_OK


def _argument_bytes(flag: str, text: str) -> bytes:
    """A command-line value as UTF-8; bytes that were not UTF-8 in argv are a usage error, not a traceback."""
    from .errors import UsageError

    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        at = len(text[:error.start].encode("utf-8", "surrogateescape"))
        raise UsageError(f"{flag} is not UTF-8 text (at byte {at}); pipe such input in on stdin instead") from None


def cmd_inspect(args: argparse.Namespace, out: Output) -> int:
    from .runtime.inspection import inspect_plugin

    from .errors import UsageError

    if args.target and (args.package or args.release):
        flag = "-p" if args.package else "--release"
        raise UsageError(f"PLUGIN names the .wasm to inspect; {flag} chooses what to build in a workspace: use one or the other")
    paths = [_existing_file(args, args.target, "plugin")] if args.target else _plugin_paths(args, out)[0]
    host = _host_options(args).get("host_functions")
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
            out.result(f"  {export['signature']}  [{export['abi']}]")
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


def _print_value(out: Output, value: Any, newline: bool = True) -> None:
    if isinstance(value, str):
        if newline or not value.endswith("\n"):
            out.result(value if newline else value.rstrip("\n"))
        else:
            out.result(value, end="")
    elif isinstance(value, (bytes, bytearray)):
        out.result_bytes(bytes(value))
    elif value is None:
        out.result("null")  # an Option's None; a function returning () prints nothing (its callers skip this)
    else:
        out.result(json.dumps(value, ensure_ascii=False))


def cmd_test(args: argparse.Namespace, out: Output) -> int:
    from .errors import EXIT_FAILED
    workspace = _workspace(args, profile="release" if args.release else None)
    workspace.check_crates()
    echo = (lambda line: None) if out.quiet else out.raw_stderr
    results = []
    if not args.python_only:
        out.info("== cargo test (native) ==")
        results.append(workspace.run_cargo_tests(echo))
    if not args.rust_only:
        out.info("== pytest ==")
        results.append(workspace.run_pytest(echo, args.pytest_args))
    ok = all(r.ok for r in results)
    if args.json:
        out.result(json_line({"ok": ok, "suites": [r.to_json() for r in results]}))
    else:
        for result in results:
            out.result(result.summary())
    return EXIT_OK if ok else EXIT_FAILED


def cmd_watch(args: argparse.Namespace, out: Output) -> int:
    """Serves the plugin and rebuilds and reloads it on every save until Ctrl-C or SIGTERM.

    However it is stopped (while starting, building or idle; SIGINT or SIGTERM, once or again while
    stopping), it ends the same way: cargo killed, "stopped watching", exit 130.
    """
    hot: Any = None
    printer: Any = None
    stopping = threading.Event()

    def interrupt(signum: int, frame: Any) -> None:
        # The first SIGINT or SIGTERM stops watching; more while it stops are ignored, so that
        # killing cargo always runs to its end.
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # `watch &` from a script: SIGINT stays ignored
                previous[signum] = signal.signal(signum, interrupt)
    try:
        # Everything inside: importing wasmtime alone takes a few hundred ms, and Ctrl-C then is Ctrl-C too.
        from ._watch_output import CliCall, WatchPrinter
        from .devloop.hot import HotPlugin
        from .errors import UsageError

        if args.clear and args.json:
            raise UsageError("--clear clears the screen between the lines of text output; --json prints events: use one")
        if args.exec is not None and len(args.exec) > 1:
            raise UsageError("give --exec once; to run several commands, join them: --exec 'cmd1 && cmd2'")
        if args.exec is not None and not args.exec[0].strip():
            raise UsageError("--exec needs a command, e.g. --exec 'pytest -q'")
        settings = _workspace(
            args, profile="release" if args.release else None, debounce_ms=args.debounce, poll=args.poll or None,
            timeout=args.timeout, memory_limit=args.memory_limit, fuel=args.fuel, check_timeout=args.check_timeout,
        ).settings
        checks = [CliCall.parse(text) for text in args.call or ()]
        command = args.exec[0] if args.exec else None
        printer = WatchPrinter(out, settings.root, as_json=args.json, verbose=args.verbose > 0, clear=args.clear,
                               exec_command=command)
        hot = HotPlugin.from_workspace(
            settings.root, settings=settings, crate=args.package, check=checks or None, on_event=printer, wait=False,
            exec_command=command, exec_output=_stderr_fd(out) if command is not None else None, **_host_options(args),
        )
        hot.wait_closed()
        return EXIT_OK
    except KeyboardInterrupt:
        stopping.set()
        if printer is not None:
            printer.closing.set()
        if hot is not None:
            hot.close()  # kills a running cargo and waits for it, and stops a running --exec
        out.info("stopped watching")
        return EXIT_INTERRUPTED
    finally:
        if hot is not None:
            hot.close()
        for signum, handler in previous.items():  # only once closed: a late signal is still ignored
            signal.signal(signum, handler)


def cmd_doctor(args: argparse.Namespace, out: Output) -> int:
    from .workspace.doctor import diagnose
    from .errors import EXIT_FAILED

    report = diagnose(offline=args.offline)
    if args.json:
        out.result(json_line(report.to_json()))
        return EXIT_OK if report.ok else EXIT_FAILED
    width = max(len(c.name) for c in report.checks)
    for check in report.checks:
        if check.warning:
            mark = out._paint("warn", "33")
        elif check.ok:
            mark = out._paint("ok  ", "32")
        else:
            mark = out._paint("MISSING" if check.required else "absent ", "31" if check.required else "33")
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


def _milliseconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of milliseconds, got {text!r}")
    return int(text)


def _stderr_fd(out: Output) -> Optional[int]:
    """Where commands we start write: our stderr (stdout carries results), or nowhere if it has no descriptor."""
    try:
        return out.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL


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
    "inspect": "example: wasmforge inspect target/wasm32-unknown-unknown/debug/my_plugin_plugin.wasm",
    "chain": "example: wasmforge chain preprocess < chapter.md > out.md",
    "test": "example: wasmforge test -- -k stats",
    "watch": "examples: wasmforge watch --call 'add 1 2' | wasmforge watch --json --release",
}


#: Commands whose --json output on failure is `{"ok": false, "error": {...}}` (docs/CLI.md). build has its own
#: (`"error"` is a string there, with cargo's diagnostics beside it); watch's output is events.
_JSON_ERRORS = ("call", "chain", "inspect", "test")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wasmforge",
        description="Write WebAssembly plugins in Rust and run them inside Python.",
        epilog="Exit codes: 0 ok, 1 failed (build error, plugin error), 2 usage error, 3 toolchain missing, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"wasmforge {__version__}")
    _global_flags(parser, defaults=True)
    # The same flags after the command (`wasmforge build -q`); given there, they win.
    after_command = _Parser(add_help=False)
    _global_flags(after_command, defaults=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, handler: Callable[[argparse.Namespace, Output], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=_EXAMPLES.get(name),
                                  parents=[after_command])
        sub.set_defaults(handler=handler)
        return sub

    new = command("new", cmd_new, "create a plugin workspace (plugin, macro and runner crates)")
    new.add_argument("name", nargs="?", metavar="NAME", help="workspace and crate name prefix, e.g. my-plugin")
    new.add_argument("--list-templates", action="store_true", help="list the templates and what each makes")
    new.add_argument("--path", metavar="DIR", help="create the workspace in DIR instead of ./NAME")
    new.add_argument("--dry-run", action="store_true", help="list the files that would be written, write nothing")
    registry = new.add_mutually_exclusive_group()
    registry.add_argument("--offline", action="store_true",
                          help="take crates from Debian's registry (writes .cargo/config.toml); "
                               "the default where wasmforge builds from it")
    registry.add_argument("--online", action="store_true",
                          help="leave .cargo/config.toml out: plain cargo takes crates from crates.io")
    new.add_argument("--template", default="default", metavar="NAME|DIR",
                     help="a template from --list-templates, or your own template directory (default: default)")

    build = command("build", cmd_build, "compile the workspace's plugin crate(s) to .wasm")
    build.add_argument("--release", action="store_true", help="optimised build")
    build.add_argument("-p", "--package", action="append", metavar="CRATE", help="build this crate (repeatable)")
    build.add_argument("--target", choices=("wasm32-unknown-unknown", "wasm32-wasi", "wasm32-wasip1"), help="wasm target (wasm32-wasi and wasm32-wasip1 are one target)")
    build.add_argument("--offline", action="store_true", help="take crates from Debian's registry")
    build.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    call = command("call", cmd_call, "call a plugin function and print the result")
    call.add_argument("function", nargs="?", metavar="FUNC", help="the export to call")
    call.add_argument("args", nargs="*", default=[], metavar="ARGS", help="arguments: JSON values where they parse, else strings")
    call.add_argument("--plugin", metavar="PATH", help="the .wasm to load (default: build and use the workspace's plugin)")
    call.add_argument("--list", action="store_true", help="list the plugin's functions and signatures")
    call.add_argument("--native", action="store_true",
                      help="call it natively through the runner crate (cargo run -p NAME-runner), to compare with wasm")
    call.add_argument("-p", "--package", action="append", metavar="CRATE", help="the plugin crate, in a workspace with several")
    call.add_argument("--release", action="store_true", help="use the release build")
    call.add_argument("--json", action="store_true", help="print the result as one JSON object")
    call.add_argument("--sha256", metavar="HEX", help="refuse the plugin unless its sha256 is HEX")
    _limit_flags(call)
    _host_flag(call)

    inspect = command("inspect", cmd_inspect, "show a plugin's typed exports, host functions, imports and memory")
    inspect.add_argument("target", nargs="?", metavar="PLUGIN", help="a .wasm file (default: build and inspect the workspace's plugins)")
    inspect.add_argument("-p", "--package", action="append", metavar="CRATE", help="in a workspace: this plugin crate")
    inspect.add_argument("--release", action="store_true", help="in a workspace: build and inspect the release build")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    _host_flag(inspect)

    chain = command("chain", cmd_chain, "pass stdin through FUNC of every plugin in turn and print the result")
    chain.add_argument("function", metavar="FUNC", help="the function each plugin applies, e.g. preprocess")
    chain.add_argument("--dir", metavar="DIR", help="chain every .wasm in DIR in file-name order (default: the workspace's plugins, by crate name)")
    chain.add_argument("--input", metavar="TEXT", help="use TEXT instead of reading stdin")
    chain.add_argument("--release", action="store_true", help="use release builds")
    chain.add_argument("extra", nargs="*", default=[], help=argparse.SUPPRESS)
    chain.add_argument("--json", action="store_true", help="print one JSON object")
    chain.add_argument("--mdbook", action="store_true",
                       help="speak mdBook's preprocessor protocol: answer `supports`, read [context, book], write the book")
    _limit_flags(chain)
    _host_flag(chain)

    test = command("test", cmd_test, "run the plugin crates' cargo tests natively, then pytest in the workspace")
    test.add_argument("pytest_args", nargs="*", default=[], metavar="PYTEST_ARGS", help="passed to pytest (after --)")
    test.add_argument("--release", action="store_true", help="test release builds")
    only = test.add_mutually_exclusive_group()
    only.add_argument("--rust-only", action="store_true", help="only cargo test")
    only.add_argument("--python-only", action="store_true", help="only pytest")
    test.add_argument("--json", action="store_true", help="print one JSON object with each runner's counts")

    watch = command("watch", cmd_watch, "rebuild the plugin on every save and hot-reload it, checked first")
    watch.add_argument("--release", action="store_true", help="build and serve the release profile")
    watch.add_argument("--call", action="append", metavar="'FUNC ARGS...'",
                       help="call this on each new version before it goes live; print the result (repeatable: "
                            "all run, in order, and each must pass)")
    watch.add_argument("--check-timeout", type=_check_seconds, metavar="SECONDS",
                       help="time limit for each --call on a new version (default 5, [watch] check_timeout)")
    watch.add_argument("--exec", action="append", metavar="CMD",
                       help="run this shell command after each new version goes live, e.g. 'pytest -q'; "
                            "the build after it never waits for it")
    watch.add_argument("--clear", action="store_true", help="clear the screen before each cycle's output")
    watch.add_argument("--json", action="store_true", help="print NDJSON events instead of one line per cycle")
    watch.add_argument("--poll", action="store_true", help="poll for changes instead of native file events")
    watch.add_argument("--debounce", type=_milliseconds, metavar="MS", help="quiet time after a save before building (default 50)")
    watch.add_argument("-p", "--package", metavar="CRATE", help="the plugin crate to watch (default: the first in [plugin] crates)")
    _limit_flags(watch)
    _host_flag(watch)

    doctor = command("doctor", cmd_doctor, "report the Rust toolchain, wasm targets, linker and crate source")
    doctor.add_argument("--offline", action="store_true", help="check Debian's registry even for a rustup toolchain")
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _global_flags(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """-C, -q and -v. Without ``defaults`` an absent flag sets nothing, so the top level's value stays."""
    unset: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument("-C", dest="directory", metavar="DIR", help="run as if started in DIR", **unset)
    parser.add_argument("-q", "--quiet", action="store_true", help="print only results and errors", **unset)
    parser.add_argument("-v", "--verbose", action="count", help="say more (repeat for debug logs)",
                        **({"default": 0} if defaults else unset))


def _describe_error(error: WasmforgeError) -> str:
    """The one line for an error: a plugin's own Err text gets the function's name in front."""
    from .errors import PluginError

    if isinstance(error, PluginError) and error.function:
        return f"{error.function}() returned an error: {error}"
    return str(error)


def error_json(error: BaseException) -> dict[str, Any]:
    """An error for --json output: ``type`` (the exception's class) and ``message``, then what it knows.

    A plugin's error also names ``plugin`` and ``function``; a panic has
    ``panic_message``, ``file``, ``line`` and ``column`` (null where the panic
    hook could not say); a trap its ``trap_code``; a build error cargo's ``diagnostics``.
    """
    from .errors import BuildError, PluginCallError, PluginPanic, PluginTrap

    found: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, PluginCallError):
        found.update(plugin=error.plugin, function=error.function)
    if isinstance(error, PluginPanic):
        found.update(panic_message=error.panic_message, file=error.file, line=error.line, column=error.column)
    if isinstance(error, PluginTrap):
        found["trap_code"] = error.trap_code
    if isinstance(error, BuildError):
        found["diagnostics"] = error.diagnostics
    return found


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _check_seconds(text: str) -> float:
    """--check-timeout: a positive number of seconds up to a year (inf is said here, not blamed on wasmforge.toml)."""
    from .limits import MAX_TIMEOUT

    value = _positive_float(text)
    if not value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text!r} is more than a year ({MAX_TIMEOUT:.0f} s)")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _size(text: str) -> int:
    from .errors import OptionError
    from .limits import parse_size

    try:
        return parse_size(text, "memory limit") or 0
    except OptionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _limit_flags(parser: argparse.ArgumentParser) -> None:
    """The sandbox flags; they override [limits] in wasmforge.toml."""
    parser.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="time limit per call")
    parser.add_argument("--memory-limit", type=_size, metavar="SIZE", help="linear memory cap, e.g. 64MiB (default 1GiB)")
    parser.add_argument("--fuel", type=_positive_int, metavar="N", help="fuel budget per call (about N instructions)")


def _host_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host-functions", metavar="MODULE:ATTR",
                        help="the plugin's host functions: a mapping, HostFunctions registry or list of functions "
                             "in a Python module (imported from the current directory), e.g. host:functions")


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
            raise _ArgumentsRejected(prog, f"unrecognized arguments: {' '.join(extras)}")
    except _ArgumentsRejected as rejected:
        out.error(f"{rejected} (see `{rejected.prog} --help`)")
        return EXIT_USAGE
    except SystemExit as exit_:  # --help and --version, which argparse has written to stdout
        try:
            sys.stdout.flush()
        except OSError as error:
            return _result_lost(out, error)
        return int(exit_.code or 0)
    except OSError as error:  # --help or --version into a full stdout
        return _result_lost(out, error)
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
    try:
        _quiet_wasmtime_log(args.verbose)
        return int(args.handler(args, out))
    except WasmforgeError as error:
        if getattr(args, "json", False) and args.command in _JSON_ERRORS and not out.results:
            out.result(json_line({"ok": False, "error": error_json(error)}, default=str))
        out.error(_describe_error(error))
        return error.exit_code
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `wasmforge call ... | head`: the reader left; that is not our failure.
        _stdout_to_devnull()
        return EXIT_OK
    except _ResultLost as lost:
        return _result_lost(out, lost.error)
    except OSError as error:
        # The system refused something no check foresaw (a file that may not be read, a full disk): one line.
        where = f" ({error.filename})" if error.filename else ""
        out.error(f"{error.strerror or error}{where}")
        return EXIT_FAILED


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


def _stdout_to_devnull() -> None:
    """After a failed write, so that Python's own flush at exit does not fail again with a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _result_lost(out: Output, error: OSError) -> int:
    """stdout would not take the result (a full disk, /dev/full): one line, exit 1."""
    if isinstance(error, BrokenPipeError):
        _stdout_to_devnull()
        return EXIT_OK
    _stdout_to_devnull()
    out.error(f"could not write the result to stdout: {error.strerror or error}")
    return EXIT_FAILED


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
            return None, flag + _why_not_a_directory(path)
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
