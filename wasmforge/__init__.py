"""wasmforge: write WebAssembly plugins in Rust, run them inside Python.

    import wasmforge
    with wasmforge.load("plugin.wasm") as plugin:
        plugin.add(1, 2)

The public names are imported lazily, so `wasmforge --version` and
`import wasmforge.errors` do not pay for loading wasmtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .abi.signature import Param, Signature
    from .workspace.build import Artifact, BuildResult, build
    from .workspace.settings import Settings, find_workspace, load_settings
    from .errors import (
        ArgumentError,
        OptionError,
        HostFunctionError,
        HostFunctionResultError,
        PluginCancelled,
        PluginFuelExhausted,
        PluginIntegrityError,
        PluginStackOverflow,
        PluginTimeout,
        BuildError,
        ConfigError,
        MemoryAccessError,
        PluginCallError,
        PluginError,
        PluginLoadError,
        PluginMemoryLimit,
        PluginPanic,
        PluginProtocolError,
        PluginTrap,
        ScaffoldError,
        ToolchainError,
        UnknownFunctionError,
        UsageError,
        WasmforgeError,
        WorkspaceGone,
        WorkspaceNotFound,
    )
    from .runtime.caller import Caller, CallerMemory
    from .runtime.imports import HostFunctions
    from .runtime.chain import PluginChain, load_dir
    from .runtime.function import PluginFunction
    from .runtime.plugin import Plugin, PluginMemory, load
    from .runtime.resources import load_resource
    from .devloop.hot import CheckCall, HotPlugin
    from .devloop.hotset import HotPlugins
    from .workspace.scaffold import new_workspace
    from .limits import Limits
    from .workspace.toolchain import Toolchain, find_toolchain

_LAZY = {
    "load": "runtime.plugin",
    "Plugin": "runtime.plugin",
    "PluginFunction": "runtime.function",
    "PluginMemory": "runtime.plugin",
    "HostFunctions": "runtime.imports",
    "Caller": "runtime.caller",
    "CallerMemory": "runtime.caller",
    "PluginChain": "runtime.chain",
    "load_dir": "runtime.chain",
    "load_resource": "runtime.resources",
    "HotPlugin": "devloop.hot",
    "HotPlugins": "devloop.hotset",
    "CheckCall": "devloop.hot",
    "Signature": "abi.signature",
    "Param": "abi.signature",
    "build": "workspace.build",
    "Artifact": "workspace.build",
    "BuildResult": "workspace.build",
    "Settings": "workspace.settings",
    "find_workspace": "workspace.settings",
    "load_settings": "workspace.settings",
    "new_workspace": "workspace.scaffold",
    "Toolchain": "workspace.toolchain",
    "Limits": "limits",
    "find_toolchain": "workspace.toolchain",
    **{
        name: "errors"
        for name in (
            "WasmforgeError", "UsageError", "ScaffoldError", "WorkspaceNotFound", "ConfigError",
            "UnknownFunctionError", "ArgumentError", "ToolchainError", "BuildError", "PluginLoadError",
            "MemoryAccessError", "PluginCallError", "PluginError", "PluginPanic", "PluginTrap",
            "PluginProtocolError", "PluginMemoryLimit", "HostFunctionError", "PluginTimeout",
            "PluginCancelled", "PluginFuelExhausted", "PluginStackOverflow", "PluginIntegrityError", "WorkspaceGone",
            "HostFunctionResultError", "OptionError",
        )
    },
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wasmforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
