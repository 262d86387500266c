"""mdBook's preprocessor protocol, as `wasmforge chain FUNC --mdbook` speaks it.

mdBook runs the command twice: `COMMAND supports RENDERER` (exit 0: yes), then
`COMMAND` with `[context, book]` as JSON on stdin, expecting the book back on
stdout. The book is `{"items": [...]}` from mdBook 0.5 on and was
`{"sections": [...]}` before; the chain passes either through as it came.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Sequence

from .. import _json
from ..errors import UsageError

#: The keys that hold a book's items: mdBook 0.5's, then 0.4's.
BOOK_KEYS = ("items", "sections")


@dataclass(frozen=True)
class PreprocessorInput:
    """What mdBook hands a preprocessor: the context for every step, and the book."""

    #: mdBook's context (root, config, renderer, mdbook_version) plus ``preprocessor``
    #: (this preprocessor's name in book.toml, or None) and ``options`` (its table there).
    context: dict[str, Any]
    book: dict[str, Any]


def parse_input(raw: bytes, argv: Sequence[str]) -> PreprocessorInput:
    """mdBook's ``[context, book]`` from ``raw``; ``argv`` (this process's arguments) finds our table."""
    try:
        payload = _json.loads(raw)
    except _json.NestedTooDeep:
        raise UsageError("--mdbook: the JSON on stdin is nested too deeply to read") from None
    except ValueError as error:
        raise UsageError(f"--mdbook expects mdBook's [context, book] JSON on stdin: {error}") from None
    if not (isinstance(payload, list) and len(payload) == 2):
        raise UsageError("--mdbook expects mdBook's [context, book] JSON array on stdin")
    context, book = payload
    if not isinstance(context, dict) or not isinstance(book, dict):
        raise UsageError("--mdbook expects mdBook's [context, book] on stdin: both must be JSON objects")
    if not any(isinstance(book.get(key), list) for key in BOOK_KEYS):
        raise UsageError("--mdbook: the book on stdin has no list of items (mdBook 0.5's \"items\" or 0.4's \"sections\")")
    config = context.get("config")
    name, options = preprocessor_table(config if isinstance(config, dict) else {}, argv)
    return PreprocessorInput(context={**context, "preprocessor": name, "options": options}, book=book)


def preprocessor_table(config: dict[str, Any], argv: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """The name and ``[preprocessor.NAME]`` table of book.toml whose ``command`` ran this process.

    mdBook does not tell a preprocessor its name, but it runs the table's ``command``
    split into words: the table whose words end with this process's arguments is ours.
    (None, {}) when none or several match.
    """
    tables = config.get("preprocessor")
    if not isinstance(tables, dict) or not argv:
        return None, {}
    ours = [(name, table) for name, table in tables.items()
            if isinstance(table, dict) and _runs(table.get("command"), argv)]
    return ours[0] if len(ours) == 1 else (None, {})


def _runs(command: Any, argv: Sequence[str]) -> bool:
    if not isinstance(command, str):
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return len(words) > len(argv) and words[-len(argv):] == list(argv)


def check_supports(extra: Sequence[str]) -> None:
    """mdBook's ``supports RENDERER`` question, checked: the chain itself works on any renderer's book."""
    if len(extra) != 2:
        raise UsageError(f"mdBook asks `supports RENDERER`; got `{' '.join(extra)}`")
