"""`wasmforge build`: cargo for the wasm target, artifacts from cargo's own messages.

Cargo runs with ``--message-format=json-render-diagnostics``: it renders
rustc's diagnostics itself on stderr, which we pass through line by line as
they come, and reports each produced file in a ``compiler-artifact`` message on
stdout, which is where the .wasm paths come from (never from guessing
target/<triple>/<profile>/).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Mapping, Optional, Sequence

from ..errors import BuildError, ConfigError, UsageError
from .cargo import Cargo
from .lockfile import unreadable_in_output
from .manifest import workspace_crates
from .optimize import find_wasm_opt, optimize
from .settings import Settings
from .toolchain import Toolchain, debian_crate_package, release_of

log = logging.getLogger(__name__)

DiagnosticSink = Callable[[str], None]


@dataclass(frozen=True)
class Artifact:
    """One .wasm file cargo produced."""

    crate: str
    path: Path
    size: int
    #: cargo did not need to rebuild it.
    fresh: bool = False
    #: Its size as cargo wrote it, when wasm-opt made it ``size`` (release builds, where wasm-opt is installed).
    size_before_wasm_opt: Optional[int] = None


@dataclass(frozen=True)
class BuildResult:
    artifacts: tuple[Artifact, ...]
    seconds: float
    profile: str
    target: str
    command: tuple[str, ...]
    diagnostics: str = ""
    warnings: int = 0
    #: The cargo + rustc pair that built it (``toolchain.choice_note()`` says why, if not the one on PATH).
    toolchain: Optional[Toolchain] = None


def build_argv(cargo: Cargo, target: str, crates: Sequence[str], color: bool = False,
               members: Optional[Mapping[str, Path]] = None) -> list[str]:
    """The cargo command line that builds ``crates`` for the wasm ``target``.

    A feature of another workspace crate than those built (``other/feature``) is left out: cargo refuses one
    that none of the selected packages has, and a build of one plugin crate must not fail for another's.
    """
    features = [f for f in cargo.features
                if "/" not in f or members is None or f.split("/")[0] not in members or f.split("/")[0] in crates]
    return cargo.argv("build", "--target", cargo.toolchain.rustc_target(target),
                      "--message-format=json-render-diagnostics", f"--color={'always' if color else 'never'}",
                      crates=crates, features=features)


def build(
    settings: Settings,
    crates: Sequence[str] = (),
    *,
    toolchain: Optional[Toolchain] = None,
    on_diagnostic: Optional[DiagnosticSink] = None,
    color: bool = False,
    stop: Optional[threading.Event] = None,
) -> BuildResult:
    """Builds the plugin crates (or ``crates``) and returns the .wasm artifacts.

    ``on_diagnostic`` receives each line cargo prints on stderr as it comes.
    Setting ``stop`` kills cargo and raises BuildError. Raises BuildError when
    cargo fails or produces no .wasm, UsageError for an unknown crate.
    """
    return build_with(settings, Cargo.for_settings(settings, toolchain), workspace_crates(settings.root), crates,
                      on_diagnostic=on_diagnostic, color=color, stop=stop)


def build_with(
    settings: Settings,
    cargo: Cargo,
    members: Mapping[str, Path],
    crates: Sequence[str] = (),
    *,
    on_diagnostic: Optional[DiagnosticSink] = None,
    color: bool = False,
    stop: Optional[threading.Event] = None,
) -> BuildResult:
    """:func:`build` with the cargo to run and the workspace's members (name -> directory) known already."""
    crates = tuple(crates) or settings.plugin_crates
    wanted = _crate_dirs(settings, members, crates)  # an unknown crate is said before the toolchain is looked for
    toolchain = cargo.toolchain
    argv = build_argv(cargo, settings.target, crates, color, members)
    cargo.prepare()
    log.debug("running %s", " ".join(argv))
    started = time.perf_counter()
    # With a stop event, cargo gets a process group of its own, so stopping kills its rustc too.
    process = cargo.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1,
                          start_new_session=stop is not None)
    collected: list[str] = []
    stderr_reader = threading.Thread(
        target=_pump_stderr, args=(process.stderr, collected, on_diagnostic), name="cargo-stderr", daemon=True
    )
    stderr_reader.start()
    watchdog = _kill_when_set(process, stop) if stop is not None else None
    artifacts: list[Artifact] = []
    assert process.stdout is not None
    for line in process.stdout:
        artifact = _artifact_from_message(line, wanted)
        if artifact is not None:
            artifacts.append(artifact)
    returncode = process.wait()
    stderr_reader.join()
    if watchdog is not None:
        watchdog.set()
    seconds = time.perf_counter() - started
    diagnostics = "".join(collected)

    if stop is not None and stop.is_set():
        raise BuildError("build cancelled", diagnostics)
    if returncode != 0:
        raise BuildError(_failure_summary(diagnostics, returncode, toolchain, settings.root), diagnostics)
    missing = [c for c in crates if not any(a.crate == c for a in artifacts)]
    if missing:
        raise BuildError(
            f"cargo built {', '.join(missing)} but produced no .wasm; "
            'its Cargo.toml needs [lib] crate-type = ["cdylib"]',
            diagnostics,
        )
    # cargo reports crates as they finish, in parallel; the caller's order is steadier.
    artifacts.sort(key=lambda artifact: crates.index(artifact.crate) if artifact.crate in crates else len(crates))
    wasm_opt = find_wasm_opt() if settings.profile == "release" else None
    if wasm_opt is not None:
        artifacts = [_optimized(artifact, wasm_opt) for artifact in artifacts]
    return BuildResult(
        artifacts=tuple(artifacts),
        seconds=seconds,
        profile=settings.profile,
        target=toolchain.rustc_target(settings.target),  # the name cargo built for (wasm32-wasi or -wasip1)
        command=tuple(argv),
        diagnostics=diagnostics,
        warnings=len(warning_blocks(diagnostics)),
        toolchain=toolchain,
    )


