"""Loading plugins: :func:`load` and :class:`Plugin`, the public face of a loaded plugin.

A Plugin is made of two explicit objects: what the plugin is (a
:class:`~wasmforge.runtime.loaded.LoadedPlugin`: its compiled module, engine,
import plan, limits and name) and who holds its instances (a
:class:`~wasmforge.runtime.instances.Instances`: one behind a lock, or a
pool). Calls go through :class:`~wasmforge.runtime.function.PluginFunction`,
built once per export from those two.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Union

import wasmtime

from ..abi import wasmtypes
from ..abi.pytypes import RecordedType, python_signature
from ..abi.signature import Param, Signature, raw_signature
from ..abi.wasmfile import check_module_size, read_plugin_file
from ..errors import (
    ArgumentError,
    MemoryAccessError,
    OptionError,
    PluginIntegrityError,
    UnknownFunctionError,
    UsageError,
)
from ..limits import (
    DEFAULT_MAX_MODULE_SIZE,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_MEMORY_LIMIT,
    LIMIT_OPTIONS,
    Limits,
    SizeLike,
)
from . import interrupt, pickling
from .compiled import Compiled, compile_module, compile_plugin, compiled_file
from .engines import default_engine
from .function import PluginFunction
from .imports import HostFunctionsArg, normalize_host_functions
from .instance import LiveInstance, MemoryView
from .instances import MAX_INSTANCES, Instances, hold_instances
from .loaded import LoadedPlugin
from .wasi import OutputSink

__all__ = ["MAX_INSTANCES", "Plugin", "PluginMemory", "check_sha256", "compile_module", "default_engine", "load",
           "plugin_options"]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


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

    A value an option cannot take raises OptionError.
    """
    if timeout is None and fuel is None and cancellable is False and interruptible is True \
            and (memory_limit.__class__, max_module_size.__class__, max_output.__class__) == _INTS \
            and (memory_limit, max_module_size, max_output) == _DEFAULT_SIZES:
        limits = _DEFAULT_LIMITS  # load()'s defaults, checked once (a frozen dataclass: shared safely)
    else:
        limits = Limits.from_options({
            "timeout": timeout, "memory_limit": memory_limit, "fuel": fuel, "cancellable": cancellable,
            "max_module_size": max_module_size, "interruptible": interruptible, "max_output": max_output,
        })
    file = Path(path)
    data = read_plugin_file(file, limits.max_module_size)
    if sha256 is not None:
        check_sha256(data, sha256, file.name)
    # Remembered per absolute path (the working directory joined as Path.absolute() does, without its
    # cost), but only ever for these very bytes: what runs is what was read (and pinned).
    where = os.fspath(file)
    compiled = compiled_file(where if os.path.isabs(where) else os.path.join(os.getcwd(), where), data, file.name,
                             limits)
    return Plugin(compiled, name=file.name, path=file, host_functions=host_functions, stdout=stdout, stderr=stderr,
                  limits=limits, instances=instances, data=data)


#: load()'s size options at their defaults (plain ints), and the Limits all its defaults make.
_DEFAULT_SIZES = (DEFAULT_MEMORY_LIMIT, DEFAULT_MAX_MODULE_SIZE, DEFAULT_MAX_OUTPUT)
_INTS = (int, int, int)
_DEFAULT_LIMITS = Limits.from_options({
    "timeout": None, "memory_limit": DEFAULT_MEMORY_LIMIT, "fuel": None, "cancellable": False,
    "max_module_size": DEFAULT_MAX_MODULE_SIZE, "interruptible": True, "max_output": DEFAULT_MAX_OUTPUT,
})

#: load()'s options that are not limits: they go to :meth:`Plugin.from_bytes` as they are.
_PASSED_OPTIONS = ("host_functions", "stdout", "stderr", "instances")


def plugin_options(options: Mapping[str, Any], base: Optional[Limits] = None) -> dict[str, Any]:
    """:func:`load`'s keyword options as :meth:`Plugin.from_bytes` takes them (limits over ``base``).

    For code that loads a plugin many times, such as :class:`~wasmforge.HotPlugin`. An option
    :func:`load` does not have is an ArgumentError (a TypeError); a bad value an OptionError.
    """
    unknown = set(options) - set(LIMIT_OPTIONS) - set(_PASSED_OPTIONS)
    if unknown:
        raise ArgumentError(f"unknown plugin option(s): {', '.join(sorted(unknown))}; "
                            f"use {', '.join([*_PASSED_OPTIONS, *LIMIT_OPTIONS])}")
    limits = Limits.from_options({k: v for k, v in options.items() if k in LIMIT_OPTIONS}, base)
    return {**{k: options[k] for k in _PASSED_OPTIONS if k in options}, "limits": limits}


