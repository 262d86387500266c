"""JSON for --json output: strict (no NaN), so every parser reads it."""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Optional

from .errors import BuildError, PluginCallError, PluginPanic, PluginTrap


def json_safe(value: Any) -> Any:
    """``value`` with NaN and the infinities (which JSON cannot hold) as the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    return value


def json_line(value: Any, default: Optional[Callable[[Any], Any]] = None) -> str:
    """One line of strict JSON."""
    return json.dumps(json_safe(value), allow_nan=False, default=default)


def error_json(error: BaseException) -> dict[str, Any]:
    """An error for --json output: ``type`` (the exception's class) and ``message``, then what it knows.

    A plugin's error also names ``plugin`` and ``function``; a panic has
    ``panic_message``, ``file``, ``line`` and ``column`` (null where the panic
    hook could not say); a trap its ``trap_code``; a build error cargo's ``diagnostics``.
    """
    found: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, PluginCallError):
        found.update(plugin=error.plugin, function=error.function)
    if isinstance(error, PluginPanic):
        found.update(panic_message=error.panic_message, file=error.file, line=error.line, column=error.column)
    if isinstance(error, PluginTrap):
        found["trap_code"] = error.trap_code
    if isinstance(error, BuildError):
        found["diagnostics"] = error.diagnostics
    return found
