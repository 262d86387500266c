"""The small pieces of text every layer shares, each written once.

Sizes in words, the line of an error worth showing, a value named in an error
message, and the reading of an on/off environment variable. Nothing here
imports more than the standard library.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Union

_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def format_bytes(size: Optional[int], *, fixed_point: bool = False) -> str:
    """A size in words: "1.5 KiB", "64 MiB", "100 bytes" ("unknown" for None).

    ``fixed_point``: always one decimal, and "B" for bytes ("64.0 MiB", "100 B"),
    as the command line's result lines show file sizes.
    """
    if size is None:
        return "unknown"
    for unit, scale in _UNITS:
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if fixed_point or value != int(value) else f"{value:.0f} {unit}"
    return f"{size} B" if fixed_point else f"{size} bytes"


def first_line(error: Union[BaseException, str], default: Optional[str] = None) -> str:
    """The line that says what went wrong.

    wasmtime puts a backtrace first ("error while executing at wasm backtrace:")
    and the reason last, after "Caused by:"; the reason is the line worth showing.
    Without any text: ``default``, else the exception's class name.
    """
    text = error if isinstance(error, str) else str(error)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        if default is not None:
            return default
        return "" if isinstance(error, str) else type(error).__name__
    if lines[0].startswith("error while executing at wasm backtrace") and "Caused by:" in lines:
        return lines[-1]
    return lines[0]


def describe_value(value: Any) -> str:
    """A value as an error message names it: its repr, with its type unless it is text."""
    text = repr(value)
    return text[:60] if isinstance(value, (str, bytes)) else f"{type(value).__name__} {text[:60]}"


_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


def env_flag(env: Mapping[str, str], name: str) -> Optional[bool]:
    """An on/off environment variable: True for 1/true/yes/on, False for 0/false/no/off (any case), else None."""
    value = env.get(name, "").lower()
    return True if value in _YES else False if value in _NO else None
