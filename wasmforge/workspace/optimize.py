"""wasm-opt (Debian's binaryen) on release builds: smaller .wasm files, sections and panics kept.

Where ``wasm-opt`` is on PATH (or ``WASMFORGE_WASM_OPT`` names it; ``off``
skips it), a release build runs ``wasm-opt -O2`` over each .wasm cargo
produced, in place, and reports the size before and after. wasm-opt keeps
custom sections (the ``wasmforge.exports`` metadata) and data (panic
messages). A note beside the file (``NAME.wasm.wasm-opt``: the optimized
file's sha256 and its size before) tells an artifact cargo did not rebuild,
already optimized, from a fresh one. Without wasm-opt nothing changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from .._text import first_line
from ..errors import BuildError

#: Speed as much as size: -Oz saves about 2% more on the template plugin and runs slower.
WASM_OPT_ARGS = ("-O2",)
#: What wasm-opt -O2 did to the template plugin's release build here (72,628 -> 43,334 bytes): what
#: `doctor` quotes when wasm-opt is missing.
TEMPLATE_SAVING = 0.40
_OFF = ("off", "0", "false", "no")


@dataclass(frozen=True)
class Optimized:
    before: int
    after: int


def find_wasm_opt(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The wasm-opt to run (``WASMFORGE_WASM_OPT``, default ``wasm-opt`` on PATH); None if off or not found."""
    env = os.environ if env is None else env
    wanted = env.get("WASMFORGE_WASM_OPT", "").strip() or "wasm-opt"
    if wanted.lower() in _OFF:
        return None
    return shutil.which(wanted, path=env.get("PATH"))


def wasm_opt_version(wasm_opt: str) -> str:
    """``wasm-opt --version``'s line ("wasm-opt version 108"), or why it could not be run."""
    try:
        result = subprocess.run([wasm_opt, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"cannot run it: {error}"
    return first_line(result.stdout.strip() or result.stderr.strip(), "unknown version")


def optimize(path: Path, wasm_opt: str) -> Optimized:
    """Runs wasm-opt over ``path`` in place (unless the note says it is optimized already); the sizes."""
    note = path.with_name(path.name + ".wasm-opt")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        noted_digest, noted_before = note.read_text().split()
        if noted_digest == digest:
            return Optimized(int(noted_before), len(data))
    except (OSError, ValueError):
        pass
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".wasm-opt-") as folder:
        output = Path(folder) / path.name
        try:
            result = subprocess.run([wasm_opt, *WASM_OPT_ARGS, str(path), "-o", str(output)],
                                    capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as error:
            raise BuildError(f"wasm-opt could not run on {path.name}: {error}; set WASMFORGE_WASM_OPT=off "
                             "to build without it") from error
        if result.returncode != 0 or not output.is_file():
            raise BuildError(f"wasm-opt failed on {path.name}: {first_line(result.stderr.strip(), 'no message')}; "
                             "set WASMFORGE_WASM_OPT=off to build without it", result.stderr)
        optimized = output.read_bytes()
        os.replace(output, path)
    note.write_text(f"{hashlib.sha256(optimized).hexdigest()} {len(data)}\n")
    return Optimized(len(data), len(optimized))
