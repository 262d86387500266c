"""Ctrl-C (SIGINT) stops a plugin call running on the main thread.

Python runs its SIGINT handler (which raises KeyboardInterrupt) between two
bytecodes of the main thread. While that thread is inside wasm (a ctypes
call, the GIL released) it never gets there, so Ctrl-C would wait for the
call to end, which for a loop is never. So:

* Python's own C-level handler writes the signal's number to a wakeup
  descriptor (:func:`signal.set_wakeup_fd`), which a daemon thread here reads;
* that thread looks at what the main thread is doing: if its innermost
  Python frame is a fast call into wasm (or start-up code registered with
  :func:`running_slow`), it advances the epoch of that store's engine past the
  store's deadline, and the wasm traps at its next epoch check;
* the call returns, Python runs the handler there, and the KeyboardInterrupt
  propagates from the call; the call's instance is thrown away.

A store used by the main thread is armed one epoch ahead; a store used by any
other thread is armed :data:`FAR_EPOCHS` ahead, so advancing a shared engine's
epoch for the main thread's call does not stop calls running on other
threads. A store re-arms itself when it is called from the other kind of
thread or after an interrupt (the cost per call: a thread-id check and a
comparison; docs/PERFORMANCE.md).

Nothing here replaces the program's SIGINT handler. If the program already
uses a wakeup descriptor (asyncio's ``add_signal_handler`` does), it is left
alone and Ctrl-C waits for wasm to return, as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import weakref
from typing import Any, Callable, Optional

import wasmtime

from .fastcall import FAST_CALL_FILE, guard_host_function
from ..errors import PluginCancelled

log = logging.getLogger(__name__)

get_ident = threading.get_ident
MAIN_THREAD = threading.main_thread().ident
#: What a store used off the main thread is armed with: no interrupt reaches it.
FAR = object()
FAR_EPOCHS = 1 << 62


class InterruptState:
    """What stores compare themselves with before a call."""

    def __init__(self) -> None:
        #: The arming of main-thread stores; replaced at each interrupt, so they re-arm.
        self.main: object = object()
        #: Interrupts so far: a call that saw this change was stopped by SIGINT.
        self.interrupts = 0
        #: A store the main thread runs start-up code in (instantiation, _initialize).
        self.slow: Optional[wasmtime.Store] = None
        #: The engine the last interrupt advanced: only calls in it were stopped by SIGINT.
        self.engine: "Optional[weakref.ReferenceType[wasmtime.Engine]]" = None
        self.installed = False
        #: Ctrl-C came while a host function's callback ran: KeyboardInterrupt waits for the call's end.
        self.deferred = False
        #: Which of the watcher and _on_sigint_in_wasm saw the last SIGINT first (both hold the GIL).
        self.watcher_acted = False
        self.python_handled = False
        #: install() was tried from the main thread (it is retried at each load there, not per call).
        self.tried = False


STATE = InterruptState()
#: store -> (its engine, epochs to advance to pass any deadline the store can have)
_stores: "weakref.WeakKeyDictionary[wasmtime.Store, tuple[wasmtime.Engine, int]]" = weakref.WeakKeyDictionary()
_install_lock = threading.Lock()
_pipe: Optional[tuple[int, int]] = None


def register(store: wasmtime.Store, engine: wasmtime.Engine, epochs: int) -> None:
    """Lets Ctrl-C stop calls in ``store`` by advancing ``engine`` ``epochs`` times."""
    _stores[store] = (engine, epochs)


def stopped_by_sigint(engine: wasmtime.Engine, interrupts_before: int) -> bool:
    """Whether an interrupted call in ``engine`` that started at ``interrupts_before`` was stopped by SIGINT."""
    last = STATE.engine() if STATE.engine is not None else None
    return STATE.interrupts != interrupts_before and last is engine


def current_token() -> object:
    """What a store called from this thread must be armed with."""
    return STATE.main if get_ident() == MAIN_THREAD else FAR


def arm_for_this_thread(store: wasmtime.Store) -> object:
    """Arms a store without a deadline of its own for the calling thread; returns the token it is armed with."""
    if get_ident() == MAIN_THREAD:
        if not STATE.tried:
            install()  # a plugin loaded on another thread, called on the main one
        token = STATE.main
        store.set_epoch_deadline(1)
        return token
    store.set_epoch_deadline(FAR_EPOCHS)
    return FAR


class running_slow:  # noqa: N801 - used like a function: `with running_slow(store):`
    """Marks wasm run through wasmtime-py's own calls (start functions, setup exports) as interruptible,
    with Ctrl-C kept out of host-function callbacks (see :func:`sigint_safe`).

    A class, not a contextlib generator: it runs a few times per load, and that costs 4 µs each.
    """

    __slots__ = ("store", "previous", "on_main", "handler")

    def __init__(self, store: wasmtime.Store) -> None:
        self.store = store
        self.previous: Optional[wasmtime.Store] = None
        self.on_main = False
        self.handler: Any = None

    def __enter__(self) -> None:
        if get_ident() == MAIN_THREAD:
            self.on_main = True
            self.previous, STATE.slow = STATE.slow, self.store
            if _get_handler(signal.SIGINT) is _DEFAULT_HANDLER:
                self.handler = _set_handler(signal.SIGINT, _on_sigint_in_wasm)

    def __exit__(self, kind: object, error: Optional[BaseException], traceback: object) -> None:
        if self.on_main:
            STATE.slow = self.previous
            if self.handler is not None:
                _set_handler(signal.SIGINT, self.handler)
                _raise_deferred(error)


# ---- Ctrl-C inside host functions -------------------------------------------------------------
#
# A host function runs inside wasmtime-py's ctypes callback. If KeyboardInterrupt is raised in
# that callback's own code (Python runs the SIGINT handler at the first bytecode after the signal,
# often the callback's first), ctypes prints it, loses it, and returns an uninitialised trap
# pointer to wasmtime: the process crashes. So while the main thread runs a plugin that calls
# Python, the default handler is swapped for one that raises only where it is safe (in the host
# function itself, whose guard turns the exception into a failed call, or outside any callback)
# and otherwise asks Python to run it again at the next bytecode.

_DEFAULT_HANDLER = signal.default_int_handler
# signal.signal/getsignal are Python wrappers (enum conversions) of _signal's C functions:
# those cost 0.3 µs a swap instead of 3, and 0.03 µs a look instead of 2.
_c_signal: Any = importlib.import_module("_signal") if importlib.util.find_spec("_signal") else signal
_set_handler: Callable[[int, Any], Any] = _c_signal.signal
_get_handler: Callable[[int], Any] = _c_signal.getsignal
_GUARDED_CODE = guard_host_function(lambda: None).__code__
_WASMTIME_FILES = os.path.dirname(os.path.abspath(wasmtime.__file__)) + os.sep


def _inside_a_callback(frame: Any) -> bool:
    """Whether an exception raised in ``frame`` would cross wasmtime-py's callback code unguarded."""
    depth = 0
    while frame is not None and depth < 64:
        code = frame.f_code
        if code is _GUARDED_CODE and depth > 0:
            return False  # in a host function: the guard around it catches the exception
        if code.co_filename.startswith(_WASMTIME_FILES):
            return True
        frame, depth = frame.f_back, depth + 1
    return False