def check_sha256(data: bytes, expected: str, source: str) -> None:
    """PluginIntegrityError unless ``data`` hashes to ``expected``; OptionError if that is not a sha256 at all."""
    if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", expected.strip()):
        raise OptionError(f"sha256 must be 64 hexadecimal digits (as `sha256sum FILE` prints), got {expected!r}")
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

    def __init__(self, instances: Instances, name: Optional[str] = None) -> None:
        self._instances = instances
        #: The export's name; None for memory 0.
        self.name = name

    def _live(self, live: LiveInstance) -> Union[LiveInstance, MemoryView]:
        if self.name is None:
            return live
        view = live.with_memory(self.name)
        if view is None:
            raise MemoryAccessError(f"{self._instances.loaded.name} exports no memory {self.name!r}")
        return view

    @property
    def size(self) -> int:
        """The memory's current size in bytes."""
        with self._instances.single("memory") as live:
            return self._live(live).memory_size

    def read(self, offset: int, length: int) -> bytes:
        with self._instances.single("memory") as live:
            return self._live(live).read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        with self._instances.single("memory") as live:
            self._live(live).write(offset, bytes(data))

    def __repr__(self) -> str:
        shown = f" {self.name!r}" if self.name is not None else ""
        return f"<PluginMemory{shown} of {self._instances.loaded.name}: {self.size} bytes>"


#: The exports #[plugin_state] writes (docs/ABI.md, "State"), called as buffer functions.
_SAVE_STATE = Signature("__wf_state_save", (), "Vec<u8>", "buffer", "none", "bytes")
_RESTORE_STATE = Signature("__wf_state_restore", (Param("state", "Vec<u8>", None, "bytes"),), "()", "buffer", "bytes",
                           "unit")


