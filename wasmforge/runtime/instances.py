"""Who holds a plugin's instances: one behind a lock, or a pool of several.

Every call needs an instance to itself (a wasmtime store is not thread-safe,
and the GIL is released while wasm runs). :class:`SingleInstance` keeps one,
behind a re-entrant lock (a host function may call back into the plugin);
:class:`InstancePool` keeps ``instances=N`` of them, so N threads run wasm at
once. Either makes a fresh instance after a trap (the old one is discarded:
its state is unknown), refuses calls once closed, and cancels running calls
(:meth:`Instances.cancel`).

Taking an instance must survive Ctrl-C: Python raises KeyboardInterrupt at
the first check after a C call returns, which may be right after the lock or
the pooled instance was taken and before anyone holds it. The single
instance's lean call paths therefore release the lock only if this thread
owns it (:attr:`SingleInstance.owned`), and :meth:`acquire` hands what it
takes to the caller in C, before Python can interrupt (see its docstring).
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterator, Optional, Union

from ..errors import OptionError, UsageError
from .fastcall import FAST_CALL_FILE
from .instance import LiveInstance
from .loaded import LoadedPlugin

#: More instances than this is a mistake, not a pool: each reserves its memory's address space.
MAX_INSTANCES = 1024
#: Put in a closed pool: whoever waits for an instance gets this instead.
_CLOSED = object()
#: The argument a blocking queue get takes: get(True).
_BLOCK = (True,)
#: How often a thread that ended the solo path checks whether its calls have returned.
_DRAIN_POLL = 0.0002
#: The solo path relies on the GIL to order its announcement (free-threaded Python has none).
_HAS_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()


class Instances:
    """What the call paths need from whoever holds the instances: take one, give it back, discard it, cancel."""

    count: int

    def __init__(self, loaded: LoadedPlugin) -> None:
        self.loaded = loaded
        self.closed = False
        #: How many times :meth:`cancel` was called: a call that saw this change was cancelled.
        self.cancels = 0
        _held.add(self)

    def acquire(self, taken: list[object]) -> LiveInstance:
        """An instance for one call, exclusively; it goes back with :meth:`release` of the same ``taken``.

        What is taken (the lock, the pooled instance) is put into the caller's empty list
        ``taken`` by C code (``list.extend`` over a ``map``), in the same step that takes it,
        so a KeyboardInterrupt Python raises right after cannot lose it: the caller's
        ``finally: release(taken)`` gives back whatever ``taken`` holds.
        """
        raise NotImplementedError

    def release(self, taken: list[object]) -> None:
        raise NotImplementedError

    def discard(self, live: LiveInstance) -> None:
        """After a trap the instance's state is unknown: the next call starts on a fresh one."""
        live.discarded = True

    def single(self, what: str) -> "contextlib.AbstractContextManager[LiveInstance]":
        """The one instance, for ``plugin.memory``; UsageError for a pool, whose instances each have their own."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def cancel(self) -> None:
        """Interrupts the calls running now (they raise PluginCancelled); later calls run normally."""
        limits = self.loaded.limits
        if not limits.uses_epochs:
            raise UsageError(f"{self.loaded.name} was not loaded to be cancellable; pass cancellable=True or timeout=")
        self.cancels += 1
        # Running calls trap once the epoch passes their deadline, at most deadline_ticks away
        # (never more than MAX_DEADLINE_EPOCHS + 1, however long the time limit: see Limits.epoch_period).
        for _ in range(limits.deadline_ticks):
            self.loaded.engine.increment_epoch()

    def closed_error(self) -> UsageError:
        return UsageError(f"plugin {self.loaded.name} is closed")

    def start_clean(self) -> None:
        """In a forked child: what the parent's threads held is gone; the next call starts on a fresh instance."""


