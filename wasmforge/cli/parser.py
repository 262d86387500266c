"""The command line's grammar: every command and flag, and what a bad argument says.

Commands are found by name when one runs (:data:`COMMANDS`), so `wasmforge
--version` imports none of them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from ..errors import OptionError
from .._version import __version__

#: Command -> what it does (its help line); each runs from wasmforge.cli.commands.<command>.run.
COMMANDS = {
    "new": "create a plugin workspace (plugin, macro and runner crates)",
    "add": "add a plugin crate to this workspace (as cargo new inside a workspace)",
    "build": "compile the workspace's plugin crate(s) to .wasm",
    "call": "call a plugin function and print the result",
    "inspect": "show a plugin's typed exports, host functions, imports and memory",
    "chain": "pass stdin through FUNC of every plugin in turn and print the result",
    "test": "run the plugin crates' cargo tests natively, then pytest in the workspace",
    "watch": "rebuild the plugin on every save and hot-reload it, checked first",
    "doctor": "report the Rust toolchain, wasm targets, linker and crate source",
}


#: The commands that build the workspace: each takes the same build flags (:func:`_build_flags`).
BUILDING = ("build", "call", "inspect", "chain", "test", "watch")


class ArgumentsRejected(Exception):
    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line and exit 2, not usage + message."""

    def error(self, message: str) -> NoReturn:
        raise ArgumentsRejected(self.prog, message)

    def _print_message(self, message: str, file: Any = None) -> None:
        # argparse's own swallows write errors: --help into a full stdout would exit 0 having printed nothing.
        if message:
            (file or sys.stderr).write(message)


