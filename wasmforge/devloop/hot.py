"""HotPlugin: a plugin an application keeps calling while it is rebuilt and replaced.

    hot = wasmforge.HotPlugin.from_workspace("path/to/workspace", check=wasmforge.CheckCall("add", 1, 2))
    hot.add(1, 2)          # always the version serving now
    ...
    hot.close()

A new version goes live only after it loaded, instantiated and passed its
checks, in order, each within ``check_timeout`` seconds (check, then swap).
The swap is one assignment: calls already running finish on the old version,
which is closed once the last of them returns; later calls see the new one. A failed build, an invalid module or a
failed check leaves the last good version serving.

That is all a HotPlugin does: what feeds it new versions (a watcher, cargo,
the reload loop) is wired by supervisor.py, which ``from_workspace`` and
``from_file`` ask for.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

from ..abi.signature import Signature
from ..abi.wasmfile import read_plugin_file
from .._text import first_line
from ..errors import ArgumentError, OptionError, PluginLoadError, PluginTimeout, UsageError, WasmforgeError
from ..events import (
    BuildFinished,
    CallResult,
    Event,
    ExportsDiff,
    KeptOldVersion,
    Reloaded,
    RolledBack,
    Unchanged,
)
from ..limits import DEFAULT_MAX_MODULE_SIZE, MAX_TIMEOUT, Limits
from ..runtime.plugin import PathLike, Plugin, plugin_options
from ..workspace.settings import DEFAULT_CHECK_TIMEOUT, Settings
from ..workspace.workspace import Workspace
from .builder import SharedBuild
from .supervisor import ExecOutput, Supervisor

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class CheckCall:
    """A check: calls ``function(*args)`` on each new version before it goes live; the result is reported."""

    def __init__(self, function: str, *args: Any) -> None:
        self.function = function
        self.args = args

    def arguments_for(self, plugin: Plugin) -> Sequence[Any]:
        """The Python values to pass; a subclass may convert ``args`` by the new version's signature."""
        return self.args

    def __call__(self, plugin: Plugin) -> Any:
        return plugin.call(self.function, *self.arguments_for(plugin))

    def __repr__(self) -> str:
        return f"CheckCall({self.function!r}{''.join(', ' + repr(a) for a in self.args)})"


Check = Union[CheckCall, Callable[[Plugin], Any]]
#: ``check=``: one check, or several run in order (each must pass).
Checks = Union[Check, Sequence[Check]]


@dataclass
class _Version:
    plugin: Plugin
    number: int
    #: The module's bytes, to tell an identical rebuild (a memcmp is cheaper than hashing).
    data: Optional[bytes]
    users: int = 0
    retired: bool = False


@dataclass(frozen=True)
class HotVersion:
    """A version that served (``HotPlugin.versions``): ``rollback()`` and ``forward()`` move between them."""

    number: int
    size: int
    path: Optional[Path]
    #: Whether it is the version serving now.
    serving: bool


#: ``state=``: what happens to a #[plugin_state] across a reload (docs/WATCH.md, "State across reloads").
STATE_OPTIONS = ("keep", "fresh", "require")

#: How many good versions a HotPlugin keeps to roll back to (their bytes; compiling again is cached).
KEPT_VERSIONS = 20


@dataclass
class NewVersion:
    """A loaded version that is not serving yet (or, when ``unchanged``, the same bytes as the one that is)."""

    path: Optional[Path]
    data: bytes
    plugin: Optional[Plugin] = None
    exports: ExportsDiff = ExportsDiff()
    unchanged: bool = False
    #: Unchanged, after a failed cycle: the serving version's bytes again (see :class:`~wasmforge.events.Unchanged`).
    recovered: bool = False
    #: The #[plugin_state] it starts with: "kept", "fresh" (with the reason when the old one did not fit), or None.
    state: Optional[str] = None

    @property
    def size(self) -> int:
        return len(self.data)

    def discard(self) -> None:
        if self.plugin is not None:
            self.plugin.close()


