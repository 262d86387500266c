"""Engines: one configured for exactly the limits a plugin uses, and the ticker behind time limits.

Epoch checks and fuel are compiled into a plugin's code, so a plugin gets an
engine configured for exactly what it uses: one with ``interruptible=False``,
no time limit and no fuel runs code with neither. Plugins without epochs of
their own share one engine per configuration (so a module compiled once can be
instantiated again); plugins with a timeout or cancellation get an engine of
their own, because cancelling advances the epoch of every store in an engine.

Time limits use wasmtime's epoch interruption: one daemon thread
(:data:`TICKER`) advances the epoch of each engine that has timed calls
running, every ``TICK`` seconds (or every few ticks, for long time limits),
and a call traps once its deadline passes. The same mechanism cancels calls
from another thread, and stops a call on the main thread at Ctrl-C (see
interrupt.py).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Optional

import wasmtime

from ..limits import TICK, Limits

_engines: dict[tuple[bool, bool], wasmtime.Engine] = {}
_lock = threading.Lock()
#: Whether this process is a fork of one that may have compiled already: wasmtime's compiler threads
#: do not survive a fork, and compiling in parallel there waits for them forever.
_forked = False


def engine_config(limits: Limits) -> wasmtime.Config:
    """The configuration of an engine for plugins with these limits."""
    config = wasmtime.Config()
    config.epoch_interruption = limits.epoch_checks
    config.consume_fuel = limits.fuel is not None
    # Memories grow in place (wasmtime reserves the address space up front on 64-bit
    # hosts anyway), so the host's view of a memory stays valid across calls and a
    # buffer call saves re-reading the memory's base address and size.
    config.memory_may_move = False
    if _forked:
        config.parallel_compilation = False
    return config


def engine_for(limits: Limits) -> wasmtime.Engine:
    """A shared engine for the limits' configuration, or a new one where epochs must not be shared."""
    if limits.uses_epochs:
        return wasmtime.Engine(engine_config(limits))
    key = limits.engine_key
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = wasmtime.Engine(engine_config(limits))
        return engine


def default_engine() -> wasmtime.Engine:
    """The shared engine with no limits compiled in: for checking modules without running them."""
    return engine_for(Limits())


class EpochTicker:
    """Advances the epoch of every engine with timed calls running: every TICK seconds,
    or every ``period`` TICKs for an engine entered with a longer period.

    Idle (no timed call anywhere) it waits on a condition and costs nothing.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        #: engine -> [calls running, TICKs per epoch, TICKs since its epoch last advanced]
        self._active: "weakref.WeakKeyDictionary[wasmtime.Engine, list[int]]" = weakref.WeakKeyDictionary()
        self._thread: Optional[threading.Thread] = None

    def enter(self, engine: wasmtime.Engine, period: int = 1) -> None:
        with self._condition:
            entry = self._active.get(engine)
            if entry is None:
                self._active[engine] = [1, period, 0]
            else:
                entry[0] += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wasmforge-epoch", daemon=True)
                self._thread.start()
            self._condition.notify()

    def leave(self, engine: wasmtime.Engine) -> None:
        with self._condition:
            entry = self._active.get(engine)
            if entry is None:
                return
            entry[0] -= 1
            if entry[0] <= 0:
                self._active.pop(engine, None)

    def forget(self) -> None:
        """In a forked child: the thread and the calls it counted were the parent's."""
        self._condition = threading.Condition()
        self._active = weakref.WeakKeyDictionary()
        self._thread = None

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._active:
                    self._condition.wait()
            # A plain sleep, not a wait on the condition: a call starting must not
            # bring the next tick forward, or deadlines would come early.
            time.sleep(TICK)
            due = []
            with self._condition:
                for engine, entry in self._active.items():
                    entry[2] += 1
                    if entry[2] >= entry[1]:
                        entry[2] = 0
                        due.append(engine)
            for engine in due:
                engine.increment_epoch()


TICKER = EpochTicker()


def _after_fork_in_child() -> None:
    """A forked child makes engines of its own (compiling serially) and starts its own ticker."""
    global _lock, _forked
    _lock = threading.Lock()
    _engines.clear()
    _forked = True
    TICKER.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

