"""Loading plugins: :func:`load` and :class:`Plugin`.

A Plugin owns a compiled module, its own engine (configured for exactly the
limits it uses) and one live instance. Calls go through
:class:`~wasmforge._function.PluginFunction`, built once per export.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import re
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import wasmtime

from . import _interrupt
from .abi import wasmtypes as _wasmtypes
from .abi.wasmfile import check_module_size, read_plugin_file
from ._compiled import Compiled, compile_plugin, compiled_file, engine_for, export_signatures
from ._compiled import compile_module as _compile_module
from ._text import format_bytes
from ._function import PluginFunction
from ._imports import HostFunctionsArg, ImportPlan, OutputSink, normalize_host_functions
from ._live import LiveInstance, MemoryView
from .abi.signature import Signature, raw_signature
from .errors import MemoryAccessError, PluginIntegrityError, PluginLoadError, UnknownFunctionError, UsageError
from .limits import (
    DEFAULT_MAX_MODULE_SIZE,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_MEMORY_LIMIT,
    Limits,
    SizeLike,
    parse_size,
)

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
#: More instances than this is a mistake, not a pool: each reserves its memory's address space.
MAX_INSTANCES = 1024
#: Put in a closed plugin's pool of instances: whoever waits for an instance gets this instead.
_CLOSED = object()

def default_engine() -> wasmtime.Engine:
    """The shared engine with no limits compiled in: for checking modules without running them."""
    return engine_for(Limits())


def compile_module(data: bytes, source: str, engine: Optional[wasmtime.Engine] = None, *, cache: bool = True) -> wasmtime.Module:
    """Compiles ``data`` (for the shared engine by default); PluginLoadError naming ``source`` if invalid."""
    return _compile_module(data, source, engine or default_engine(), cache=cache)


def load(
    path: PathLike,
    *,
    host_functions: HostFunctionsArg = None,
    stdout: OutputSink = None,
    stderr: OutputSink = None,
    timeout: Optional[float] = None,
    memory_limit: SizeLike = DEFAULT_MEMORY_LIMIT,
    fuel: Optional[int] = None,
    cancellable: bool = False,
    sha256: Optional[str] = None,
    max_module_size: SizeLike = DEFAULT_MAX_MODULE_SIZE,
    instances: int = 1,
    interruptible: bool = True,
    max_output: SizeLike = DEFAULT_MAX_OUTPUT,
) -> "Plugin":
    """Loads the plugin at ``path``.

    - ``host_functions``: what the plugin imports; a mapping of name to callable,
      a :class:`HostFunctions` registry, or a list of functions named by ``__name__``.
    - ``stdout``/``stderr``: a WASI plugin's output. Default: Python's
      ``sys.stdout``/``sys.stderr``; a callable taking bytes or a file object
      captures it; ``"inherit"`` uses the process's own descriptors.
    - ``timeout``: seconds a call may run before it raises PluginTimeout.
    - ``memory_limit``: bytes (or "64MiB") of linear memory; None for no limit.
    - ``fuel``: a per-call budget, about one unit per wasm instruction.
    - ``cancellable``: allow :meth:`Plugin.cancel` (implied by ``timeout``).
    - ``sha256``: refuse the file unless its hash is this hex digest.
    - ``max_module_size``: refuse files larger than this.
    - ``instances``: how many instances may run calls at once, from as many
      threads (the GIL is released while wasm runs).
    - ``interruptible``: Ctrl-C (SIGINT) stops a call running on the main
      thread, which raises KeyboardInterrupt. False saves the epoch checks this
      compiles into the plugin's code (docs/PERFORMANCE.md) and Ctrl-C waits for the call.
    - ``max_output``: bytes a call may write to each of stdout and stderr
      (WASI, not ``"inherit"``); the rest is dropped with a warning.
    """
    limits = Limits(timeout=timeout, memory=parse_size(memory_limit, "memory_limit"), fuel=fuel,
                    cancellable=cancellable, max_module_size=parse_size(max_module_size, "max_module_size"),
                    interruptible=interruptible, max_output=parse_size(max_output, "max_output"))
    file = Path(path)
    data = read_plugin_file(file, limits.max_module_size)
    if sha256 is not None:
        check_sha256(data, sha256, file.name)
    # Remembered per path, but only ever for these very bytes: what runs is what was read (and pinned).
    compiled = compiled_file(file.absolute(), data, file.name, limits)
    return Plugin(compiled, name=file.name, path=file, host_functions=host_functions, stdout=stdout, stderr=stderr,
                  limits=limits, instances=instances)


_LIMIT_OPTIONS = {"timeout": "timeout", "memory_limit": "memory", "fuel": "fuel", "cancellable": "cancellable",
                  "max_module_size": "max_module_size", "interruptible": "interruptible", "max_output": "max_output"}
_SIZE_OPTIONS = ("memory", "max_module_size", "max_output")
_PASSED_OPTIONS = ("host_functions", "stdout", "stderr", "instances")


def plugin_options(options: Mapping[str, Any], base: Optional[Limits] = None) -> dict[str, Any]:
    """:func:`load`'s keyword options as :meth:`Plugin.from_bytes` takes them (limits over ``base``).

    For code that loads a plugin many times, such as :class:`~wasmforge.HotPlugin`.
    """
    unknown = set(options) - set(_LIMIT_OPTIONS) - set(_PASSED_OPTIONS)
    if unknown:
        raise TypeError(f"unknown plugin option(s): {', '.join(sorted(unknown))}; "
                        f"use {', '.join([*_PASSED_OPTIONS, *_LIMIT_OPTIONS])}")
    base = base or Limits()
    limits = {field: getattr(base, field) for field in _LIMIT_OPTIONS.values()}
    for option, field in _LIMIT_OPTIONS.items():
        if option in options:
            value = options[option]
            limits[field] = parse_size(value, option) if field in _SIZE_OPTIONS else value
    return {**{k: options[k] for k in _PASSED_OPTIONS if k in options}, "limits": Limits(**limits)}


def check_sha256(data: bytes, expected: str, source: str) -> None:
    """PluginIntegrityError unless ``data`` hashes to ``expected``; UsageError if that is not a sha256 at all."""
    if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", expected.strip()):
        raise UsageError(f"sha256 must be 64 hexadecimal digits (as `sha256sum FILE` prints), got {expected!r}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.strip().lower():
        raise PluginIntegrityError(
            f"{source} does not match its pinned sha256: expected {expected.strip().lower()}, got {actual}; "
            "refusing to load it"
        )


class PluginMemory:
    """Bounds-checked access to a plugin's linear memory.

    ``plugin.memory`` is memory 0, whatever name it is exported under (or the
    memory wasmforge made for a module that imports one); ``plugin.memories[name]``
    is any exported memory.
    """

    def __init__(self, plugin: "Plugin", name: Optional[str] = None) -> None:
        self._plugin = plugin
        #: The export's name; None for memory 0.
        self.name = name

    def _live(self, live: LiveInstance) -> Union[LiveInstance, MemoryView]:
        if self.name is None:
            return live
        view = live.with_memory(self.name)
        if view is None:
            raise MemoryAccessError(f"{self._plugin.name} exports no memory {self.name!r}")
        return view

    @property
    def size(self) -> int:
        """The memory's current size in bytes."""
        with self._plugin._single_instance("memory") as live:
            return self._live(live).memory_size

    def read(self, offset: int, length: int) -> bytes:
        with self._plugin._single_instance("memory") as live:
            return self._live(live).read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        with self._plugin._single_instance("memory") as live:
            self._live(live).write(offset, bytes(data))

    def __repr__(self) -> str:
        shown = f" {self.name!r}" if self.name is not None else ""
        return f"<PluginMemory{shown} of {self._plugin.name}: {self.size} bytes>"


