"""`wasmforge watch`'s keys: single key presses read from a terminal on stdin, as bacon and watchexec do.

Only when stdin is a terminal: piped or redirected input is never read as keys.
The terminal goes to cbreak mode (keys arrive one by one, not echoed; Ctrl-C
still interrupts) while watching, and back to what it was when it ends.
"""

from __future__ import annotations

import os
import select
import threading
from typing import IO, Any, Callable, Optional

#: The keys and what each does; the status line lists them.
KEYS = {"r": "rebuild now", "p": "pause/resume", "b": "roll back/forward", "c": "clear", "q": "quit"}
STATUS_LINE = "keys: " + ", ".join(f"{key} {what}" for key, what in KEYS.items())


class KeyReader:
    """Calls ``on_key`` with each key pressed on the terminal ``stream``, on a thread of its own, until closed."""

    def __init__(self, stream: IO[Any], on_key: Callable[[str], None]) -> None:
        self.fd = stream.fileno()
        self.on_key = on_key
        self._stop = threading.Event()
        self._saved: Optional[list[Any]] = None
        self._thread = threading.Thread(target=self._read, name="wasmforge-keys", daemon=True)

    @classmethod
    def for_terminal(cls, stream: Optional[IO[Any]], on_key: Callable[[str], None]) -> Optional["KeyReader"]:
        """A started reader when ``stream`` is a terminal; None otherwise (a pipe, a file, /dev/null, closed)."""
        try:
            if stream is None or not stream.isatty():
                return None
            reader = cls(stream, on_key)
            reader.start()
        except (OSError, ValueError):  # closed, or a terminal that refuses its modes
            return None
        return reader

    def start(self) -> None:
        import termios
        import tty

        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        self._thread.start()

    def close(self) -> None:
        """Stops reading and gives the terminal back its modes."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._saved is not None:
            import termios

            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            except (OSError, termios.error):
                pass  # the terminal is gone: nothing to give back
            self._saved = None

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self.fd, 32)
            except (OSError, ValueError):
                return
            if not data:  # the terminal hung up
                return
            for key in data.decode("utf-8", errors="replace"):
                if not self._stop.is_set():
                    self.on_key(key)
