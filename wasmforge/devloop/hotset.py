"""Every plugin crate of a workspace served at once: :class:`HotPlugins`, a :class:`HotPlugin` per crate.

Each crate has its own HotPlugin and supervisor (its own watched files,
checks and versions: one whose new version fails keeps its last good one
while the others move on), and all share one cargo build per burst of changes
(:class:`~wasmforge.devloop.builder.SharedBuild`). :meth:`HotPlugins.chain`
passes a value through them in crate order, each step on its current version,
as `wasmforge chain` does with built plugins.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

from ..errors import UnknownFunctionError, UsageError, WasmforgeError
from ..events import Event
from ..runtime.plugin import PathLike
from ..workspace.settings import Settings
from ..workspace.workspace import Workspace
from .builder import SharedBuild
from .hot import Checks, HotPlugin
from .supervisor import ExecOutput

Callback = Callable[[Event], None]


class HotPlugins(Mapping[str, HotPlugin]):
    """Crate name -> :class:`HotPlugin` for every plugin crate served: ``hot["greeter"].add(1, 2)``."""

    def __init__(self, plugins: Mapping[str, HotPlugin], shared: Optional[SharedBuild] = None) -> None:
        self._plugins = dict(plugins)
        #: The one cargo build they share.
        self.shared_build = shared

    @classmethod
    def from_workspace(
        cls,
        root: PathLike,
        *,
        settings: Optional[Settings] = None,
        crates: Optional[Sequence[str]] = None,
        check: Optional[Mapping[str, Checks]] = None,
        on_event: Union[None, Callback, Mapping[str, Callback]] = None,
        wait: bool = True,
        exec_command: Optional[str] = None,
        exec_output: ExecOutput = None,
        **load_options: Any,
    ) -> "HotPlugins":
        """Builds every plugin crate (or ``crates``) once, serves each, and rebuilds and reloads each on a change.

        ``check`` maps a crate to its checks; ``on_event`` is one callback for every crate's events
        or a crate -> callback mapping; the rest are :meth:`HotPlugin.from_workspace`'s, for each.
        """
        workspace = Workspace(settings) if settings is not None else Workspace.find(Path(root))
        workspace.check_crates(crates or ())
        chosen = tuple(crates or workspace.settings.plugin_crates)
        unknown = sorted(set(check or {}) - set(chosen))
        if unknown:
            raise UsageError(f"checks for {', '.join(unknown)}, which is not a plugin crate served here "
                             f"({', '.join(chosen)})")
        shared = SharedBuild(workspace, chosen)
        plugins: dict[str, HotPlugin] = {}
        try:
            for crate in chosen:
                sink = on_event.get(crate) if isinstance(on_event, Mapping) else on_event
                plugins[crate] = HotPlugin.from_workspace(
                    workspace.root, crate=crate, check=(check or {}).get(crate), on_event=sink, wait=False,
                    exec_command=exec_command, exec_output=exec_output, shared_build=shared, **load_options)
            hot = cls(plugins, shared)
            if wait:
                for plugin in plugins.values():
                    plugin.wait_until_serving()
        except BaseException:
            for plugin in plugins.values():
                plugin.close()
            raise
        return hot

    def __getitem__(self, crate: str) -> HotPlugin:
        try:
            return self._plugins[crate]
        except KeyError:
            raise KeyError(f"no plugin crate {crate!r} served; served: {', '.join(self._plugins)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)

    def __repr__(self) -> str:
        return f"<HotPlugins {', '.join(f'{c} v{p.version}' for c, p in self._plugins.items())}>"

    def chain(self, function: str, value: Any, *, context: Optional[Any] = None) -> Any:
        """``function(value)`` of each plugin in crate order, each result into the next (PluginChain's rule for
        a step taking ``(context, value)``), every step on the version serving when it runs."""
        for crate, plugin in self._plugins.items():
            signature = plugin.exports.get(function)
            if signature is None:
                raise UnknownFunctionError(f"chain step {crate} has no function {function!r}")
            value = plugin.call(function, context, value) if len(signature.params) == 2 else plugin.call(function, value)
        return value

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        """Blocks until every plugin's loop has ended, or one ended by itself (:attr:`ended`: then all are
        closed); False after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.ended is not None:
                self.close()
                return True
            if all(plugin.wait_closed(0.05) for plugin in self._plugins.values()):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    @property
    def ended(self) -> Optional[WasmforgeError]:
        """Why a plugin's loop ended by itself (the workspace moved or vanished); None otherwise."""
        return next((plugin.ended for plugin in self._plugins.values() if plugin.ended is not None), None)

    def close(self) -> None:
        for plugin in self._plugins.values():
            plugin.close()

    def __enter__(self) -> "HotPlugins":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
