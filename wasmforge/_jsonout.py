"""JSON for --json output: strict (no NaN), so every parser reads it."""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Optional


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