class HotPlugin:
    """The current version of a plugin, replaced safely while it is called from any number of threads.

    Callbacks run on the reload thread: ``on_event`` gets every event
    (wasmforge.events), ``on_reload`` each :class:`~wasmforge.events.Reloaded`,
    ``on_failure`` each :class:`~wasmforge.events.KeptOldVersion`,
    ``on_unchanged`` each :class:`~wasmforge.events.Unchanged` (a rebuild with
    the serving version's bytes; ``recovered`` when it ends a failure).

    ``check`` is one check or a list of them, run in order on each new version;
    each must return within ``check_timeout`` seconds (None: no limit), or the
    version is refused. To stop one that runs too long, versions are loaded
    cancellable (epoch interruption) while there are checks and a time limit.
    """

    def __init__(
        self,
        plugin: Optional[Plugin] = None,
        *,
        name: Optional[str] = None,
        check: Optional[Checks] = None,
        on_event: Optional[Callback] = None,
        on_reload: Optional[Callback] = None,
        on_failure: Optional[Callback] = None,
        on_unchanged: Optional[Callback] = None,
        plugin_options: Optional[Mapping[str, Any]] = None,
        check_timeout: Optional[float] = DEFAULT_CHECK_TIMEOUT,
        state: str = "keep",
    ) -> None:
        self.name = name or (plugin.name if plugin is not None else "plugin")
        if state not in STATE_OPTIONS:
            raise OptionError(f"state must be one of {', '.join(map(repr, STATE_OPTIONS))}, got {state!r}")
        #: What a new version's #[plugin_state] starts as: the serving version's ("keep", or "fresh" when it does
        #: not fit), always fresh ("fresh"), or the serving version's or the version is refused ("require").
        self.state = state
        #: Set while a swap carries the state over: new calls wait, so none writes state the swap would lose.
        self._freezing = False
        #: Plugin.from_bytes options for each new version: host functions, output, limits.
        self._plugin_options = dict(plugin_options or {})
        self.check = check
        if check_timeout is not None and not (
            isinstance(check_timeout, (int, float)) and not isinstance(check_timeout, bool)
            and 0 < check_timeout <= MAX_TIMEOUT
        ):
            raise OptionError(f"check_timeout must be a positive number of seconds up to {MAX_TIMEOUT:.0f} (a year), "
                              f"or None for no limit; got {check_timeout!r}")
        self.check_timeout = check_timeout
        self.on_event = on_event
        self.on_reload = on_reload
        self.on_failure = on_failure
        self.on_unchanged = on_unchanged
        self._lock = threading.Lock()
        self._swapped = threading.Condition(self._lock)
        self._current: Optional[_Version] = _Version(plugin, 1, None) if plugin is not None else None
        #: The good versions that served, oldest first (bytes kept for rollback), and which one serves.
        self._good: list[tuple[int, bytes, Optional[Path]]] = []
        self._serving_index = -1
        self._next_number = 2 if plugin is not None else 1
        self._closed = False
        self._diagnostics = ""
        self._last_failure: Optional[KeptOldVersion] = None
        #: What feeds it new versions, once from_workspace or from_file made one.
        self._supervisor: Optional[Supervisor] = None

    # ---- making one that reloads itself ----

    @classmethod
    def from_workspace(
        cls,
        root: PathLike,
        *,
        settings: Optional[Settings] = None,
        crate: Optional[str] = None,
        check: Optional[Checks] = None,
        on_event: Optional[Callback] = None,
        on_reload: Optional[Callback] = None,
        on_failure: Optional[Callback] = None,
        on_unchanged: Optional[Callback] = None,
        wait: bool = True,
        exec_command: Optional[str] = None,
        exec_output: ExecOutput = None,
        shared_build: Optional[SharedBuild] = None,
        state: str = "keep",
        **load_options: Any,
    ) -> "HotPlugin":
        """Builds the workspace's plugin crate (``crate``, else the only one), serves it, and rebuilds and reloads it whenever its sources change.

        Watching follows ``settings`` (``debounce_ms``, ``poll``, ``poll_interval_ms``,
        ``check_timeout``, ``profile``, ``[limits]``); by default they are read from the workspace's
        wasmforge.toml. ``load_options`` are :func:`wasmforge.load`'s
        (``host_functions``, ``timeout``, ``memory_limit``, ...), for every version.
        With ``wait`` (the default) the first build happens before this returns,
        and its failure is raised; without, it happens on the reload thread.
        ``exec_command`` (`watch --exec`) runs in a shell, in the workspace, after each new
        version goes live; its output goes to ``exec_output`` (default: this process's), its
        ExecStarted and ExecFinished events to the callbacks. ``shared_build``: one cargo
        build of several crates, shared with their HotPlugins (:class:`wasmforge.HotPlugins`).
        """
        workspace = shared_build.workspace if shared_build is not None else Workspace(settings) if settings is not None else Workspace.find(Path(root))
        options = plugin_options(load_options, workspace.settings.limits())
        workspace.check_crates()  # a crate wasmforge.toml names but the workspace lacks: say so now, not per build
        crate = workspace.plugin_crate(crate)
        hot = cls(name=crate, check=check, on_event=on_event, on_reload=on_reload, on_failure=on_failure,
                  on_unchanged=on_unchanged, plugin_options=options, check_timeout=workspace.settings.check_timeout,
                  state=state)
        hot._serve(Supervisor.for_workspace(workspace, crate, hot, hot._dispatch, exec_command=exec_command,
                                            exec_output=exec_output, shared=shared_build))
        if wait:
            hot._raise_unless_serving()
        return hot

    @classmethod
    def from_file(
        cls,
        path: PathLike,
        *,
        check: Optional[Checks] = None,
        on_event: Optional[Callback] = None,
        on_reload: Optional[Callback] = None,
        on_failure: Optional[Callback] = None,
        on_unchanged: Optional[Callback] = None,
        debounce_ms: int = 50,
        poll: bool = False,
        poll_interval_ms: int = 300,
        check_timeout: Optional[float] = DEFAULT_CHECK_TIMEOUT,
        state: str = "keep",
        **load_options: Any,
    ) -> "HotPlugin":
        """Serves the .wasm at ``path`` and reloads it whenever the file is written or replaced.

        When ``path`` is a symbolic link, a change to the file it leads to counts too, and so
        does pointing the link elsewhere. ``load_options`` are :func:`wasmforge.load`'s, for
        every version. Raises like :func:`wasmforge.load` when the file is not a plugin now.
        """
        file = Path(path).absolute()
        hot = cls(name=file.name, check=check, on_event=on_event, on_reload=on_reload, on_failure=on_failure,
                  on_unchanged=on_unchanged, plugin_options=plugin_options(load_options), check_timeout=check_timeout,
                  state=state)
        hot._serve(Supervisor.for_file(file, hot, hot._dispatch, debounce=debounce_ms / 1000, poll=poll,
                                       poll_interval=poll_interval_ms / 1000))
        return hot

    def _serve(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        supervisor.start(owner=self)

    def wait_until_serving(self) -> None:
        """Waits for the first cycle (the first build, for from_workspace); raises its failure, closed, if none serves."""
        self._raise_unless_serving()

    def _raise_unless_serving(self) -> None:
        assert self._supervisor is not None
        self._supervisor.wait_for_cycles(1)
        if self.version == 0:
            failure = self._last_failure
            self.close()
            if failure is not None and isinstance(failure.exception, WasmforgeError):
                raise failure.exception
            raise PluginLoadError(f"{self.name} did not go live: {failure.error if failure else 'stopped'}")

    # ---- calling ----

    @property
    def version(self) -> int:
        """1 for the first version that served, 2 after the first reload...; 0 while none has."""
        current = self._current
        return current.number if current is not None else 0

    @property
    def checks(self) -> tuple[Check, ...]:
        """The checks each new version must pass, in the order they run."""
        check = self.check
        if check is None:
            return ()
        if isinstance(check, Sequence):
            return tuple(check)
        return (check,)

    @property
    def exports(self) -> Mapping[str, Signature]:
        """The exports of the version serving now."""
        with self.pinned() as plugin:
            return plugin.exports

    @property
    def diagnostics(self) -> str:
        """What cargo printed during the last build (warnings, or the errors of a failed one)."""
        return self._diagnostics

    @property
    def last_failure(self) -> Optional[KeptOldVersion]:
        """Why the last cycle kept the old version; None when it succeeded."""
        return self._last_failure

    def call(self, name: str, *args: Any, out: Any = None) -> Any:
        """Calls export ``name`` on the version serving now (``out=`` as for ``plugin.NAME``)."""
        version = self._acquire()
        try:
            return version.plugin.call(name, *args, out=out)
        finally:
            self._release(version)

    @contextmanager
    def pinned(self) -> Iterator[Plugin]:
        """The Plugin serving now, kept open until the block ends even if a new version takes over."""
        version = self._acquire()
        try:
            yield version.plugin
        finally:
            self._release(version)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        with self.pinned() as plugin:
            plugin.function(name)  # UnknownFunctionError, naming the functions there are
        return _HotFunction(self, name)

    def wait_for_version(self, version: int, timeout: Optional[float] = None) -> bool:
        """Blocks until ``version`` (or a later one) is serving; False after ``timeout`` seconds."""
        with self._swapped:
            return self._swapped.wait_for(lambda: self.version >= version or self._closed, timeout) and not self._closed

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the reload loop has ended (see :meth:`close`); False after ``timeout`` seconds."""
        return self._supervisor.wait_closed(timeout) if self._supervisor is not None else True

    @property
    def ended(self) -> Optional[WasmforgeError]:
        """Why the reload loop ended by itself (WorkspaceGone: the workspace moved or vanished); None otherwise."""
        return self._supervisor.ended if self._supervisor is not None else None

    def close(self) -> None:
        """Stops watching (killing a running cargo) and frees the plugin once no call uses it."""
        if self._supervisor is not None:
            self._supervisor.stop()
        with self._lock:
            self._closed = True
            version, self._current = self._current, None
            self._swapped.notify_all()
        if version is not None:
            self._retire(version)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as a frozen snapshot: the version serving now, which unpickles as a plain Plugin."""
        with self.pinned() as plugin:
            return plugin.__reduce__()

    def __enter__(self) -> "HotPlugin":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"v{self.version}"
        return f"<HotPlugin {self.name}: {state}>"

    # ---- check, then swap (the reload loop's VALIDATE, CHECK and SWAP steps) ----

    def reload_from(self, path: PathLike) -> Optional[Reloaded]:
        """Loads, checks and swaps in the .wasm at ``path``; None when its bytes are the ones serving.

        Raises (and keeps the old version) when it does not load or the check fails.
        """
        started = time.perf_counter()
        candidate = self.load_candidate(Path(path))
        if candidate.unchanged:
            self._dispatch(Unchanged(version=self.version, size=candidate.size))
            return None
        loaded = time.perf_counter() - started
        outcomes = self.run_checks(candidate)
        failed = next((outcome for outcome in outcomes if not outcome.ok), None)
        if failed is not None:
            candidate.discard()
            raise failed.exception or PluginLoadError(failed.error or "the check call failed")
        started = time.perf_counter()
        reloaded = self.swap_in(candidate, loaded + time.perf_counter() - started)
        self._dispatch(reloaded)
        for outcome in outcomes:
            self._dispatch(outcome)
        return reloaded

    def load_candidate(self, path: Path) -> NewVersion:
        """Reads and instantiates the new version; PluginLoadError when it is not a valid plugin."""
        limits = self._plugin_options.get("limits")
        data = read_plugin_file(path, limits.max_module_size if limits is not None else DEFAULT_MAX_MODULE_SIZE)
        current = self._current
        if current is not None and current.data == data:
            return NewVersion(path=path, data=data, unchanged=True, recovered=self._last_failure is not None)
        plugin = Plugin.from_bytes(data, name=path.name, path=path, **self._candidate_options())
        exports = ExportsDiff.between(current.plugin.exports, plugin.exports) if current else ExportsDiff()
        try:
            state = self._carry_state(current.plugin if current else None, plugin)
        except BaseException:
            plugin.close()
            raise
        return NewVersion(path=path, data=data, plugin=plugin, exports=exports, state=state)

    def _carry_state(self, serving: Optional[Plugin], candidate: Plugin) -> Optional[str]:
        """Restores the serving version's #[plugin_state] into the candidate, before its checks; what it starts with.

        With ``state="require"`` a state that does not fit refuses the candidate (PluginLoadError).
        """
        if not candidate.has_state:
            return None
        if self.state == "fresh" or serving is None or not serving.has_state:
            return "fresh"
        saved = serving.save_state()
        assert saved is not None
        try:
            candidate.restore_state(saved)
        except ArgumentError as error:
            if self.state == "require":
                raise PluginLoadError(f"{error}; refused (state='require')") from error
            return f"fresh: {str(error).partition(': ')[2] or error}"
        return "kept"

    def run_checks(self, candidate: NewVersion) -> list[CallResult]:
        """Runs the checks on the new version in order, until one fails; their results (empty without checks)."""
        results: list[CallResult] = []
        if candidate.plugin is None:
            return results
        for check in self.checks:
            results.append(self._run_check(check, candidate.plugin))
            if not results[-1].ok:
                break
        return results

    def _run_check(self, check: Check, plugin: Plugin) -> CallResult:
        function = getattr(check, "function", getattr(check, "__name__", repr(check)))
        args = tuple(getattr(check, "args", ()))
        started = time.perf_counter()
        with _Deadline(plugin, self.check_timeout) as deadline:
            try:
                value = check(plugin)
            except Exception as error:  # the check is user code: any failure keeps the old version
                if deadline.expired:
                    error = PluginTimeout(
                        f"{function}() did not return within {self.check_timeout:g} s, the time limit for checks "
                        "(check_timeout)", plugin=plugin.name, function=function,
                    )
                return CallResult(function=function, args=args, ok=False, error=str(error) or type(error).__name__,
                                  seconds=time.perf_counter() - started, exception=error)
        return CallResult(function=function, args=args, ok=True, value=value, seconds=time.perf_counter() - started)

    def swap_in(self, candidate: NewVersion, seconds: float) -> Reloaded:
        """Makes the candidate the version serving; the old one closes when its last call returns."""
        assert candidate.plugin is not None
        with self._lock:
            if self._closed:
                candidate.discard()
                raise PluginLoadError(f"{self.name} is closed")
            if candidate.state == "kept":
                candidate.state = self._take_state_over(candidate.plugin)
            old = self._current
            number, self._next_number = self._next_number, self._next_number + 1
            self._current = _Version(candidate.plugin, number, candidate.data)
            self._good = [*self._good, (number, candidate.data, candidate.path)][-KEPT_VERSIONS:]
            self._serving_index = len(self._good) - 1
            self._last_failure = None
            self._freezing = False
            self._swapped.notify_all()
        if old is not None:
            self._retire(old)
        return Reloaded(
            version=number, path=candidate.path, size=candidate.size,
            size_change=candidate.size - len(old.data) if old is not None and old.data is not None else None,
            seconds=seconds, exports=candidate.exports, state=candidate.state,
        )

    def _take_state_over(self, candidate: Plugin) -> str:
        """Under the lock: stops new calls, waits for the running ones, then copies the serving version's state
        into the candidate once more (the checks may have changed it, calls may have since). Returns "kept", or
        "fresh: ..." if that failed. The caller swaps and lets calls in again."""
        serving = self._current
        if serving is None or not serving.plugin.has_state:
            return "fresh"
        self._freezing = True
        # A call that calls back into this HotPlugin cannot finish while new calls wait: give up waiting after
        # check_timeout (or 5 s) and take the state as it is.
        self._swapped.wait_for(lambda: serving.users == 0, self.check_timeout or DEFAULT_CHECK_TIMEOUT)
        try:
            saved = serving.plugin.save_state()
            candidate.restore_state(saved or b"")
        except WasmforgeError as error:
            return f"fresh: {first_line(error)}"
        return "kept"

    # ---- steering: the versions that served, and the watching ----

    @property
    def versions(self) -> list[HotVersion]:
        """The good versions kept to roll back to (the last 20), oldest first; ``serving`` marks the current one."""
        with self._lock:
            return [HotVersion(number, len(data), path, index == self._serving_index and self._current is not None)
                    for index, (number, data, path) in enumerate(self._good)]

    def rollback(self) -> int:
        """Serves the good version before the one serving again (its code and its number); returns that number.

        UsageError when there is none. In-flight calls finish on the version they started on; the next
        save builds and serves a new version as usual.
        """
        return self._serve_kept(-1, "rollback")

    def forward(self) -> int:
        """After :meth:`rollback`, serves the next newer good version again; returns its number."""
        return self._serve_kept(+1, "forward")

    def _serve_kept(self, step: int, direction: str) -> int:
        with self._lock:
            index = self._serving_index + step
            if self._closed or not 0 <= index < len(self._good) or self._current is None:
                where = "older" if step < 0 else "newer"
                raise UsageError(f"{self.name} has no {where} good version to {'roll back' if step < 0 else 'go forward'} to")
            number, data, path = self._good[index]
        plugin = Plugin.from_bytes(data, name=path.name if path else self.name, path=path, **self._plugin_options)
        with self._lock:
            serving = self._current
        try:
            state = self._carry_state(serving.plugin if serving is not None else None, plugin)
        except BaseException:
            plugin.close()
            raise
        with self._lock:
            if state == "kept":
                self._take_state_over(plugin)
            if self._closed:
                plugin.close()
                raise PluginLoadError(f"{self.name} is closed")
            old, self._current = self._current, _Version(plugin, number, data)
            self._serving_index = index
            self._freezing = False
            self._swapped.notify_all()
        if old is not None:
            self._retire(old)
        self._dispatch(RolledBack(version=number, previous=old.number if old is not None else 0, direction=direction))
        return number

    def rebuild(self) -> None:
        """Builds (or reloads the file) now, as a save would; even while paused."""
        if self._supervisor is not None:
            self._supervisor.rebuild()

    @property
    def paused(self) -> bool:
        """Whether saves are being kept rather than built (:meth:`pause`)."""
        return self._supervisor is not None and self._supervisor.paused

    def pause(self) -> None:
        """Keeps saves from starting cycles until :meth:`resume`; the version serving goes on serving."""
        if self._supervisor is not None:
            self._supervisor.pause()

    def resume(self) -> None:
        """Acts on the saves made while paused (in one cycle), and on every save from now on."""
        if self._supervisor is not None:
            self._supervisor.resume()

    # ---- internals ----

    def _candidate_options(self) -> dict[str, Any]:
        """Plugin.from_bytes options for a new version: cancellable when a check may have to be stopped."""
        options = dict(self._plugin_options)
        if self.checks and self.check_timeout is not None:
            limits = options.get("limits") or Limits()
            options["limits"] = dataclasses.replace(limits, cancellable=True)
        return options

    def _acquire(self) -> _Version:
        with self._lock:
            if self._freezing:
                self._swapped.wait_for(lambda: not self._freezing)
            version = self._current
            if version is None:
                raise self._not_serving()
            version.users += 1
            return version

    def _release(self, version: _Version) -> None:
        with self._lock:
            version.users -= 1
            idle = version.retired and version.users == 0
            if self._freezing and version.users == 0:
                self._swapped.notify_all()  # a swap waits for the last running call
        if idle:
            version.plugin.close()

    def _retire(self, version: _Version) -> None:
        with self._lock:
            version.retired = True
            idle = version.users == 0
        if idle:
            version.plugin.close()

    def _not_serving(self) -> PluginLoadError:
        if self._closed:
            return PluginLoadError(f"{self.name} is closed")
        failure = self._last_failure
        why = failure.error if failure is not None else "its first build has not finished"
        return PluginLoadError(f"{self.name} has no version serving yet: {why}")

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, BuildFinished):
            self._diagnostics = event.diagnostics
        elif isinstance(event, KeptOldVersion):
            self._last_failure = event
        elif isinstance(event, Unchanged):
            self._last_failure = None
        callbacks = ((self.on_event, Event), (self.on_reload, Reloaded), (self.on_failure, KeptOldVersion),
                     (self.on_unchanged, Unchanged))
        for callback, wanted in callbacks:
            if callback is not None and isinstance(event, wanted):
                try:
                    callback(event)
                except Exception:
                    log.exception("%s callback failed on %s", self.name, event.kind)


