"""Sandbox limits, as plain data: a time limit per call, a memory cap, a fuel budget, output caps.

:class:`Limits` says what one plugin may use; the runtime enforces it
(wasmforge.runtime.engines: the engine configured for exactly these limits,
and the epoch ticker behind time limits). Time limits count epochs: every
``TICK`` seconds (or every few ticks, for long time limits) a running timed
call's epoch advances, and the call traps once its deadline passes.

The options of ``wasmforge.load`` (and `--timeout`, `--memory-limit`,
`--fuel`, and ``[limits]`` in wasmforge.toml) become Limits in one place,
:meth:`Limits.from_options`: ``memory_limit=`` is the ``memory`` field.
"""

from __future__ import annotations

import dataclasses
import fractions
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from ._text import format_bytes
from .errors import OptionError

#: How often the epoch advances: the granularity of time limits.
TICK = 0.01
DEFAULT_MEMORY_LIMIT = 1 << 30  # 1 GiB of linear memory
#: Longer than any call should run; past it a deadline in epoch ticks stops being a useful number.
MAX_TIMEOUT = 365 * 24 * 3600.0
DEFAULT_MAX_MODULE_SIZE = 64 << 20  # refuse .wasm files over 64 MiB
#: wasmtime keeps a store's fuel in a u64 and its memory limit in an i64: larger values would wrap.
MAX_FUEL = 2**64 - 1
MAX_MEMORY_LIMIT = 2**63 - 1
#: Table elements a plugin may have (each is a function reference).
DEFAULT_TABLE_ELEMENTS = 1_000_000
#: Bytes a call may write to each of stdout and stderr (WASI plugins whose output is captured).
DEFAULT_MAX_OUTPUT = 16 << 20
#: A deadline is at most this many epochs away: a longer time limit advances the epoch less often,
#: so cancelling (which advances it past every deadline) costs at most this many steps.
MAX_DEADLINE_EPOCHS = 1000

_SIZE = re.compile(r"^\s*(\d{1,30}(?:\.\d{1,30})?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}

SizeLike = Union[int, str, None]

#: The limit options of :func:`wasmforge.load` (and of HotPlugin's and load_dir's ``**options``), each with
#: the :class:`Limits` field it sets: the one place where an option's name and its field's differ.
LIMIT_OPTIONS = {
    "timeout": "timeout",
    "memory_limit": "memory",
    "fuel": "fuel",
    "cancellable": "cancellable",
    "max_module_size": "max_module_size",
    "interruptible": "interruptible",
    "max_output": "max_output",
}
#: The options that take a size: bytes, or text like "64MiB".
SIZE_OPTIONS = ("memory_limit", "max_module_size", "max_output")


def parse_size(value: SizeLike, what: str = "size") -> Optional[int]:
    """Bytes from 1048576, "64MiB", "64 MB" or "1g"; None stays None."""
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        if isinstance(value, int) and value <= 0:
            raise OptionError(f"{what} must be positive, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            unit = (match.group(2) or "").lower()[:1]
            size = int(fractions.Fraction(match.group(1)) * _UNITS[unit])  # exact: no float rounding or overflow
            if size > 0:
                return size
    raise OptionError(f"{what} {value!r:.60} is not a size; use bytes or e.g. '64MiB', '1GiB'")


@dataclass(frozen=True)
class Limits:
    """What one plugin may use. ``None`` turns a limit off."""

    #: Seconds a single call may run.
    timeout: Optional[float] = None
    #: Bytes of linear memory.
    memory: Optional[int] = DEFAULT_MEMORY_LIMIT
    #: Fuel per call: roughly the number of wasm instructions.
    fuel: Optional[int] = None
    #: Allow :meth:`Plugin.cancel` (implied by ``timeout``).
    cancellable: bool = False
    #: Refuse module files larger than this many bytes.
    max_module_size: Optional[int] = DEFAULT_MAX_MODULE_SIZE
    #: Let Ctrl-C (SIGINT) stop a call running on the main thread; False saves the epoch checks.
    interruptible: bool = True
    #: Bytes a call may write to each of stdout and stderr; the rest is dropped (WASI, captured output).
    max_output: Optional[int] = DEFAULT_MAX_OUTPUT

    def __post_init__(self) -> None:
        if self.timeout is not None and not (
            isinstance(self.timeout, (int, float)) and not isinstance(self.timeout, bool)
            and 0 < self.timeout <= MAX_TIMEOUT
        ):
            raise OptionError(
                f"timeout must be a positive number of seconds up to {MAX_TIMEOUT:.0f} (a year), got {self.timeout!r}; "
                "leave it unset for no time limit"
            )
        if self.fuel is not None and not (
            isinstance(self.fuel, int) and not isinstance(self.fuel, bool) and 0 < self.fuel <= MAX_FUEL
        ):
            raise OptionError(f"fuel must be a whole number from 1 to 2**64 - 1, got {self.fuel!r}; "
                              "leave it unset for no fuel limit")
        if not isinstance(self.interruptible, bool):
            raise OptionError(f"interruptible must be True or False, got {self.interruptible!r}")
        for name in ("memory", "max_module_size", "max_output"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise OptionError(f"{name} must be a positive number of bytes, got {value!r}; see parse_size()")
        if not isinstance(self.cancellable, bool):
            raise OptionError(f"cancellable must be True or False, got {self.cancellable!r}")
        if self.memory is not None and self.memory > MAX_MEMORY_LIMIT:
            raise OptionError(f"memory must be at most 2**63 - 1 bytes (8 EiB), got {self.memory!r}; "
                              "leave it unset (None) for no memory limit")

    @property
    def uses_epochs(self) -> bool:
        """A time limit or cancellation: the plugin's epoch is its own, advanced for its calls alone."""
        return self.timeout is not None or self.cancellable

    @property
    def epoch_checks(self) -> bool:
        """Whether the plugin's code checks the epoch at all (a time limit, cancellation or Ctrl-C)."""
        return self.uses_epochs or self.interruptible

    @property
    def engine_key(self) -> tuple[bool, bool]:
        """The compiled-code configuration of an engine shared by plugins without epochs of their own."""
        return (self.interruptible, self.fuel is not None)

    @property
    def epoch_period(self) -> int:
        """TICKs per epoch: 1, or more for time limits so long that a deadline would be over MAX_DEADLINE_EPOCHS away."""
        if self.timeout is None:
            return 1
        return max(1, math.ceil(self.timeout / (TICK * MAX_DEADLINE_EPOCHS)))

    @property
    def deadline_ticks(self) -> int:
        """Epochs a call may run: the timeout, rounded up, plus the epoch in progress."""
        if self.timeout is None:
            return 1
        return math.ceil(self.timeout / (TICK * self.epoch_period)) + 1

    @classmethod
    def from_options(cls, options: Mapping[str, Any], base: Optional["Limits"] = None) -> "Limits":
        """Limits from options named as :func:`wasmforge.load` names them (sizes may be text), over ``base``.

        ``options`` must be limit options only (:data:`LIMIT_OPTIONS`); OptionError for a value a limit cannot take.
        """
        changes: dict[str, Any] = {}
        for option, value in options.items():
            field = LIMIT_OPTIONS[option]
            changes[field] = parse_size(value, option) if option in SIZE_OPTIONS else value
        return dataclasses.replace(base or cls(), **changes)

    def describe_memory(self) -> str:
        return format_bytes(self.memory) if self.memory is not None else "unlimited"
