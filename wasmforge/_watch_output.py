"""What `wasmforge watch` prints: one line per cycle, or NDJSON events.

The reload loop emits events (wasmforge.events); :class:`WatchPrinter`
gathers one cycle's events and prints its line when the cycle ends, or with
``--json`` prints every event as it comes.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ._jsonout import json_line
from .errors import UsageError
from .events import (
    BuildFinished,
    BuildStarted,
    CallResult,
    Changed,
    Event,
    KeptOldVersion,
    Reloaded,
    Unchanged,
    Watching,
)
from .hot import CheckCall

if TYPE_CHECKING:
    from .cli import Output
    from .host import Plugin


class CliCall(CheckCall):
    """``--call 'FUNC ARGS...'``: the arguments are converted by each new version's signature, as `call` does."""

    @classmethod
    def parse(cls, text: str) -> "CliCall":
        try:
            words = shlex.split(text)
        except ValueError as error:
            raise UsageError(f"--call {text!r}: {error}; quote it like --call 'greet \"a b\"'") from None
        if not words:
            raise UsageError("--call needs a function name, e.g. --call 'add 1 2'")
        return cls(words[0], *words[1:])

    def arguments_for(self, plugin: "Plugin") -> Sequence[Any]:
        from .cli import parse_cli_argument

        signature = plugin.function(self.function).signature
        return [parse_cli_argument(signature, i, text) for i, text in enumerate(self.args)]

    def describe(self) -> str:
        return " ".join([self.function, *(shlex.quote(str(a)) for a in self.args)])


class WatchPrinter:
    """Turns the loop's events into output; call it with each event (it is the HotPlugin's ``on_event``)."""

    def __init__(self, out: "Output", root: Path, *, as_json: bool, call: Optional[CliCall]) -> None:
        self.out = out
        self.root = root
        self.as_json = as_json
        self.call = call
        #: Set while shutting down: a build killed by Ctrl-C is not worth a line.
        self.closing = threading.Event()
        self._parts: list[str] = []
        self._subject = ""
        self._failed_call: Optional[CallResult] = None

    def __call__(self, event: Event) -> None:
        if self.closing.is_set():
            return
        if self.as_json:
            self.out.result(json_line(event.to_json(), default=repr))
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
        # Known temporaries (sed -i, editors: _filters.NOISE_FILES) are never listed; one of a tool not known
        # there comes first and is gone by now: name the saved file.
        main = next((p for p in reversed(event.paths) if p.exists()), event.paths[-1])
        more = f" (+{len(event.paths) - 1} more)" if len(event.paths) > 1 else ""
        self._subject = f"{self._shown(main)}{more}"

    def _on_build_started(self, event: BuildStarted) -> None:
        if event.reason == "start":
            self._subject = f"{event.crate} ({event.profile})"

    def _on_build_finished(self, event: BuildFinished) -> None:
        if event.ok:
            self._parts.append(f"built in {event.seconds:.2f} s")
            return
        if event.diagnostics:
            self.out.raw_stderr(event.diagnostics)
        self._parts.append(f"build failed in {event.seconds:.2f} s: {_without_prefix(event.error or '')}")

    def _on_reloaded(self, event: Reloaded) -> None:
        self._parts.append(_size_text(event.size, event.size_change))
        verb = "loaded" if event.version == 1 else "reloaded"
        self._parts.append(f"{verb} in {event.seconds * 1000:.1f} ms as v{event.version}")
        if event.exports:
            self._parts.append(f"exports {event.exports.describe()}")
        if self.call is None:
            self._line()

    def _on_call_result(self, event: CallResult) -> None:
        if not event.ok:
            self._failed_call = event
            return
        self._parts.append(f"{self.call.describe() if self.call else event.function} -> {_value_text(event.value)}")
        self._line()

    def _on_unchanged(self, event: Unchanged) -> None:
        self._parts.append(f"{_size_text(event.size, None)}, identical: not reloaded (still v{event.version})")
        self._line()

    def _on_kept_old_version(self, event: KeptOldVersion) -> None:
        if event.stage == "check" and self._failed_call is not None:
            shown = self.call.describe() if self.call else self._failed_call.function
            self._parts.append(f"{shown} failed on the new version: {self._failed_call.error}")
        elif event.stage == "load":
            self._parts.append(f"not loaded: {event.error}")
        elif event.stage != "build":
            self._parts.append(event.error)
        serving = f"still serving v{event.version}" if event.version else "nothing serving yet"
        self._parts.append(serving)
        self._line()

    def _line(self) -> None:
        stamp = time.strftime("%H:%M:%S")
        subject = self._subject or "change"
        self.out.result(f"[{stamp}] {subject}: " + ", ".join(self._parts))
        self._parts, self._subject, self._failed_call = [], "", None

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def _size_text(size: int, change: Optional[int]) -> str:
    from .cli import _human_size

    if change is None:
        return _human_size(size)
    sign = "+" if change >= 0 else "-"
    return f"{_human_size(size)} ({sign}{_human_size(abs(change))})"


def _value_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return repr(bytes(value))
    return json.dumps(value)  # text for people: NaN reads fine here


def _without_prefix(error: str) -> str:
    return error[len("build failed: "):] if error.startswith("build failed: ") else error
