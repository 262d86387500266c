"""Where the command line writes: results to stdout, messages to stderr, one line per error.

:class:`Output` takes its streams when it is made (main() may have put closed
ones back first), never at import; a result stdout would not take is a
:class:`ResultLost`, which main() turns into one line and exit 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional, TextIO


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

    def paint(self, text: str, code: str) -> str:
        """``text`` in the ANSI colour ``code`` on a terminal; as it is elsewhere."""
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def result(self, text: str, end: str = "\n") -> None:
        """A command's answer: always printed, even with -q."""
        try:
            self.stdout.write(text + end)
            self.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise ResultLost(error) from None
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
            raise ResultLost(error) from None
        self.results += 1

    def info(self, text: str) -> None:
        if not self.quiet:
            self.raw_stderr(text + "\n")

    def success(self, text: str) -> None:
        self.info(self.paint(text, "32"))

    def error(self, text: str) -> None:
        self.raw_stderr(f"{self.paint('error', '1;31')}: {text}\n")

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


class ResultLost(Exception):
    """stdout would not take a result (its disk is full, or it is /dev/full)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def print_value(out: Output, value: Any, newline: bool = True) -> None:
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


def stderr_fd(out: Output) -> Optional[int]:
    """Where commands we start write: our stderr (stdout carries results), or nowhere if it has no descriptor."""
    try:
        return out.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL


def shown_path(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)
