"""Text into the Python values a signature wants: command-line arguments and piped input.

`wasmforge call add 1 2` and `watch --call 'add 1 2'` give words; `chain`
reads its value from stdin. Each becomes the value the parameter takes:
text parameters take the text as typed, bytes parameters its UTF-8, float
parameters a float (never an overflow to infinity), and everything else
JSON where the text parses as JSON, else the text itself (the argument
check then names the parameter and the type it needs).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from .. import _json
from ..errors import ArgumentError, UsageError
from .signature import Signature

#: The largest finite value of each float type: a literal past it would silently become infinity.
_FLOAT_MAX = {"f32": 3.4028234663852886e38, "f64": sys.float_info.max}


def parse_cli_argument(signature: Signature, index: int, text: str) -> Any:
    """A command-line argument as the Python value the parameter wants."""
    param = signature.params[index] if index < len(signature.params) else None
    if param is not None and param.wire == "str":
        return text
    if param is not None and param.wire == "bytes":
        return text.encode("utf-8")
    if param is not None and param.type in _FLOAT_MAX:
        return _parse_float(param.name, param.type, text)
    try:
        return _json.loads(text)
    except ValueError as error:
        if _json.too_deep(text):
            raise ArgumentError(f"argument {index + 1} is JSON nested more than {_json.MAX_DEPTH} levels deep") from error
        return text


def _parse_float(name: str, rust_type: str, text: str) -> Any:
    """A float argument: any decimal literal, and nan, inf, -inf (in any case), but no overflow to infinity."""
    try:
        value = float(text)
    except ValueError:
        return text  # the argument check names the parameter and the type it needs
    if math.isinf(value) and "inf" not in text.lower():
        raise ArgumentError(f"{name}: {text} is too large for {rust_type} (at most {_FLOAT_MAX[rust_type]:g}); "
                            "write inf for infinity")
    if not math.isinf(value) and abs(value) > _FLOAT_MAX[rust_type]:
        raise ArgumentError(f"{name}: {text} is too large for {rust_type} (at most {_FLOAT_MAX[rust_type]:g})")
    return value


def parse_stdin_value(signature: Signature, raw: bytes) -> Any:
    """Piped input as the value the last parameter wants (a step taking (context, value) reads the value last)."""
    wire = signature.params[-1].wire
    if wire == "bytes":
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"the input is not UTF-8 text ({error.reason} at byte {error.start}), which {signature} needs") from error
    if wire == "str":
        return text
    try:
        return _json.loads(text)
    except ValueError as error:
        raise UsageError(f"the input is not JSON ({error}), which {signature} needs") from error