class _HotFunction:
    """``hot.add``: calls whichever version is serving at the time of each call."""

    def __init__(self, hot: HotPlugin, name: str) -> None:
        self.hot = hot
        self.__name__ = name

    def __call__(self, *args: Any, out: Any = None) -> Any:
        return self.hot.call(self.__name__, *args, out=out)

    @property
    def __doc__(self) -> Optional[str]:  # type: ignore[override]
        """The serving version's doc comment of the function."""
        with self.hot.pinned() as plugin:
            return plugin.function(self.__name__).__doc__

    @property
    def __signature__(self) -> inspect.Signature:
        """The serving version's signature of the function, for ``inspect.signature``."""
        with self.hot.pinned() as plugin:
            return plugin.function(self.__name__).python_signature()

    def __repr__(self) -> str:
        return f"<hot function {self.__name__} of {self.hot!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return getattr, (self.hot, self.__name__)  # the function of the serving version's snapshot


class _Deadline:
    """Cancels the calls running in ``plugin`` once ``seconds`` pass, unless the block has ended by then."""

    def __init__(self, plugin: Plugin, seconds: Optional[float]) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._ended = False
        self._timer: Optional[threading.Timer] = None
        if seconds is not None and plugin.limits.uses_epochs:
            self._timer = threading.Timer(seconds, self._expire, args=(plugin,))
            self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:  # once this is held, no cancel can reach a later call on the plugin
            self._ended = True
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self, plugin: Plugin) -> None:
        with self._lock:
            if not self._ended:
                self.expired = True
                plugin.cancel()
