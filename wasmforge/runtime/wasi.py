"""A WASI plugin's output: captured per call and forwarded to Python, bounded.

wasmtime-py's custom output callbacks run on wasmtime's own threads and can
crash the process at interpreter exit; so a WASI plugin's stdout and stderr
go to private temporary files, read on the calling thread after each call
(:class:`CapturedStream`), with a monitor thread that keeps a flooding
plugin from filling the disk while a call runs (:data:`OUTPUT_MONITOR`).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import threading
import time
import weakref
from typing import Any, Callable, Optional, Sequence, Union

from .._text import format_bytes

log = logging.getLogger(__name__)

#: Where WASI output goes: None (Python's sys.stdout / sys.stderr), "inherit"
#: (the process's own file descriptors), a callable taking bytes, or a file object.
OutputSink = Union[None, str, Callable[[bytes], Any], Any]
#: Captured output goes to its sink this many bytes at a time.
OUTPUT_CHUNK = 64 << 10


class CapturedStream:
    """A WASI stream written to a private temporary file and forwarded after each call.

    wasmtime-py's custom output callbacks run on wasmtime's own threads and can
    crash the process at interpreter exit; a file read on the calling thread
    cannot, and delivers a call's output, in order, before the call returns.

    Bounded three ways: at most ``limit`` bytes of a call's output are
    delivered (the rest is dropped, with a warning); while calls run, the
    :data:`OUTPUT_MONITOR` cuts the file back to that much, so a plugin that
    floods cannot fill the disk; and after each delivery the file is emptied.
    wasmtime keeps writing at its own file position, so an emptied file
    continues past a hole that takes no disk space.
    """

    def __init__(self, stream: str, sink: OutputSink, plugin: str = "plugin", limit: Optional[int] = None) -> None:
        self.stream = stream
        self.plugin = plugin
        self.limit = limit
        self._deliver = _sink_writer(stream, sink)
        self._fd, path = tempfile.mkstemp(prefix=f"wasmforge-{stream}-")
        self.path = path
        #: Where the next byte wasmtime writes will be: everything before it was delivered (or dropped).
        self._offset = 0
        self._lock = threading.Lock()
        self._cleanup = weakref.finalize(self, _close_and_remove, self._fd, path)

    def trim(self) -> None:
        """Drops what a running call wrote past its limit (from the monitor thread)."""
        if self.limit is None:
            return
        with self._lock:
            try:
                if os.fstat(self._fd).st_size > self._offset + self.limit:
                    os.ftruncate(self._fd, self._offset + self.limit)
            except OSError:
                pass

    def drain(self, deadline: Optional[float] = None) -> bool:
        """Delivers what the last call wrote, in chunks, then empties the file.

        With ``deadline`` (a time.monotonic() value) delivery stops once it
        passes, after at least one chunk; returns False if output was left undelivered then.
        """
        with self._lock:
            try:
                size = os.fstat(self._fd).st_size
            except OSError:
                return True
            start = self._offset if size >= self._offset else 0  # a writer that appends starts again at 0
            end = size if self.limit is None else min(size, start + self.limit)
            position, in_time = start, True
            try:
                while position < end:
                    chunk = os.pread(self._fd, min(OUTPUT_CHUNK, end - position), position)
                    if not chunk:
                        break
                    position += len(chunk)
                    self._deliver(chunk)
                    if deadline is not None and position < end and time.monotonic() > deadline:
                        in_time = False
                        break
            finally:
                self._offset = size
                try:
                    os.ftruncate(self._fd, 0)
                except OSError:
                    pass
            if not in_time:
                log.warning("%s: %s of %s output left undelivered when the call's time limit passed",
                            self.plugin, format_bytes(end - position), self.stream)
            elif end < size:
                log.warning("%s wrote %s to %s in one call, over its limit of %s (max_output=); the rest was dropped",
                            self.plugin, format_bytes(size - start), self.stream, format_bytes(self.limit))
            return in_time


def _close_and_remove(fd: int, path: str) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    try:
        os.unlink(path)
    except OSError:
        pass


class OutputMonitor:
    """Cuts captured output back to its limit while calls run, every INTERVAL seconds.

    Idle (no call with captured output running) it waits on a condition and costs nothing.
    """

    INTERVAL = 0.05

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._active: dict[CapturedStream, int] = {}
        self._thread: Optional[threading.Thread] = None

    def enter(self, streams: Sequence[CapturedStream]) -> None:
        if not streams:
            return
        with self._condition:
            for stream in streams:
                self._active[stream] = self._active.get(stream, 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wasmforge-output", daemon=True)
                self._thread.start()
            self._condition.notify()

    def leave(self, streams: Sequence[CapturedStream]) -> None:
        if not streams:
            return
        with self._condition:
            for stream in streams:
                count = self._active.get(stream, 1) - 1
                if count <= 0:
                    self._active.pop(stream, None)
                else:
                    self._active[stream] = count

    def forget(self) -> None:
        """In a forked child: the thread and the streams it watched were the parent's."""
        self._condition = threading.Condition()
        self._active = {}
        self._thread = None

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._active:
                    self._condition.wait()
            time.sleep(self.INTERVAL)
            with self._condition:
                streams = list(self._active)
            for stream in streams:
                stream.trim()


OUTPUT_MONITOR = OutputMonitor()


def _after_fork_in_child() -> None:
    """The monitor's thread and the calls it watched were the parent's."""
    OUTPUT_MONITOR.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _sink_writer(stream: str, sink: OutputSink) -> Callable[[bytes], None]:
    """A WASI output callback that never raises (wasmtime-py would print the error)."""

    def write(data: bytes) -> None:
        try:
            target: Any = sink if sink is not None else getattr(sys, stream)
            if callable(target) and not hasattr(target, "write"):
                target(bytes(data))
            elif isinstance(target, (io.RawIOBase, io.BufferedIOBase)):
                target.write(bytes(data))
                target.flush()
            else:
                target.write(bytes(data).decode("utf-8", errors="replace"))
                target.flush()
        except Exception:  # noqa: BLE001 - a broken sink must not break the plugin
            log.exception("could not forward the plugin's %s", stream)
    return write