#: The start of a warning, rustc's (``warning: ...``, ``warning[E0170]: ...``) or cargo's own.
_WARNING_START = re.compile(r"^warning(\[\w+\])?: ")
#: cargo's summary after a crate's warnings (``warning: `x` (lib) generated 2 warnings (1 duplicate)``): no warning.
_WARNING_SUMMARY = re.compile(r"^warning: .* generated \d+ warnings?\b")
#: Where a diagnostic's text ends: a blank line, another diagnostic, or one of cargo's status lines.
_DIAGNOSTIC_END = re.compile(r"^(\s*$|(warning|error)(\[\w+\])?: | +[A-Z][a-z]+ )")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def prepare_out_dir(out_dir: Path) -> None:
    """Makes ``out_dir`` if missing; UsageError when it is not a directory (checked before a build, too)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is not a directory; pass a directory (it is made if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot make --out-dir {out_dir}: {error.strerror}") from error


def _optimized(artifact: Artifact, wasm_opt: str) -> Artifact:
    sizes = optimize(artifact.path, wasm_opt)
    return dataclasses.replace(artifact, size=sizes.after, size_before_wasm_opt=sizes.before)


def copy_artifacts(artifacts: Sequence[Artifact], out_dir: Path) -> tuple[Artifact, ...]:
    """Copies each .wasm into ``out_dir`` (made if missing), replacing a file of that name whole; the copies.

    For shipping plugins as package data (``--out-dir mypkg/plugins``). Each copy is written beside
    its name and renamed over it, so a reader never sees half a module. UsageError when ``out_dir``
    (or a name in it) is not a directory a .wasm can go to.
    """
    prepare_out_dir(out_dir)
    copies = []
    for artifact in artifacts:
        destination = out_dir / artifact.path.name
        if destination.is_symlink() or destination.exists() and not destination.is_file():
            raise UsageError(f"{destination} is not a regular file; wasmforge will not replace it with "
                             f"{artifact.path.name}: move it away")
        try:
            with tempfile.NamedTemporaryFile(dir=out_dir, prefix=f".{artifact.path.name}.", delete=False) as temp:
                with open(artifact.path, "rb") as source:
                    shutil.copyfileobj(source, temp)
            os.chmod(temp.name, 0o644)
            os.replace(temp.name, destination)
        except OSError as error:
            raise UsageError(f"cannot copy {artifact.path.name} to {out_dir}: {error.strerror}") from error
        copies.append(Artifact(crate=artifact.crate, path=destination, size=artifact.size, fresh=artifact.fresh))
    return tuple(copies)


def warning_blocks(diagnostics: str) -> list[str]:
    """Each warning in what cargo printed, as cargo rendered it (its text up to the blank line after it).

    cargo's ``generated N warnings`` summaries and ``build failed, waiting for
    other jobs`` are not warnings of their own. Colours are removed.
    """
    lines = _ANSI.sub("", diagnostics).splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not _WARNING_START.match(line) or _WARNING_SUMMARY.match(line) or line.startswith("warning: build failed"):
            continue
        block = [line]
        while index < len(lines) and not _DIAGNOSTIC_END.match(lines[index]):
            block.append(lines[index])
            index += 1
        blocks.append("\n".join(block))
    return blocks


def check_crates(settings: Settings, members: Mapping[str, Path], crates: Sequence[str] = ()) -> None:
    """ConfigError if wasmforge.toml names a plugin crate the workspace lacks, UsageError for an unknown ``crates``.

    For commands that would otherwise find out only later (watch, test).
    """
    _crate_dirs(settings, members, [*settings.plugin_crates, *crates])


def _crate_dirs(settings: Settings, members: Mapping[str, Path], crates: Sequence[str]) -> dict[Path, str]:
    """Directory -> name for ``crates``; an error naming the members if one is unknown."""
    for crate in crates:
        if crate not in members:
            known = ", ".join(sorted(members)) or "none"
            if crate in settings.plugin_crates:
                raise ConfigError(
                    f"wasmforge.toml names plugin crate {crate!r}, which is not in the workspace (members: {known})"
                )
            raise UsageError(f"no crate {crate!r} in the workspace at {settings.root}; members: {known}")
    return {members[crate].resolve(): crate for crate in crates}


def _pump_stderr(stream: Optional[IO[str]], collected: list[str], sink: Optional[DiagnosticSink]) -> None:
    assert stream is not None
    for line in stream:
        collected.append(line)
        if sink is not None:
            sink(line)


def _kill_when_set(process: "subprocess.Popen[str]", stop: threading.Event) -> threading.Event:
    """Kills cargo when ``stop`` is set; returns the event that retires the watcher."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if stop.wait(0.05):
                if process.poll() is None:
                    _kill_group(process)
                return

    threading.Thread(target=watch, name="cargo-stop", daemon=True).start()
    return done


