"""What `wasmforge watch` prints: one line per cycle, or NDJSON events; and its ``--call`` checks.

The reload loop emits events (wasmforge.events); :class:`WatchPrinter`
gathers one cycle's events and prints its line when the cycle ends, or with
``--json`` prints every event as it comes. :class:`CliCall` is a ``--call``:
a check whose words are read as `call` reads them.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from .._json import json_line
from .._text import format_bytes
from ..abi.arguments import parse_cli_argument
from ..devloop.hot import CheckCall
from ..errors import UsageError
from ..events import (
    BuildFinished,
    BuildStarted,
    CallResult,
    Changed,
    CycleFinished,
    Event,
    ExecFinished,
    KeptOldVersion,
    Reloaded,
    Unchanged,
    Watching,
)
from ..workspace.build import warning_blocks

if TYPE_CHECKING:
    from ..runtime.plugin import Plugin
    from .output import Output


class CliCall(CheckCall):
    """``--call 'FUNC ARGS...'``: the arguments are converted by each new version's signature, as `call` does."""

    #: ``--call 'CRATE:FUNC ARGS'``: the plugin crate it checks, with several served.
    plugin: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "CliCall":
        try:
            words = shlex.split(text)
        except ValueError as error:
            raise UsageError(f"--call {text!r}: {error}; quote it like --call 'greet \"a b\"'") from None
        if not words:
            raise UsageError("--call needs a function name, e.g. --call 'add 1 2'")
        plugin, _, function = words[0].rpartition(":")
        if not function:
            raise UsageError(f"--call {text!r}: name the function after the crate, e.g. --call 'greeter:add 1 2'")
        call = cls(function, *words[1:])
        call.plugin = plugin or None
        return call

    def arguments_for(self, plugin: "Plugin") -> Sequence[Any]:
        signature = plugin.function(self.function).signature
        return [parse_cli_argument(signature, i, text) for i, text in enumerate(self.args)]


#: Warnings shown in full per build without -v; the rest are counted.
SHOWN_WARNINGS = 3


