"""JSON in and out: the one bounded reader and the one strict writer.

Reading JSON from outside (plugins, metadata, the command line) is
depth-bounded.
``json.loads`` recurses once per nesting level and raises RecursionError, not
ValueError, for input nested about a thousand levels deep; a result nested
just under that limit still breaks whatever walks it next (repr, json.dumps).
:func:`loads` refuses nesting past :data:`MAX_DEPTH` with a ValueError, as it
does any other malformed JSON, so callers need one ``except ValueError``.

Writing: every ``--json`` output is strict JSON (:func:`json_line`): NaN and
the infinities, which JSON cannot hold, become strings, and bytes are one
shape everywhere (:func:`json_fields`).
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import operator
from typing import Any, Callable, Optional, Union

#: Deepest nesting accepted: twice serde_json's own limit (128), far below Python's recursion limit.
MAX_DEPTH = 256

#: translate() arguments: every bracket becomes [ or ], quotes stay, everything else goes.
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
_STEPS = bytes.maketrans(b"[]", b"\x02\x00")
#: Typical JSON is a few levels deep: peeling (a fast replace per level) settles it in these many passes.
_PEELS = 8


def too_deep(text: Union[str, bytes], limit: int = MAX_DEPTH) -> bool:
    """Whether ``text`` nests arrays and objects more than ``limit`` levels deep.

    Linear and in C but for a loop of at most a few passes: escapes go, then
    everything but brackets and quotes (nothing more to do unless more than
    ``limit`` brackets are left), then strings (when none holds a bracket,
    all quotes at once), and the brackets left are peeled one level per pass.
    """
    if len(text) <= limit:  # too few characters to hold more than ``limit`` brackets (about 0.6 µs saved per small result)
        return False
    if isinstance(text, str):
        text = text.encode("utf-8", errors="surrogatepass")
    if b"\\" in text:  # \\ first, so that the backslash of \\" does not hide the quote after it
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = text.translate(_SQUARE, _NOT_STRUCTURE)
    if structure.count(b"[") <= limit:
        return False
    quotes = structure.count(b'"')
    if quotes and 2 * structure.count(b'""') == quotes:
        # Every string is an empty pair of quotes here: none holds a bracket.
        structure = structure.translate(None, b'"')
    elif quotes:
        while b'""' in structure:  # dropping two adjacent quotes leaves every bracket inside or outside a string as it was
            structure = structure.replace(b'""', b"")
        structure = b"".join(structure.split(b'"')[::2])
    if structure.count(b"[") <= limit:  # the brackets were inside strings (and none may be left to peel)
        return False
    for level in range(1, _PEELS + 1):
        peeled = structure.replace(b"[]", b"")  # no rescan: exactly one level per pass
        if not peeled:
            return level > limit
        if len(peeled) == len(structure):
            return False  # unbalanced: json.loads says where
        structure = peeled
    # Still deep after a few passes: the running depth, in one pass (each [ counts 2, each ] 0, minus one per bracket).
    steps = structure.translate(_STEPS)
    deepest: int = max(map(operator.sub, itertools.accumulate(steps), range(1, len(steps) + 1)))
    return deepest > limit - _PEELS


class NestedTooDeep(ValueError):
    """JSON nested more than :data:`MAX_DEPTH` levels: a ValueError, for callers that want to say so."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested more than {MAX_DEPTH} levels deep")


def loads(text: Union[str, bytes, bytearray]) -> Any:
    """``json.loads``, with nesting deeper than :data:`MAX_DEPTH` a ValueError like any other bad JSON."""
    if isinstance(text, bytearray):
        text = bytes(text)
    if too_deep(text):
        raise NestedTooDeep()
    try:
        return json.loads(text)
    except RecursionError:
        raise NestedTooDeep() from None


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


def json_fields(name: str, value: Any) -> dict[str, Any]:
    """``{name: value}`` ready for JSON; bytes as ``{name: "<base64>", "encoding": "base64"}``.

    The one shape for bytes in every ``--json`` output (`call`'s result, `watch`'s check values).
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {name: base64.b64encode(bytes(value)).decode("ascii"), "encoding": "base64"}
    return {name: json_safe(value)}