class _PluginDoc:
    """``Plugin.__doc__`` is the class's docstring; a plugin's own is :meth:`Plugin.describe`, so
    ``help(plugin)`` lists its functions with their Python signatures and Rust doc comments."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __get__(self, plugin: Optional["Plugin"], owner: type) -> str:
        return self.text if plugin is None else plugin.describe()


class Plugin:
    """A loaded plugin. Call exports with :meth:`call` or as attributes: ``plugin.add(1, 2)``."""

    __doc__ = _PluginDoc(__doc__ or "")

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
        data: Optional[bytes] = None,
    ) -> None:
        functions = normalize_host_functions(host_functions)
        loaded = LoadedPlugin.prepare(compiled, name, limits, functions, stdout, stderr, path)
        if limits.epoch_checks:
            interrupt.install()  # Ctrl-C reaches wasm on the main thread from now on
        self._loaded = loaded
        self._instances = hold_instances(loaded, instances)  # makes the first instance: fail at load, not later
        self.name = name
        self.path = path
        self.limits = limits
        #: How many instances may run calls at once.
        self.instances = instances
        #: The wire contract version the plugin was built for; None for plain wasm.
        self.wire_version = compiled.metadata.version
        self._functions: dict[str, PluginFunction] = {}
        self._raw_functions: dict[str, PluginFunction] = {}
        #: Exports bound as plain attributes (``plugin.add``), so close() unbinds exactly those.
        self._attributes: set[str] = set()
        self.memory = PluginMemory(self._instances)
        #: How to load it again, for pickling (docs/PYTHON_API.md); None when made without its module's bytes.
        self._recipe = None if data is None else pickling.Recipe(
            _restore, data, name, path, limits, instances, functions, stdout, stderr)

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
                   stdout=stdout, stderr=stderr, limits=limits, instances=instances, data=data)

    # ---- the public surface ----

    @property
    def exports(self) -> Mapping[str, Signature]:
        """Every callable export: name -> signature."""
        return dict(self._loaded.signatures)

    @property
    def imports(self) -> Mapping[str, Signature]:
        """Host functions the plugin declared with #[host_fn]: name -> signature."""
        return {p.name: p.signature for p in self._loaded.imports.functions}

    @property
    def uses_wasi(self) -> bool:
        return self._loaded.imports.wasi

    def call(self, name: str, *args: Any, out: Any = None) -> Any:
        """Calls export ``name`` with Python values and returns a Python value (``out=`` as for ``plugin.NAME``)."""
        if out is None:
            return self.function(name)(*args)
        return self.function(name)(*args, out=out)

    def function(self, name: str) -> PluginFunction:
        """The callable for export ``name``, built once."""
        function = self._functions.get(name)
        if function is None:
            signature = self._loaded.signatures.get(name)
            if signature is None:
                raise UnknownFunctionError(self._loaded.unknown_function(name))
            if self._instances.closed:
                raise self._instances.closed_error()
            function = PluginFunction(self._loaded, self._instances, signature)
            self._functions[name] = function
            if name.isidentifier() and not name.startswith("__") and not hasattr(type(self), name) \
                    and name not in self.__dict__:
                # Next time `plugin.NAME` is a plain attribute: no __getattr__, no method hop.
                recipe = self._recipe
                self.__dict__[name] = function.call if recipe is None else pickling.bind(function.unbound, recipe)
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
        if self._instances.closed:
            raise self._instances.closed_error()
        func_type = next((e.type for e in self._loaded.module.exports if e.name == name), None)
        if not isinstance(func_type, wasmtime.FuncType):
            raise UnknownFunctionError(self._loaded.unknown_function(name))
        function = PluginFunction(self._loaded, self._instances, raw_signature(name, *wasmtypes.func_type(func_type)))
        self._raw_functions[name] = function
        return function

    @property
    def memories(self) -> Mapping[str, PluginMemory]:
        """Every exported memory by name (``plugin.memory`` is memory 0, whatever its name)."""
        return {name: PluginMemory(self._instances, name) for name in self._loaded.compiled.memory_exports}

    def cancel(self) -> None:
        """Interrupts the calls running in this plugin now, from any thread: they raise PluginCancelled.

        Needs ``cancellable=True`` or a ``timeout`` at load. Calls made later run normally.
        """
        self._instances.cancel()

    def close(self) -> None:
        """Frees the instance(s); later calls raise. Safe to call twice."""
        self._instances.close()
        for name in self._attributes:
            self.__dict__.pop(name, None)
        self._attributes.clear()
        self._functions.clear()
        self._raw_functions.clear()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` freed it."""
        return self._instances.closed

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles by content: the module's bytes, their sha256 and the load options (runtime/pickling.py)."""
        if self._recipe is None:
            raise pickle.PicklingError(f"cannot pickle plugin {self.name}: it was made without its module's bytes; "
                                       "load it with wasmforge.load or Plugin.from_bytes")
        return pickling.unwrap, (self._recipe,)

    def __enter__(self) -> "Plugin":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only for names not found otherwise; "_x" only when it is an export (Emscripten's _malloc),
        # so Python's own probes (__deepcopy__, _repr_html_) stay plain AttributeErrors.
        loaded = self.__dict__.get("_loaded")
        if name.startswith("__") or loaded is None or name.startswith("_") and name not in loaded.signatures:
            raise AttributeError(name)
        call = self.function(name).call
        bound: Callable[..., Any] = self.__dict__.get(name, call)
        return bound  # bound as an attribute by function(): the one that pickles

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._loaded.signatures))

    def __repr__(self) -> str:
        state = "closed" if self._instances.closed else f"{len(self._loaded.signatures)} exports"
        return f"<Plugin {self.name}: {state}>"

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded.signatures)

    @property
    def has_state(self) -> bool:
        """Whether the plugin keeps a ``#[plugin_state]`` that a hot reload can carry."""
        return self._loaded.compiled.metadata.state is not None

    def save_state(self) -> Optional[bytes]:
        """The ``#[plugin_state]`` as JSON bytes (None when the plugin has none), taken under the instance lock."""
        if not self.has_state:
            return None
        return self._state_function(_SAVE_STATE)()  # type: ignore[no-any-return]

    def restore_state(self, data: bytes) -> None:
        """Puts ``data`` (from :meth:`save_state`) into the ``#[plugin_state]``; ArgumentError when it does not
        fit this version's state type, UsageError when the plugin has no state."""
        if not self.has_state:
            raise UsageError(f"{self.name} has no #[plugin_state] to restore")
        try:
            self._state_function(_RESTORE_STATE)(bytes(data))
        except ArgumentError as error:  # the guest's reason, without the internal export's signature
            raise ArgumentError(f"{self.name}: {str(error).partition(' -> (): ')[2] or error}") from None

    def _state_function(self, signature: Signature) -> PluginFunction:
        function = self._functions.get(signature.name)
        if function is None:
            if self._instances.closed:
                raise self._instances.closed_error()
            function = self._functions[signature.name] = PluginFunction(self._loaded, self._instances, signature)
        return function

    @property
    def types(self) -> Mapping[str, RecordedType]:
        """The structs and enums the plugin marked ``#[plugin_type]``, by name."""
        return dict(self._loaded.types)

    @property
    def typed_dicts(self) -> Mapping[str, Any]:
        """A ``TypedDict`` per recorded struct: what the signatures' annotations name."""
        return dict(self._loaded.python_types)

    def describe(self) -> str:
        """Its functions with their Python signatures and doc comments, and its recorded types: ``help(plugin)``."""
        lines = [f"Plugin {self.name}: {len(self._loaded.signatures)} functions", ""]
        for name, signature in sorted(self._loaded.signatures.items()):
            python = python_signature([(p.name, p.type) for p in signature.params], signature.returns,
                                      self._loaded.types, self._loaded.python_types)
            lines.append(f"{name}{python}")
            lines += [f"    {line}" for line in (signature.doc or str(signature)).splitlines()]
            lines.append("")
        if self._loaded.types:
            lines.append("Types:")
            for recorded in self._loaded.types.values():
                lines.append(f"  {recorded}")
                lines += [f"      {line}" for line in recorded.doc.splitlines()]
        return "\n".join(lines).rstrip() + "\n"


def _restore(data: bytes, *, sha256: str, name: str, path: Optional[Path], limits: Limits, instances: int,
             host_functions: HostFunctionsArg, stdout: OutputSink, stderr: OutputSink) -> Plugin:
    """An unpickled plugin: the bytes checked against their sha256, compiled through the cache keyed by it."""
    check_module_size(data, limits.max_module_size, name)
    check_sha256(data, sha256, name)
    return Plugin(pickling.compiled_content(data, sha256, name, limits), name=name, path=path,
                  host_functions=host_functions, stdout=stdout, stderr=stderr, limits=limits, instances=instances,
                  data=data)
