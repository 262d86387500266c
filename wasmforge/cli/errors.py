"""Every error the command line reports, turned into its one line and exit code here, in one place.

A handler returns an exit code or raises; :func:`run_reported` runs it and
turns a WasmforgeError into one line on stderr (and, for a failing ``--json``
command with no result yet, ``{"ok": false, "error": {...}}`` on stdout) and
the error's exit code; Ctrl-C into exit 130; a reader that went away into
exit 0; a stdout that would not take the result into exit 1. Causes are never
printed: the library keeps them for library users.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

from .._json import json_line
from ..errors import BuildError, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PluginCallError, PluginError, PluginPanic, PluginTrap, WasmforgeError
from .output import Output, ResultLost


#: Commands whose --json output on failure is `{"ok": false, "error": {...}}` (docs/CLI.md). build has its own
#: (`"error"` is a string there, with cargo's diagnostics beside it); watch's output is events.
JSON_ERRORS = ("call", "chain", "inspect", "test")


def describe_error(error: WasmforgeError) -> str:
    """The one line for an error: a plugin's own Err text gets the function's name in front."""
    if isinstance(error, PluginError) and error.function:
        return f"{error.function}() returned an error: {error}"
    return str(error)


def error_json(error: BaseException) -> dict[str, Any]:
    """An error for --json output: ``type`` (the exception's class) and ``message``, then what it knows.

    A plugin's error also names ``plugin`` and ``function``; a panic has
    ``panic_message``, ``file``, ``line`` and ``column`` (null where the panic
    hook could not say); a trap its ``trap_code``; a build error cargo's ``diagnostics``.
    """
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


def run_reported(run: Callable[[], int], args: argparse.Namespace, out: Output) -> int:
    """``run()``'s exit code; whatever it raises, reported as its one line and exit code."""
    try:
        return run()
    except WasmforgeError as error:
        if getattr(args, "json", False) and args.command in JSON_ERRORS and not out.results:
            out.result(json_line({"ok": False, "error": error_json(error)}, default=str))
        out.error(describe_error(error))
        return error.exit_code
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `wasmforge call ... | head`: the reader left; that is not our failure.
        stdout_to_devnull()
        return EXIT_OK
    except ResultLost as lost:
        return result_lost(out, lost.error)
    except OSError as error:
        # The system refused something no check foresaw (a file that may not be read, a full disk): one line.
        where = f" ({error.filename})" if error.filename else ""
        out.error(f"{error.strerror or error}{where}")
        return EXIT_FAILED


def stdout_to_devnull() -> None:
    """After a failed write, so that Python's own flush at exit does not fail again with a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def result_lost(out: Output, error: OSError) -> int:
    """stdout would not take the result (a full disk, /dev/full): one line, exit 1."""
    if isinstance(error, BrokenPipeError):
        stdout_to_devnull()
        return EXIT_OK
    stdout_to_devnull()
    out.error(f"could not write the result to stdout: {error.strerror or error}")
    return EXIT_FAILED
