"""Plugin chains, the blog series' Part 4: pass a value through the same
function of every plugin in a directory, in file-name order (like mdBook
preprocessors)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ..errors import ArgumentError, PluginLoadError, UnknownFunctionError
from .plugin import PathLike, Plugin, load


class PluginChain:
    """Plugins applied one after another; each step's result is the next step's argument."""

    def __init__(self, plugins: Sequence[Plugin]) -> None:
        if not plugins:
            raise PluginLoadError("a plugin chain needs at least one plugin")
        self.plugins = tuple(plugins)

    def call(self, function: str, value: Any, *, context: Optional[Any] = None) -> Any:
        """``function(value)`` of the first plugin, its result into the second's, and so on.

        A step whose ``function`` takes two arguments gets ``(context, value)``: what
        every step may read but none changes, such as mdBook's preprocessor context
        (``None`` when the caller has none). Every step is checked before the first
        one runs, so a chain that cannot finish does not start.
        """
        self.check(function)
        for plugin in self.plugins:
            if len(plugin.exports[function].params) == 2:
                value = plugin.call(function, context, value)
            else:
                value = plugin.call(function, value)
        return value

    def check(self, function: str) -> None:
        """Raises unless every plugin has ``function`` taking the value, or the context and the value."""
        for step, plugin in enumerate(self.plugins, 1):
            if function not in plugin.exports:
                raise UnknownFunctionError(
                    f"chain step {step} ({plugin.name}) has no function {function!r}; "
                    f"its functions: {', '.join(sorted(plugin.exports)) or 'none'}"
                )
        for step, plugin in enumerate(self.plugins, 1):
            signature = plugin.exports[function]
            if len(signature.params) not in (1, 2):
                raise ArgumentError(
                    f"chain step {step} ({plugin.name}): {signature.describe_arity()}; a chain step takes "
                    "one (the value) or two (the context, then the value)"
                )

    def close(self) -> None:
        for plugin in self.plugins:
            plugin.close()

    def __enter__(self) -> "PluginChain":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Plugin]:
        return iter(self.plugins)

    def __len__(self) -> int:
        return len(self.plugins)

    def __repr__(self) -> str:
        return f"<PluginChain {' -> '.join(p.name for p in self.plugins)}>"


def load_dir(directory: PathLike, *, pattern: str = "*.wasm", **options: Any) -> PluginChain:
    """Every plugin in ``directory`` matching ``pattern``, in file-name order, as a chain.

    ``options`` are :func:`wasmforge.load`'s (host_functions, timeout, memory_limit, ...),
    applied to every plugin.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise PluginLoadError(f"{folder} is not a directory of plugins")
    try:
        os.listdir(folder)  # glob says nothing of a directory it may not list: it finds no plugins there
    except OSError as error:
        raise PluginLoadError(f"cannot list the plugins in {folder}: {error.strerror}") from error
    paths = sorted(p for p in folder.glob(pattern) if p.is_file())
    if not paths:
        raise PluginLoadError(f"no plugins ({pattern}) in {folder}")
    return load_paths(paths, **options)


def load_paths(paths: Sequence[PathLike], **options: Any) -> PluginChain:
    """The plugins at ``paths``, in the given order, as a chain; closes what it loaded if one fails."""
    plugins: list[Plugin] = []
    try:
        for path in paths:
            plugins.append(load(path, **options))
    except BaseException:
        for plugin in plugins:
            plugin.close()
        raise
    return PluginChain(plugins)
