"""The MessagePack wire of #[plugin_fn(wire = "msgpack")] functions (docs/ABI.md, "The MessagePack wire").

Imported by :mod:`wasmforge.abi.codec` only when such a function is first called, so
a host that never meets one never imports msgpack. The values are the ones JSON
carries, with the same Python conversions: tuples and sets as arrays, dataclasses
as maps, bytes as bin (the guest reads bin or an array of numbers for any byte
sequence). Unlike JSON, NaN and the infinities travel as the IEEE floats they are.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from typing import Any

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type hints

#: Bytes that may start a bin (a possible bin map key) or be a timestamp's ext type (-1), which
#: msgpack decodes itself instead of calling ext_hook: only a result holding one is walked.
_MAYBE_BIN_OR_TIMESTAMP = re.compile(rb"[\xc4-\xc6\xff]")


def _default(value: Any) -> Any:
    """MessagePack for the Python values that map naturally onto serde types (as codec's JSON does)."""
    if isinstance(value, (set, frozenset)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, int):  # msgpack hands over the ints it cannot pack: past 64 bits
        raise OverflowError(f"{value.bit_length()} bits")
    raise TypeError(f"{type(value).__name__} cannot be sent as MessagePack")


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"ext type {code} is not part of the wire")


class _Packers(threading.local):
    """One reusable Packer per thread (half the cost of packb's fresh one; a Packer is not for two threads)."""

    def __init__(self) -> None:
        self.packer = msgpack.Packer(default=_default, use_bin_type=True, datetime=False, autoreset=True)


_PACKERS = _Packers()


def pack(value: Any) -> bytes:
    """``value`` as MessagePack; TypeError, ValueError or OverflowError (an int past 64 bits) if it cannot be."""
    packer = _PACKERS.packer
    try:
        packed: bytes = packer.pack(value)
    except BaseException:
        packer.reset()  # a failed pack leaves its partial output in the buffer
        raise
    return packed


def unpack(data: bytes) -> Any:
    """One value from all of ``data``; ValueError naming the problem for anything but one well-formed value.

    msgpack's C reader bounds nesting (its own stack), refuses a length longer than
    ``data`` before allocating, trailing bytes, ext types and map keys that are not strings.
    """
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_no_ext, use_list=True)
    except (ValueError, TypeError, ArithmeticError, RecursionError) as error:
        raise ValueError(f"invalid MessagePack ({type(error).__name__}: {error})") from None
    if _MAYBE_BIN_OR_TIMESTAMP.search(data):
        _refuse_timestamps_and_bin_keys(value)
    return value


def _refuse_timestamps_and_bin_keys(value: Any) -> None:
    """ValueError if ``value`` holds a Timestamp (ext -1) or a map key that is bytes: the guest writes neither."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            if any(type(key) is not str for key in item):
                raise ValueError("invalid MessagePack (a map key that is not a string)")
            pending.extend(item.values())
        elif isinstance(item, msgpack.Timestamp):
            raise ValueError("invalid MessagePack (ext type -1, a timestamp, is not part of the wire)")
