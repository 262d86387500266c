"""Stopping `wasmforge watch`: however and whenever it is stopped, it ends the same way.

Ctrl-C (SIGINT) or SIGTERM, while starting (wasmtime alone takes a few hundred
milliseconds to import), building or idle, once or again while it stops: the
running cargo is killed, the last line is "stopped watching", the exit code
130. These run the command in-process, with real signals, and no cargo; the
end-to-end ones (test_watch_command.py) stop a real watch during a real build.
"""

from __future__ import annotations

import io
import signal
from pathlib import Path
from typing import Any, Optional

import pytest

import wasmforge.cli
import wasmforge.workspace.workspace
import wasmforge.devloop.hot
from wasmforge.cli.watch_output import CliCall

EXIT_INTERRUPTED = 130


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Enough of a workspace for `watch` to read its settings; nothing here is ever built."""
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["crates/p"]\n')
    (tmp_path / "crates" / "p" / "src").mkdir(parents=True)
    (tmp_path / "crates" / "p" / "Cargo.toml").write_text('[package]\nname = "p"\nversion = "0.1.0"\n')
    (tmp_path / "crates" / "p" / "src" / "lib.rs").write_text("")
    (tmp_path / "wasmforge.toml").write_text('[plugin]\ncrates = ["p"]\n')
    return tmp_path


def watch(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    """`wasmforge -C WORKSPACE watch --call 'add 1 2'` in-process: the exit code and the lines on stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    output = wasmforge.cli.Output
    monkeypatch.setattr(wasmforge.cli, "Output", lambda: output(stdout=stdout, stderr=stderr))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    code = wasmforge.cli.main(["-C", str(workspace), "watch", "--call", "add 1 2"])
    assert {s: signal.getsignal(s) for s in handlers} == handlers, "watch left its signal handlers behind"
    return code, stderr.getvalue().splitlines()


def assert_stopped(code: int, stderr: list[str]) -> None:
    assert code == EXIT_INTERRUPTED, stderr
    assert stderr and stderr[-1] == "stopped watching", stderr
    assert not any(line.startswith("error:") for line in stderr), stderr


def interrupted(*args: Any, **kwargs: Any) -> Any:
    signal.raise_signal(signal.SIGINT)  # Ctrl-C, delivered to this (the main) thread at once
    raise AssertionError("SIGINT did not stop it")


@pytest.mark.parametrize(
    "starting",
    [
        pytest.param((wasmforge.workspace.workspace, "load_settings"), id="while-reading-settings"),
        pytest.param((CliCall, "parse"), id="while-reading-the-check-call"),
        pytest.param((wasmforge.devloop.hot.HotPlugin, "from_workspace"), id="while-starting-the-watcher"),
    ],
)
def test_ctrl_c_while_starting_stops_like_any_other(
    starting: tuple[Any, str], workspace: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner, name = starting
    monkeypatch.setattr(owner, name, interrupted)
    assert_stopped(*watch(workspace, monkeypatch))


class FakeHot:
    """A HotPlugin that is stopped by ``first`` while serving and gets ``second`` while closing."""

    def __init__(self, first: signal.Signals, second: Optional[signal.Signals]) -> None:
        self.first, self.second = first, second
        self.closing = self.closed = False

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        signal.raise_signal(self.first)
        raise AssertionError(f"{self.first.name} did not stop it")

    def close(self) -> None:
        if not self.closing:  # like HotPlugin.close: only the first call does anything
            self.closing = True
            if self.second is not None:
                signal.raise_signal(self.second)  # impatient: Ctrl-C again while cargo is being killed
            self.closed = True


@pytest.mark.parametrize(
    "first, second",
    [(first, second) for first in (signal.SIGINT, signal.SIGTERM) for second in (None, signal.SIGINT, signal.SIGTERM)],
    ids=lambda s: s.name if s else "once",
)
def test_sigint_or_sigterm_once_or_twice_stops_the_same_way(
    first: signal.Signals, second: Optional[signal.Signals], workspace: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    hot = FakeHot(first, second)
    monkeypatch.setattr(wasmforge.devloop.hot.HotPlugin, "from_workspace", lambda *args, **kwargs: hot)
    assert_stopped(*watch(workspace, monkeypatch))
    assert hot.closed  # cargo killed: closing ran to its end, however many signals came
