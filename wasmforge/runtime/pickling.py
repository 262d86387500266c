"""Plugins pickle by content, so process pools, Dask and Ray can carry them.

A pickled plugin is its module's bytes, their sha256 and how it was loaded
(limits, instances, output, host functions): its :class:`Recipe`. Unpickling
checks the hash, compiles through the compiled-module cache (keyed by the
content, so a process that has seen the module pays no compile) and keeps the
plugin it made: the same recipe unpickled again in that process is the same
open plugin. That is what makes ``pool.map(plugin.add, ...)`` and
``bag.map(plugin.transform)`` load a plugin once per worker, not per task.

Instances, stores and memories never travel: the plugin on the other side
starts on a fresh instance. A forked child forgets the parent's restored
plugins (its own loads start clean).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import io
import os
import pickle
import threading
import types
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping, Optional

from ..limits import Limits
from .compiled import Compiled, compiled_file

#: Unpickled plugins a process keeps open, most recently used last.
KEPT_PLUGINS = 16

_kept: "collections.OrderedDict[tuple[Any, ...], Any]" = collections.OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True, eq=False)
class Recipe:
    """How to load a plugin again: its bytes and its load options. Pickles as the plugin it makes."""

    #: What makes the plugin from the rest (wasmforge.runtime.plugin's restore function).
    make: Callable[..., Any]
    data: bytes
    name: str
    path: Optional[Path]
    limits: Limits
    instances: int
    host_functions: Mapping[str, Callable[..., Any]]
    stdout: Any
    stderr: Any

    def __repr__(self) -> str:
        # What a bound export shows: <bound method add of plugin demo_plugin.wasm>.
        return f"plugin {self.name}"

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def __reduce__(self) -> tuple[Any, ...]:
        unpicklable = [f"host function {name!r}" for name, fn in self.host_functions.items() if not _picklable(fn)]
        unpicklable += [f"{stream}={value!r}" for stream, value in (("stdout", self.stdout), ("stderr", self.stderr))
                        if not _picklable(value)]
        if unpicklable:
            raise pickle.PicklingError(
                f"cannot pickle plugin {self.name}: {', '.join(unpicklable)} cannot be pickled; define host functions "
                "at module level (or as functools.partial of such functions) and pass picklable output sinks, "
                "or load the plugin in each process instead"
            )
        return restore, (self.make, self.data, self.sha256, self.name, self.path, self.limits, self.instances,
                         dict(self.host_functions), self.stdout, self.stderr)


def _picklable(value: Any) -> bool:
    try:
        pickle.dump(value, _Discard())
    except Exception:  # noqa: BLE001 - whatever pickle raises, the answer is no
        return False
    return True


class _Discard(io.RawIOBase):
    """A file that drops what is written: for asking whether something pickles without keeping the bytes."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def unwrap(value: Any) -> Any:
    """What ``Plugin.__reduce__`` unpickles through: its recipe, unpickled, is already the plugin."""
    return value


def restore(make: Callable[..., Any], data: bytes, sha256: str, name: str, path: Optional[Path], limits: Limits,
            instances: int, host_functions: Mapping[str, Callable[..., Any]], stdout: Any, stderr: Any) -> Any:
    """The plugin a :class:`Recipe` pickled: the one this process made from it already, while it is open."""
    # The hash is checked before anything is compiled, whatever the cache holds (check_sha256 in make).
    key = (sha256, name, limits, instances, tuple((k, id(v)) for k, v in host_functions.items()),
           _identity(stdout), _identity(stderr), make)
    with _lock:
        kept = _kept.get(key)
        if kept is not None and not kept.closed:
            _kept.move_to_end(key)
            return kept
    plugin = make(data, sha256=sha256, name=name, path=path, limits=limits, instances=instances,
                  host_functions=host_functions, stdout=stdout, stderr=stderr)
    with _lock:
        _kept[key] = plugin
        _kept.move_to_end(key)
        while len(_kept) > KEPT_PLUGINS:
            _kept.popitem(last=False)
    return plugin


def _identity(sink: Any) -> Any:
    """What tells two output settings apart: None and "inherit" by value, anything else as the object it is."""
    return sink if sink is None or isinstance(sink, str) else id(sink)


def compiled_content(data: bytes, sha256: str, name: str, limits: Limits) -> Compiled:
    """The compiled module for these bytes, through the in-memory cache keyed by their hash (then the disk cache)."""
    return compiled_file(PurePosixPath(f"<sha256:{sha256}>"), data, name, limits)


def _after_fork_in_child() -> None:
    """The parent's unpickled plugins stay the parent's: a forked child unpickles into plugins of its own."""
    global _lock
    _lock = threading.Lock()
    _kept.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def bind(unbound: Callable[..., Any], recipe: Recipe) -> Callable[..., Any]:
    """``plugin.NAME``: the export's call path (PluginFunction.unbound) as a method of the plugin's recipe.

    A method pickles as ``getattr(recipe, NAME)``, and the recipe as the plugin (by content), so
    ``pickle.loads`` gives the same export of the same plugin; calling it costs no more than the
    function itself. Its name, doc and signature are the function's.
    """
    return types.MethodType(unbound, recipe)