_EXAMPLES = {
    "new": "example: wasmforge new my-plugin && cd my-plugin && wasmforge build",
    "add": "example: wasmforge add greeter && wasmforge call -p greeter add 1 2",
    "build": "example: wasmforge build --release --json",
    "call": "examples: wasmforge call add 1 2 | wasmforge call length hello | wasmforge call --plugin x.wasm --list",
    "doctor": "example: wasmforge doctor --json",
    "inspect": "example: wasmforge inspect target/wasm32-unknown-unknown/debug/my_plugin_plugin.wasm",
    "chain": "example: wasmforge chain preprocess < chapter.md > out.md",
    "test": "example: wasmforge test -- -k stats",
    "watch": "examples: wasmforge watch --call 'add 1 2' | wasmforge watch --json --release",
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="wasmforge",
        description="Write WebAssembly plugins in Rust and run them inside Python.",
        epilog="Exit codes: 0 ok, 1 failed (build error, plugin error), 2 usage error, 3 toolchain missing, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"wasmforge {__version__}")
    _global_flags(parser, defaults=True)
    # The same flags after the command (`wasmforge build -q`); given there, they win.
    after_command = Parser(add_help=False)
    _global_flags(after_command, defaults=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    building = _build_flags()

    def command(name: str) -> argparse.ArgumentParser:
        help_text = COMMANDS[name]
        parents = [after_command, building] if name in BUILDING else [after_command]
        return commands.add_parser(name, help=help_text, description=help_text, epilog=_EXAMPLES.get(name),
                                   parents=parents)

    new = command("new")
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

    add = command("add")
    add.add_argument("name", metavar="NAME", help="the new plugin crate's name (its package and directory)")
    add.add_argument("--path", metavar="DIR", help="create the crate in DIR instead of crates/NAME")
    add.add_argument("--template", default="default", metavar="NAME|DIR",
                     help="the template whose plugin crate to copy, as for `new` (default: default)")
    add.add_argument("--dry-run", action="store_true", help="list what would be written and changed, change nothing")

    build = command("build")
    build.add_argument("--offline", action="store_true", help="take crates from Debian's registry")
    build.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    build.add_argument("--out-dir", metavar="DIR",
                       help="copy the .wasm files into DIR, as package data (implies --release)")

    call = command("call")
    call.add_argument("function", nargs="?", metavar="FUNC", help="the export to call")
    call.add_argument("args", nargs="*", default=[], metavar="ARGS", help="arguments: JSON values where they parse, else strings")
    call.add_argument("--plugin", metavar="PATH", help="the .wasm to load (default: build and use the workspace's plugin)")
    call.add_argument("--list", action="store_true", help="list the plugin's functions and signatures")
    call.add_argument("--native", action="store_true",
                      help="call it natively through the runner crate (cargo run -p NAME-runner), to compare with wasm")
    call.add_argument("--json", action="store_true", help="print the result as one JSON object")
    call.add_argument("--sha256", metavar="HEX", help="refuse the plugin unless its sha256 is HEX")
    _limit_flags(call)
    _host_flag(call)

    inspect = command("inspect")
    inspect.add_argument("target", nargs="?", metavar="PLUGIN", help="a .wasm file (default: build and inspect the workspace's plugins)")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    _host_flag(inspect)

    chain = command("chain")
    chain.add_argument("function", metavar="FUNC", help="the function each plugin applies, e.g. preprocess")
    chain.add_argument("--dir", metavar="DIR", help="chain every .wasm in DIR in file-name order (default: the workspace's plugins, by crate name)")
    chain.add_argument("--input", metavar="TEXT", help="use TEXT instead of reading stdin")
    chain.add_argument("extra", nargs="*", default=[], help=argparse.SUPPRESS)
    chain.add_argument("--json", action="store_true", help="print one JSON object")
    chain.add_argument("--mdbook", action="store_true",
                       help="speak mdBook's preprocessor protocol: answer `supports`, read [context, book], write the book")
    _limit_flags(chain)
    _host_flag(chain)

    test = command("test")
    test.add_argument("pytest_args", nargs="*", default=[], metavar="PYTEST_ARGS", help="passed to pytest (after --)")
    only = test.add_mutually_exclusive_group()
    only.add_argument("--rust-only", action="store_true", help="only cargo test")
    only.add_argument("--python-only", action="store_true", help="only pytest")
    test.add_argument("--json", action="store_true", help="print one JSON object with each runner's counts")

    watch = command("watch")
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
    _limit_flags(watch)
    _host_flag(watch)

    doctor = command("doctor")
    doctor.add_argument("--offline", action="store_true", help="check Debian's registry even for a rustup toolchain")
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _build_flags() -> "Parser":
    """The build flags every building command takes (BUILDING), each over its wasmforge.toml [build] key."""
    from ..workspace.toolchain import WASM_TARGETS

    flags = Parser(add_help=False)
    profile = flags.add_mutually_exclusive_group()
    profile.add_argument("--release", action="store_true", help="the release profile ([build] profile)")
    profile.add_argument("--debug", action="store_true", help="the debug profile, whatever [build] profile says")
    flags.add_argument("--target", dest="wasm_target", choices=WASM_TARGETS,
                       help="wasm target ([build] target; wasm32-wasi and wasm32-wasip1 are one target)")
    flags.add_argument("-F", "--features", action="append", metavar="FEATURES",
                       help="cargo features to build with, comma- or space-separated, repeatable ([build] features)")
    flags.add_argument("--no-default-features", action="store_true", default=None,
                       help="build without the crates' default features ([build] no_default_features)")
    flags.add_argument("-p", "--package", action="append", metavar="CRATE",
                       help="this crate (repeatable; default: every plugin crate of [plugin] crates)")
    return flags


def _global_flags(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """-C, -q and -v. Without ``defaults`` an absent flag sets nothing, so the top level's value stays."""
    unset: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument("-C", dest="directory", metavar="DIR", help="run as if started in DIR", **unset)
    parser.add_argument("-q", "--quiet", action="store_true", help="print only results and errors", **unset)
    parser.add_argument("-v", "--verbose", action="count", help="say more (repeat for debug logs)",
                        **({"default": 0} if defaults else unset))


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
    from ..limits import MAX_TIMEOUT

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
    from ..limits import parse_size

    try:
        return parse_size(text, "memory limit") or 0
    except OptionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _milliseconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of milliseconds, got {text!r}")
    return int(text)


def _limit_flags(parser: argparse.ArgumentParser) -> None:
    """The sandbox flags; they override [limits] in wasmforge.toml."""
    parser.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="time limit per call")
    parser.add_argument("--memory-limit", type=_size, metavar="SIZE", help="linear memory cap, e.g. 64MiB (default 1GiB)")
    parser.add_argument("--fuel", type=_positive_int, metavar="N", help="fuel budget per call (about N instructions)")


def _host_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host-functions", metavar="MODULE:ATTR",
                        help="the plugin's host functions: a mapping, HostFunctions registry or list of functions "
                             "in a Python module (imported from the current directory), e.g. host:functions")
