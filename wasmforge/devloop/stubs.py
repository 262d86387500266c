"""`watch --stubs DIR`: the serving version's typed stubs, rewritten after each swap that changed them.

Feed :class:`KeepStubs` every event of the reload loop; after each
:class:`~wasmforge.events.Reloaded` it writes the new version's ``.pyi``
(workspace/stubs.py) and reports :class:`~wasmforge.events.StubsWritten`
before the cycle ends, so the cycle's line can say so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from .._text import first_line
from ..errors import WasmforgeError
from ..events import Event, Reloaded, StubsWritten
from ..runtime.inspection import typed_description
from ..workspace.stubs import stub_path, write_stubs

log = logging.getLogger(__name__)


class KeepStubs:
    """Writes the stubs of each new version into ``directory``; reports to ``emit``."""

    def __init__(self, directory: Path, emit: Callable[[Event], None]) -> None:
        self.directory = directory
        self.emit = emit

    def __call__(self, event: Event) -> None:
        if not isinstance(event, Reloaded) or event.path is None:
            return
        try:
            exports, types = typed_description(event.path)
            path, changed = write_stubs(self.directory, event.path.name, exports, types)
        except (WasmforgeError, OSError) as error:
            log.debug("stubs of %s not written", event.path, exc_info=True)
            self.emit(StubsWritten(path=stub_path(self.directory, event.path.name), version=event.version,
                                   changed=False, error=first_line(error)))
            return
        self.emit(StubsWritten(path=path, version=event.version, changed=changed))
