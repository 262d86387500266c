"""`wasmforge call --native`: the same call, natively, through the workspace's runner crate."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

from ..errors import UsageError
from .cargo import Cargo


def run_native(cargo: Cargo, members: Mapping[str, Path], arguments: Sequence[str], *,
               crate: Optional[str] = None) -> int:
    """Runs the workspace's runner crate natively (`cargo run -p NAME-runner -- ARGS`); its exit status.

    The runner calls the plugin's functions through the same generated glue as
    the .wasm, so the same call can be compared natively and in wasm. Its
    output goes straight to this process's stdout and stderr.
    """
    runners = sorted(name for name in members if name.endswith("-runner"))
    if crate is None:
        if not runners:
            raise UsageError(f"the workspace at {cargo.root} has no runner crate (a crate named NAME-runner)")
        crate = runners[0]
    elif crate not in members:
        raise UsageError(f"no crate {crate!r} in the workspace at {cargo.root}; runners: {', '.join(runners) or 'none'}")
    cargo.prepare()
    return cargo.run(cargo.argv("run", "-q", crates=[crate], trailing=arguments))
