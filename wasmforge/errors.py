"""Every error wasmforge raises, rooted at :class:`WasmforgeError`.

Each class carries the process exit code the CLI uses for it (docs/CLI.md,
"Exit codes"), so the command line maps exceptions to exit codes in one place.
Messages name the thing that went wrong and, where there is one, the fix.
"""

from __future__ import annotations

from typing import Optional

#: Exit codes, documented in README.md and docs/CLI.md.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130


class WasmforgeError(Exception):
    """Root of every error wasmforge raises."""

    exit_code = EXIT_FAILED


# ---- the user asked for something that cannot be done as asked (exit 2) ----


class UsageError(WasmforgeError):
    """Bad arguments or input from the user."""

    exit_code = EXIT_USAGE


class ScaffoldError(UsageError):
    """`wasmforge new` refused: a bad name, or a destination that is not empty."""


class WorkspaceNotFound(UsageError):
    """No wasmforge.toml in the directory or any parent."""


class ConfigError(UsageError):
    """wasmforge.toml (or a setting) is invalid."""


class UnknownFunctionError(UsageError, AttributeError):
    """The plugin has no export with that name."""


class ArgumentError(UsageError, TypeError):
    """Arguments that do not fit the function's signature."""


class OptionError(UsageError, ValueError):
    """An option of a library call has a value it cannot take: ``load(memory_limit="lots")``,
    ``instances=0``, ``check_timeout=-1``, a ``sha256`` that is not one.

    (An option name a call does not know is an :class:`ArgumentError`, as Python's own
    unexpected keyword argument is a TypeError.)
    """


# ---- the machine lacks something (exit 3) ----


class ToolchainError(WasmforgeError):
    """No cargo + rustc pair that can build for the wasm target."""

    exit_code = EXIT_ENVIRONMENT


# ---- the work ran and failed (exit 1) ----


class BuildError(WasmforgeError):
    """cargo ran and failed; ``diagnostics`` holds what it printed."""

    def __init__(self, message: str, diagnostics: str = "") -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


class WorkspaceGone(WasmforgeError):
    """The workspace being watched moved or was deleted: watching it ends (exit 1), instead of failing every build."""


class PluginLoadError(WasmforgeError):
    """A file could not be loaded as a plugin."""


class MemoryAccessError(WasmforgeError, IndexError):
    """A read or write outside the plugin's linear memory."""


class PluginCallError(WasmforgeError):
    """A call into a plugin failed. ``plugin`` and ``function`` name where."""

    def __init__(self, message: str, *, plugin: str = "", function: str = "") -> None:
        super().__init__(message)
        self.plugin = plugin
        self.function = function


class PluginError(PluginCallError):
    """The plugin function returned ``Err(e)``; the message is ``e``'s Display text."""


class PluginPanic(PluginCallError):
    """The plugin panicked. Carries the panic message and where in the Rust source."""

    def __init__(
        self,
        message: str,
        *,
        plugin: str = "",
        function: str = "",
        panic_message: str = "",
        file: Optional[str] = None,
        line: Optional[int] = None,
        column: Optional[int] = None,
    ) -> None:
        super().__init__(message, plugin=plugin, function=function)
        self.panic_message = panic_message
        self.file = file
        self.line = line
        self.column = column


class PluginTrap(PluginCallError):
    """The wasm code trapped (unreachable, out-of-bounds access, division by zero...)."""

    def __init__(self, message: str, *, plugin: str = "", function: str = "", trap_code: Optional[str] = None) -> None:
        super().__init__(message, plugin=plugin, function=function)
        self.trap_code = trap_code


class PluginProtocolError(PluginCallError):
    """The plugin broke the wire contract: a result outside memory, bad UTF-8, bad JSON."""


class PluginMemoryLimit(PluginCallError):
    """The plugin needed more memory than its memory limit allows."""


class PluginTimeout(PluginCallError):
    """A call ran longer than the plugin's time limit; the plugin answers the next call normally."""


class PluginCancelled(PluginCallError):
    """A call was cancelled from another thread with :meth:`Plugin.cancel`."""


class PluginFuelExhausted(PluginCallError):
    """A call used up its fuel budget (about one unit per wasm instruction)."""


class PluginStackOverflow(PluginTrap):
    """The plugin recursed past wasm's stack limit."""


class PluginIntegrityError(PluginLoadError):
    """A plugin file did not match the sha256 it was pinned to."""


class HostFunctionError(PluginCallError):
    """A host function the plugin called failed (it raised, was missing, or returned a bad value).

    The original exception, if any, is ``__cause__``.
    """


class HostFunctionResultError(HostFunctionError, PluginProtocolError):
    """A host function returned a value its declared type cannot hold (a str for an i32, 2**40 for an i32).

    Both a failed host function and a broken contract: catch either.
    """