class SingleInstance(Instances):
    """One instance behind a re-entrant lock; the lean call paths use :attr:`lock` and :attr:`current` directly.

    **The solo path.** As long as one thread alone has called, its lean calls (native and
    buffer) take no lock: the first thread to call claims the plugin (:attr:`solo` becomes its
    id). The first call from any other thread, or any other thread's use of the lock
    (``plugin.memory``, ``close()``), ends the solo path for good (:meth:`claim`: :attr:`solo`
    becomes 0, :attr:`undrained` True), and whoever then takes the lock waits, without holding
    it, until the solo calls still running have returned (:meth:`drain`).

    How a solo call is seen running differs by path, so the native one, which a scalar call
    takes, costs no more than reading :attr:`solo`. A lean native call runs in a frame of the
    code function.py generates (file ``FAST_CALL_FILE``, this holder as its global ``holder``)
    from before it reads :attr:`solo` until it returns: :meth:`drain` looks for such frames in
    the former solo thread's stack. A lean buffer call announces itself instead, raising
    :attr:`depth` (only the solo thread changes it) and then re-reading :attr:`solo`; the
    other thread sets :attr:`solo` and then reads :attr:`depth` (Dekker's). The GIL orders
    these bytecodes (the solo path is off on a Python without it), so one of the two always
    sees the other.
    """

    count = 1

    def __init__(self, loaded: LoadedPlugin) -> None:
        super().__init__(loaded)
        self.lock = threading.RLock()
        #: Whether the calling thread holds :attr:`lock` (at any depth): after a KeyboardInterrupt,
        #: whether the lock was taken. threading.Condition asks an RLock the same way.
        self.owned: Callable[[], bool] = self.lock._is_owned  # type: ignore[attr-defined]
        #: The instance serving calls; None after a trap (or once closed) until the next call makes one.
        self.current: Optional[LiveInstance] = LiveInstance(loaded)  # fail at load, not at the first call
        #: The thread whose lean calls take no lock; None until a thread calls, 0 once another has.
        self.solo: Optional[int] = None if _HAS_GIL else 0
        #: Lock-free buffer calls of the solo thread running now (nested ones count too).
        self.depth = 0
        #: The solo path has ended and its calls may still be running: whoever takes the lock must :meth:`drain`.
        self.undrained = False
        #: The thread that was solo before :meth:`claim` ended it: its nested calls never wait for itself.
        self.former: Optional[int] = None
        self._claiming = threading.Lock()

    def claim(self, me: int) -> bool:
        """True if thread ``me`` may call without the lock (it is, or now becomes, the solo thread).

        Otherwise the solo path is over (if it was not yet): callers take the lock and :meth:`drain`.
        """
        with self._claiming:
            if self.solo is None:
                self.solo = me
                return True
            if self.solo == me:
                return True
            if self.solo:
                self.former, self.solo, self.undrained = self.solo, 0, True
            return False

    def drain(self, me: int) -> None:
        """With :attr:`lock` held: waits (not holding it) until no solo call runs any more.

        The former solo thread itself never waits: a host function of its solo call may call
        the plugin again (it then takes the lock, which nobody else holds while they wait here).
        Once no solo call runs, none can start again (:attr:`solo` is 0): later calls skip this.
        """
        while self.undrained and me != self.former and me != self.solo:
            if not self.depth and not self._in_lean_call(self.former):
                self.undrained = False
                return
            self.lock.release()
            try:
                time.sleep(_DRAIN_POLL)
            finally:
                self.lock.acquire()

    def _in_lean_call(self, thread: Optional[int]) -> bool:
        """Whether ``thread`` is inside a lean native call of this holder that took no lock.

        Such a call is a frame of the generated ``call`` (the class docstring says how it shows).
        A ``call`` that handed over to its ``locked`` half (its inner frame) went through the
        lock, like every call the former solo thread makes once the solo path has ended: it is
        not waited for, or a thread that calls on and on would keep the others out.
        """
        frame = sys._current_frames().get(thread) if thread else None
        inner_is_locked = False
        while frame is not None:
            ours = frame.f_code.co_filename == FAST_CALL_FILE and frame.f_globals.get("holder") is self
            if ours and frame.f_code.co_name == "call" and not inner_is_locked:
                return True
            inner_is_locked = ours and frame.f_code.co_name == "locked"
            frame = frame.f_back
        return False

    def enter(self) -> int:
        """Before any use of :attr:`lock` outside the lean native path: the solo path ends, unless
        the caller is the solo thread itself. Returns the caller's id, for :meth:`drain`."""
        me = threading.get_ident()
        if self.solo != 0 and self.solo != me:
            self.claim(me)
        return me

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The lock, after the solo path ended and its running calls returned."""
        me = self.enter()
        with self.lock:
            self.drain(me)
            yield

    def start_clean(self) -> None:
        # Re-initialised in place: the call paths hold this very lock's methods.
        self.lock._at_fork_reinit()  # type: ignore[attr-defined]
        # The solo path starts over: a parent thread that was inside a solo call is not in the child,
        # and its announcement must not make the child's calls wait for it forever.
        self._claiming = threading.Lock()
        self.solo, self.depth, self.former, self.undrained = (None if _HAS_GIL else 0), 0, None, False
        _inherited.append(self.current)  # kept, never freed here: another thread of the parent may have been in it
        self.current = None

    def renew(self) -> LiveInstance:
        """A fresh instance in place of a discarded one (the caller holds the lock); UsageError once closed."""
        if self.closed:
            raise self.closed_error()
        self.current = LiveInstance(self.loaded)
        return self.current

    def acquire(self, taken: list[object]) -> LiveInstance:
        me = self.enter()
        taken.extend(map(self.lock.acquire, _BLOCK))
        self.drain(me)
        live = self.current
        return live if live is not None else self.renew()

    def release(self, taken: list[object]) -> None:
        if taken:
            self.lock.release()

    def discard(self, live: LiveInstance) -> None:
        live.discarded = True
        if self.current is live:
            self.current = None

    @contextlib.contextmanager
    def single(self, what: str) -> Iterator[LiveInstance]:
        with self.locked():
            live = self.current
            yield live if live is not None else self.renew()

    def close(self) -> None:
        with self.locked():
            self.closed = True
            self.current = None


class InstancePool(Instances):
    """``count`` instances, each serving one call at a time; made as calls need them (one at load)."""

    def __init__(self, loaded: LoadedPlugin, count: int) -> None:
        super().__init__(loaded)
        self.count = count
        # Idle instances; None stands for one not made yet (or thrown away), and after
        # close() the _CLOSED marker, which wakes every thread waiting for one.
        self._idle: "queue.SimpleQueue[Union[LiveInstance, None, object]]" = queue.SimpleQueue()
        self._idle.put(LiveInstance(loaded))  # fail at load, not at the first call
        for _ in range(count - 1):
            self._idle.put(None)

    def acquire(self, taken: list[object]) -> LiveInstance:
        if self.closed:
            raise self.closed_error()
        taken.extend(map(self._idle.get, _BLOCK))
        live = taken[0]
        if live is _CLOSED:
            raise UsageError(f"plugin {self.loaded.name} was closed while this call waited for an instance")
        if live is None:
            live = taken[0] = LiveInstance(self.loaded)  # on failure, release() puts the None back
        assert isinstance(live, LiveInstance)
        return live

    def release(self, taken: list[object]) -> None:
        if not taken:
            return
        live = taken[0]
        if live is _CLOSED:
            self._idle.put(_CLOSED)  # each waiter takes it, puts it back for the next, and raises
        elif not self.closed:
            self._idle.put(live if isinstance(live, LiveInstance) and not live.discarded else None)
            if self.closed:  # closed while we put it back: it must not stay
                self._empty()

    def start_clean(self) -> None:
        _inherited.append(self._idle)
        self._idle = queue.SimpleQueue()
        for _ in range(self.count):
            self._idle.put(_CLOSED if self.closed else None)

    def single(self, what: str) -> "contextlib.AbstractContextManager[LiveInstance]":
        raise UsageError(f"{self.loaded.name} has {self.count} instances, each with its own {what}; "
                         "load it with instances=1 to use plugin.memory")

    def close(self) -> None:
        """Idle instances go now, busy ones when their calls end (see :meth:`release`)."""
        self.closed = True
        self._empty()

    def _empty(self) -> None:
        while True:
            try:
                self._idle.get_nowait()
            except queue.Empty:
                break
        self._idle.put(_CLOSED)


#: Every holder of instances in this process, so a forked child can start each one clean.
_held: "weakref.WeakSet[Instances]" = weakref.WeakSet()
#: What a forked child inherited from the parent's holders: kept, not freed, as the parent's threads may have
#: been using it at the fork.
_inherited: list[Any] = []


def _after_fork_in_child() -> None:
    for holder in list(_held):
        holder.start_clean()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def hold_instances(loaded: LoadedPlugin, count: int) -> Instances:
    """The holder for ``count`` instances of ``loaded`` (1: a lock; more: a pool); one instance is made now."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_INSTANCES:
        raise OptionError(f"instances must be a whole number of 1 or more (at most {MAX_INSTANCES}), got {count!r}")
    return SingleInstance(loaded) if count == 1 else InstancePool(loaded, count)