class WatchPrinter:
    """Turns the loop's events into output; call it with each event (it is the HotPlugin's ``on_event``).

    Text mode prints one line per cycle, when the cycle ends (``cycle_finished``).
    With ``--exec``, a cycle that swapped in a new version waits for the
    command's result to end its line; if the next cycle starts first, the
    line is printed with the command still running, and its result gets a
    line of its own when it comes.
    """

    def __init__(
        self, out: "Output", root: Path, *, as_json: bool, verbose: bool = False, clear: bool = False,
        exec_command: Optional[str] = None, plugin: Optional[str] = None,
    ) -> None:
        #: With several plugins served, the one whose events this printer gets: it leads each line.
        self.plugin = plugin
        self.out = out
        self.root = root
        self.as_json = as_json
        #: Show every warning of a build, not only the first few.
        self.verbose = verbose
        #: Clear the screen when a cycle starts.
        self.clear = clear
        self.exec_command = exec_command
        #: Set while shutting down: a build killed by Ctrl-C is not worth a line.
        self.closing = threading.Event()
        # The loop's thread and --exec's both report here.
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._subject = ""
        #: What the cycle's total is timed from: "save", or "start" for the first build.
        self._since = "save"
        self._failed_call: Optional[CallResult] = None
        #: A finished cycle's line waiting for its --exec result: (version, line).
        self._waiting: Optional[tuple[int, str]] = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self.closing.is_set():
                return
            if self.as_json:
                fields = event.to_json()
                self.out.result(json_line({"plugin": self.plugin, **fields} if self.plugin else fields, default=repr))
                return
            handler = getattr(self, f"_on_{event.kind}", None)
            if handler is not None:
                handler(event)

    # ---- text mode: one line per cycle ----

    def _on_watching(self, event: Watching) -> None:
        where = ", ".join(self._shown(d) or "." for d in event.dirs) or ", ".join(self._shown(f) for f in event.files)
        how = "native file events" if event.mode == "native" else "polling"
        self.out.info(f"watching {where} ({how}); Ctrl-C stops")

    def _on_change(self, event: Changed) -> None:
        self._flush_waiting("running")
        if self.clear:
            self.out.clear_screen()
        # Temporaries renamed over a file were folded into it by the loop, and known ones (_filters.NOISE_FILES)
        # are never listed; one of a tool not known there may come first and be gone by now: name the saved file.
        main = next((p for p in reversed(event.paths) if p.exists()), event.paths[-1])
        more = f" (+{len(event.paths) - 1} more)" if len(event.paths) > 1 else ""
        self._subject = f"{self._shown(main)}{more}"
        self._since = "save"

    def _on_build_started(self, event: BuildStarted) -> None:
        if event.reason == "start":
            self._subject = f"{event.crate} ({event.profile})"
            self._since = "start"

    def _on_build_finished(self, event: BuildFinished) -> None:
        if event.ok:
            warned = f" with {_plural(event.warnings, 'warning')}" if event.warnings else ""
            self._parts.append(f"built in {event.seconds:.2f} s{warned}")
            self._show_warnings(event.diagnostics)
            return
        if event.diagnostics:
            self.out.raw_stderr(event.diagnostics)
        self._parts.append(f"build failed in {event.seconds:.2f} s: {_without_prefix(event.error or '')}")

    def _show_warnings(self, diagnostics: str) -> None:
        """cargo's warnings, as it printed them: the first few, or all with -v."""
        blocks = warning_blocks(diagnostics)
        if not blocks or self.out.quiet:
            return
        shown = blocks if self.verbose else blocks[:SHOWN_WARNINGS]
        text = "".join(block + "\n\n" for block in shown)
        if len(blocks) > len(shown):
            text += f"... and {_plural(len(blocks) - len(shown), 'more warning')} (-v shows all)\n"
        self.out.raw_stderr(text)

    def _on_reloaded(self, event: Reloaded) -> None:
        self._parts.append(_size_text(event.size, event.size_change))
        verb = "loaded" if event.version == 1 else "reloaded"
        self._parts.append(f"{verb} in {event.seconds * 1000:.1f} ms as v{event.version}")
        if event.exports:
            self._parts.append(f"exports {event.exports.describe()}")

    def _on_call_result(self, event: CallResult) -> None:
        if not event.ok:
            self._failed_call = event
            return
        self._parts.append(f"{_describe_call(event)} -> {_value_text(event.value)}")

    def _on_unchanged(self, event: Unchanged) -> None:
        if event.recovered:  # the failure before is over: the sources are the serving version's again
            self._parts.append(f"{_size_text(event.size, None)}, identical to v{event.version}: recovered, not reloaded")
        else:
            self._parts.append(f"{_size_text(event.size, None)}, identical: not reloaded (still v{event.version})")

    def _on_kept_old_version(self, event: KeptOldVersion) -> None:
        if event.stage == "check" and self._failed_call is not None:
            self._parts.append(f"{_describe_call(self._failed_call)} failed on the new version: {self._failed_call.error}")
        elif event.stage == "load":
            self._parts.append(f"not loaded: {event.error}")
        elif event.stage != "build":
            self._parts.append(event.error)
        serving = f"still serving v{event.version}" if event.version else "nothing serving yet"
        self._parts.append(serving)

    def _on_cycle_finished(self, event: CycleFinished) -> None:
        line = self._line_text(f"; {self._since} to result {event.seconds:.2f} s")
        if self.exec_command is not None and event.outcome == "reloaded":
            self._waiting = (event.version, line)
        else:
            self.out.result(line)

    def _on_exec_finished(self, event: ExecFinished) -> None:
        outcome = _exec_text(event)
        if self._waiting is not None and self._waiting[0] == event.version:
            line, self._waiting = self._waiting[1], None
            head, _, total = line.rpartition("; ")
            self.out.result(f"{head}, {outcome}; {total}")
        else:
            self.out.result(f"[{time.strftime('%H:%M:%S')}] v{event.version}: {outcome}")

    def _flush_waiting(self, state: str) -> None:
        """A new cycle starts while --exec runs for the last one: print that line now."""
        if self._waiting is not None:
            line, self._waiting = self._waiting[1], None
            head, _, total = line.rpartition("; ")
            self.out.result(f"{head}, exec {state}; {total}")

    def _line_text(self, ending: str) -> str:
        stamp = time.strftime("%H:%M:%S")
        subject = self._subject or "change"
        who = f"{self.plugin}: " if self.plugin and not subject.startswith(self.plugin) else ""
        text = f"[{stamp}] {who}{subject}: " + ", ".join(self._parts) + ending
        self._parts, self._subject, self._failed_call, self._since = [], "", None, "save"
        return text

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def _describe_call(event: CallResult) -> str:
    """A check as it was given: `add 1 2`, the arguments quoted as a shell would need them."""
    return " ".join([event.function, *(shlex.quote(str(a)) for a in event.args)])


def _exec_text(event: ExecFinished) -> str:
    if event.stopped:
        return f"exec stopped after {event.seconds:.2f} s (a newer version went live)"
    if event.ok:
        return f"exec ok in {event.seconds:.2f} s"
    how = f"signal {-event.exit_code}" if event.exit_code < 0 else f"exit {event.exit_code}"
    return f"exec failed ({how}) in {event.seconds:.2f} s"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _size_text(size: int, change: Optional[int]) -> str:
    if change is None:
        return format_bytes(size, fixed_point=True)
    sign = "+" if change >= 0 else "-"
    return f"{format_bytes(size, fixed_point=True)} ({sign}{format_bytes(abs(change), fixed_point=True)})"


def _value_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return repr(bytes(value))
    return json.dumps(value)  # text for people: NaN reads fine here


def _without_prefix(error: str) -> str:
    return error[len("build failed: "):] if error.startswith("build failed: ") else error