def _kill_group(process: "subprocess.Popen[str]") -> None:
    """Kills cargo and everything it started (it leads its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (AttributeError, OSError):  # no process groups here, or already gone
        process.kill()


def _artifact_from_message(line: str, wanted: dict[Path, str]) -> Optional[Artifact]:
    """The .wasm in a compiler-artifact message for one of the ``wanted`` crates (by directory)."""
    if '"compiler-artifact"' not in line:
        return None
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return None
    crate = wanted.get(Path(message.get("manifest_path", "")).resolve().parent)
    if crate is None or "cdylib" not in message.get("target", {}).get("kind", []):
        return None
    for filename in message.get("filenames", []):
        if filename.endswith(".wasm"):
            path = Path(filename)
            return Artifact(crate=crate, path=path, size=path.stat().st_size, fresh=bool(message.get("fresh")))
    return None


#: What rustc and cargo say when code or a manifest needs a newer Rust than the one building it.
_TOO_NEW = re.compile(
    r"^error\[E0658\]|^error\[E0635\]|is unstable|is experimental|not stabilized in this version of Cargo"
    r"|requires rustc [\d.]+ or newer",
    re.MULTILINE,
)


def _failure_summary(diagnostics: str, returncode: int, toolchain: Optional[Toolchain] = None,
                     root: Optional[Path] = None) -> str:
    """One line for a failed build: the first error and where it is, and the fix where one is known."""
    if root is not None:
        unreadable_lock = unreadable_in_output(diagnostics, root, toolchain)
        if unreadable_lock is not None:
            return f"build failed: {unreadable_lock}"
    lines = diagnostics.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^error(\[\w+\])?: ", line) and not line.startswith("error: could not compile"):
            where = next((l.strip()[3:].strip() for l in lines[index + 1:index + 3] if l.strip().startswith("-->")), "")
            missing = re.search(r"no matching package named `([^`]+)` found", line)
            hint = (
                f"; install it with `apt-get install {debian_crate_package(missing.group(1))}`"
                if missing else _newer_rust_hint(diagnostics, toolchain)
            )
            return f"build failed: {line}{f' at {where}' if where else ''}{hint}"
    return f"build failed: cargo exited with status {returncode}"


def _newer_rust_hint(diagnostics: str, toolchain: Optional[Toolchain]) -> str:
    """For code that needs a newer Rust: which rustc built it and, if a newer one is on PATH, how to use that."""
    if toolchain is None or not _TOO_NEW.search(diagnostics):
        return ""
    mine = release_of(toolchain.rustc_version)
    skipped = toolchain.passed_over
    if skipped is None:
        return f"; rustc {mine} built this: it needs a newer Rust, or code that rustc {mine} accepts"
    return (f"; rustc {mine} ({toolchain.rustc}) built this because rustc {release_of(skipped.rustc_version)} on PATH "
            f"has no {skipped.target} std: {skipped.fix()}; or write code that rustc {mine} accepts")