def _on_sigint_in_wasm(signum: int, frame: Any) -> None:
    # Python handled this SIGINT here: the watcher, reading its byte later, must not stop the
    # next call too (unless it already acted on it: then only its mark is cleared).
    handled_first = not STATE.watcher_acted
    STATE.watcher_acted = False
    STATE.python_handled = handled_first
    if _inside_a_callback(frame):
        # Not here: stop the wasm (at its next epoch check), and raise once the call is over.
        STATE.deferred = True
        if handled_first:
            interrupt_main()
        return
    STATE.deferred = False
    _DEFAULT_HANDLER(signum, frame)


def _raise_deferred(error: Optional[BaseException]) -> None:
    """After a call run with _on_sigint_in_wasm: the KeyboardInterrupt it put off, if any."""
    if STATE.deferred:
        STATE.deferred = False
        if not isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt


def sigint_safe(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` with Ctrl-C kept out of host-function callbacks, for plugins that call Python.

    Costs about 0.6 µs per call on the main thread (two handler swaps), nothing elsewhere.
    """
    def call_safely(*args: Any, **options: Any) -> Any:
        if get_ident() != MAIN_THREAD or _get_handler(signal.SIGINT) is not _DEFAULT_HANDLER:
            return call(*args, **options)
        previous = _set_handler(signal.SIGINT, _on_sigint_in_wasm)
        STATE.watcher_acted = STATE.python_handled = False  # marks of a SIGINT handled outside
        try:
            result = call(*args, **options)
        except BaseException as error:
            _set_handler(signal.SIGINT, previous)
            _raise_deferred(error)
            raise
        _set_handler(signal.SIGINT, previous)
        _raise_deferred(None)
        return result
    return call_safely


def interrupted_error(where: str, plugin: str, function: str) -> BaseException:
    """What a call stopped by SIGINT raises: KeyboardInterrupt where Python would have raised it."""
    if get_ident() == MAIN_THREAD and _get_handler(signal.SIGINT) in (_DEFAULT_HANDLER, _on_sigint_in_wasm):
        return KeyboardInterrupt()
    return PluginCancelled(f"{where} was interrupted by SIGINT (Ctrl-C)", plugin=plugin, function=function)


def install() -> None:
    """Starts watching for SIGINT, once, from the main thread; does nothing elsewhere or if the
    program has its own wakeup descriptor."""
    global _pipe
    if STATE.installed or get_ident() != MAIN_THREAD or not hasattr(signal, "set_wakeup_fd"):
        return
    with _install_lock:
        STATE.tried = True
        if STATE.installed:
            return
        try:
            if _pipe is None:
                read_end, write_end = os.pipe()
                os.set_blocking(write_end, False)  # set_wakeup_fd requires it; the reader blocks
                _pipe = (read_end, write_end)
                threading.Thread(target=_watch, args=(read_end,), name="wasmforge-sigint", daemon=True).start()
            previous = signal.set_wakeup_fd(_pipe[1], warn_on_full_buffer=False)
        except (ValueError, OSError) as error:  # e.g. Windows, which wants a socket
            log.debug("Ctrl-C cannot stop plugin calls: %s", error)
            return
        if previous not in (-1, _pipe[1]):
            signal.set_wakeup_fd(previous)  # the program's own (asyncio's, say): leave it to it
            log.debug("Ctrl-C cannot stop plugin calls: the program has its own signal wakeup descriptor")
            return
        STATE.installed = True


def _watch(read_end: int) -> None:
    while True:
        try:
            data = os.read(read_end, 64)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        if signal.SIGINT in data:
            _on_sigint_byte()


def _on_sigint_byte() -> None:
    """The watcher's part: stop the main thread's wasm, unless Python already handled this SIGINT."""
    if STATE.python_handled:
        STATE.python_handled = False
        return
    if interrupt_main():
        STATE.watcher_acted = True


def interrupt_main() -> bool:
    """Stops the wasm the main thread is running, if any; True if there was some."""
    store = _main_thread_store()
    entry = _stores.get(store) if store is not None else None
    if entry is None:
        return False
    engine, epochs = entry
    STATE.engine = weakref.ref(engine)
    STATE.interrupts += 1
    STATE.main = object()  # idle main-thread stores re-arm before their next call
    for _ in range(epochs):
        engine.increment_epoch()
    return True


def _main_thread_store() -> Optional[wasmtime.Store]:
    """The store of the wasm call the main thread is in (a host function it calls may be on top)."""
    frame = sys._current_frames().get(MAIN_THREAD or 0)
    depth = 0
    while frame is not None and depth < 100:
        if frame.f_code.co_filename == FAST_CALL_FILE:
            # A FastFunc's call is in wasm as long as its frame lives; a call that inlines it
            # (fastcall.inline_call) only while its local ``calling`` holds the store.
            code = frame.f_code
            store = frame.f_locals.get("calling") if "calling" in code.co_varnames else frame.f_globals.get("_store")
            if isinstance(store, wasmtime.Store):
                return store
        frame, depth = frame.f_back, depth + 1
    return STATE.slow


def _after_fork_in_child() -> None:
    """The watcher thread did not survive the fork: start afresh at the next load."""
    global _pipe
    if _pipe is not None:
        if STATE.installed:
            try:
                signal.set_wakeup_fd(-1)
            except ValueError:
                pass
        for fd in _pipe:
            try:
                os.close(fd)
            except OSError:
                pass
    _pipe = None
    STATE.installed = STATE.tried = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