class Plugin:
    """A loaded plugin. Call exports with :meth:`call` or as attributes: ``plugin.add(1, 2)``."""

    def __init__(
        self,
        compiled: Compiled,
        *,
        name: str,
        path: Optional[Path] = None,
        host_functions: HostFunctionsArg = None,
        stdout: OutputSink = None,
        stderr: OutputSink = None,
        limits: Limits = Limits(),
        instances: int = 1,
    ) -> None:
        if not isinstance(instances, int) or isinstance(instances, bool) or not 1 <= instances <= MAX_INSTANCES:
            raise UsageError(f"instances must be a whole number of 1 or more (at most {MAX_INSTANCES}), got {instances!r}")
        self.name = name
        self.path = path
        self.limits = limits
        self.instances = instances
        self._module = compiled.module
        self._engine = compiled.engine
        self._export_names = compiled.export_names
        self._memory_exports = compiled.memory_exports
        # One instance: a re-entrant lock (a host function may call back in). Several: a
        # queue of idle instances, None standing for one not made yet (or thrown away),
        # and after close() the _CLOSED marker, which wakes every thread waiting for one.
        self._lock = threading.RLock()
        self._pool: Optional["queue.SimpleQueue[Union[LiveInstance, None, object]]"] = None
        if instances > 1:
            self._pool = queue.SimpleQueue()
            for _ in range(instances):
                self._pool.put(None)
        self._closed = False
        self._cancels = 0
        #: The wire contract version the plugin was built for; None for plain wasm.
        self.wire_version = compiled.metadata.version
        self._signatures = compiled.signatures
        self._imports = ImportPlan.build(
            compiled.imports, name, compiled.metadata.imports, normalize_host_functions(host_functions),
            stdout, stderr, compiled.main_memory, limits.max_output,
        )
        #: Whether calls need more than the lean path: limits to arm, or output to forward.
        self._guarded = limits.uses_epochs or limits.fuel is not None or self._imports.captures_output
        if limits.epoch_checks:
            _interrupt.install()  # Ctrl-C reaches wasm on the main thread from now on
        self._functions: dict[str, PluginFunction] = {}
        self._raw_functions: dict[str, PluginFunction] = {}
        #: Exports bound as plain attributes (``plugin.add``), so close() unbinds exactly those.
        self._attributes: set[str] = set()
        self._current: Optional[LiveInstance] = None
        first = LiveInstance(self)  # fail at load, not at the first call
        if self._pool is None:
            self._current = first
        else:
            self._pool.get()
            self._pool.put(first)
        self.memory = PluginMemory(self)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        name: str = "<bytes>",
        path: Optional[Path] = None,
        host_functions: HostFunctionsArg = None,
        stdout: OutputSink = None,
        stderr: OutputSink = None,
        limits: Optional[Limits] = None,
        sha256: Optional[str] = None,
        instances: int = 1,
    ) -> "Plugin":
        """Loads a plugin from the bytes of a .wasm module (options as for :func:`load`)."""
        limits = limits or Limits()
        check_module_size(data, limits.max_module_size, name)
        if sha256 is not None:
            check_sha256(data, sha256, name)
        return cls(compile_plugin(data, name, limits), name=name, path=path, host_functions=host_functions,
                   stdout=stdout, stderr=stderr, limits=limits, instances=instances)

    # ---- the public surface ----

    @property
    def exports(self) -> Mapping[str, Signature]:
        """Every callable export: name -> signature."""
        return dict(self._signatures)

    @property
    def imports(self) -> Mapping[str, Signature]:
        """Host functions the plugin declared with #[host_fn]: name -> signature."""
        return {p.name: p.signature for p in self._imports.functions}

    @property
    def uses_wasi(self) -> bool:
        return self._imports.wasi

    def call(self, name: str, *args: Any) -> Any:
        """Calls export ``name`` with Python values and returns a Python value."""
        return self.function(name)(*args)

    def function(self, name: str) -> PluginFunction:
        """The callable for export ``name``, built once."""
        function = self._functions.get(name)
        if function is None:
            signature = self._signatures.get(name)
            if signature is None:
                raise UnknownFunctionError(self._unknown(name))
            if self._closed:
                raise UsageError(f"plugin {self.name} is closed")
            function = PluginFunction(self, signature)
            self._functions[name] = function
            if name.isidentifier() and not name.startswith("__") and not hasattr(type(self), name) \
                    and name not in self.__dict__:
                # Next time `plugin.NAME` is a plain attribute: no __getattr__, no method hop.
                self.__dict__[name] = function.call
                self._attributes.add(name)
        return function

    def call_raw(self, name: str, *numbers: Any) -> Any:
        """Calls any export with plain wasm numbers, for plugins not made with wasmforge."""
        function = self._raw_functions.get(name)
        if function is None:
            function = self._raw_function(name)
        return function.call(*numbers)

    def _raw_function(self, name: str) -> PluginFunction:
        """The raw-number call of export ``name``, built once (on the same fast path as typed calls)."""
        if self._closed:
            raise UsageError(f"plugin {self.name} is closed")
        func_type = next((e.type for e in self._module.exports if e.name == name), None)
        if not isinstance(func_type, wasmtime.FuncType):
            raise UnknownFunctionError(self._unknown(name))
        function = PluginFunction(self, raw_signature(name, *_wasmtypes.func_type(func_type)))
        self._raw_functions[name] = function
        return function

    @property
    def memories(self) -> Mapping[str, PluginMemory]:
        """Every exported memory by name (``plugin.memory`` is memory 0, whatever its name)."""
        return {name: PluginMemory(self, name) for name in self._memory_exports}

    def cancel(self) -> None:
        """Interrupts the calls running in this plugin now, from any thread: they raise PluginCancelled.

        Needs ``cancellable=True`` or a ``timeout`` at load. Calls made later run normally.
        """
        if not self.limits.uses_epochs:
            raise UsageError(f"{self.name} was not loaded to be cancellable; pass cancellable=True or timeout=")
        self._cancels += 1
        # Running calls trap once the epoch passes their deadline, at most deadline_ticks away
        # (never more than MAX_DEADLINE_EPOCHS + 1, however long the time limit: see Limits.epoch_period).
        for _ in range(self.limits.deadline_ticks):
            self._engine.increment_epoch()

    def close(self) -> None:
        """Frees the instance(s); later calls raise. Safe to call twice."""
        with self._lock:
            self._closed = True
            self._current = None
            for name in self._attributes:
                self.__dict__.pop(name, None)
            self._attributes.clear()
            self._functions.clear()
            self._raw_functions.clear()
        self._empty_pool()

    def _empty_pool(self) -> None:
        """After close(): idle instances go now, busy ones when their calls end (see _release)."""
        if self._pool is None:
            return
        while True:
            try:
                self._pool.get_nowait()
            except queue.Empty:
                break
        self._pool.put(_CLOSED)  # each waiter takes it, puts it back for the next, and raises

    def __enter__(self) -> "Plugin":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only for names not found otherwise; "_x" only when it is an export (Emscripten's _malloc),
        # so Python's own probes (__deepcopy__, _repr_html_) stay plain AttributeErrors.
        signatures = self.__dict__.get("_signatures")
        if name.startswith("__") or signatures is None or name.startswith("_") and name not in signatures:
            raise AttributeError(name)
        return self.function(name).call

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._signatures))

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._signatures)} exports"
        return f"<Plugin {self.name}: {state}>"

    def __iter__(self) -> Iterator[str]:
        return iter(self._signatures)

    # ---- internals ----

    def _unknown(self, name: str) -> str:
        known = ", ".join(sorted(self._signatures)) or "none"
        return f"{self.name} has no function {name!r}; its functions: {known}"

    def _live(self) -> LiveInstance:
        """The single instance (made afresh after a trap); the caller holds ``_lock``."""
        if self._closed:
            raise UsageError(f"plugin {self.name} is closed")
        if self._current is None:
            self._current = LiveInstance(self)
        return self._current

    def _acquire(self) -> LiveInstance:
        """An instance for one call, exclusively; give it back with :meth:`_release`."""
        if self._pool is None:
            self._lock.acquire()
            try:
                return self._live()
            except BaseException:
                self._lock.release()
                raise
        if self._closed:
            raise UsageError(f"plugin {self.name} is closed")
        live = self._pool.get()
        if live is _CLOSED:
            self._pool.put(_CLOSED)
            raise UsageError(f"plugin {self.name} was closed while this call waited for an instance")
        if live is None:
            try:
                live = LiveInstance(self)
            except BaseException:
                self._pool.put(None)
                raise
        assert isinstance(live, LiveInstance)
        return live

    def _release(self, live: LiveInstance) -> None:
        if self._pool is None:
            self._lock.release()
        elif not self._closed:
            self._pool.put(None if live.discarded else live)
            if self._closed:  # closed while we put it back: it must not stay
                self._empty_pool()

    def _discard_instance(self, live: LiveInstance) -> None:
        """After a trap the instance's state is unknown: the next call starts afresh."""
        live.discarded = True
        if self._current is live:
            self._current = None

    @contextlib.contextmanager
    def _single_instance(self, what: str) -> Iterator[LiveInstance]:
        if self._pool is not None:
            raise UsageError(f"{self.name} has {self.instances} instances, each with its own {what}; "
                             "load it with instances=1 to use plugin.memory")
        with self._lock:
            yield self._live()
