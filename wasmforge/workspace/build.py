"""`wasmforge build`: cargo for the wasm target, artifacts from cargo's own messages.

Cargo runs with ``--message-format=json-render-diagnostics``: it renders
rustc's diagnostics itself on stderr, which we pass through line by line as
they come, and reports each produced file in a ``compiler-artifact`` message on
stdout, which is where the .wasm paths come from (never from guessing
target/<triple>/<profile>/).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Optional, Sequence

from .config import Settings, workspace_crates
from .errors import BuildError, ConfigError, UsageError
from .lockfile import make_readable, unreadable_in_output
from .toolchain import Toolchain, debian_crate_package, find_toolchain, offline_config_args, release_of

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


@dataclass
class _Collected:
    lines: list[str] = field(default_factory=list)


def cargo_command(settings: Settings, toolchain: Toolchain, crates: Sequence[str], color: bool = False) -> list[str]:
    """The cargo invocation for ``crates``, as a list of arguments."""
    argv = [
        str(toolchain.cargo),
        "build",
        "--target",
        toolchain.rustc_target(settings.target),
        "--message-format=json-render-diagnostics",
        f"--color={'always' if color else 'never'}",
    ]
    for crate in crates:
        argv += ["-p", crate]
    if settings.profile == "release":
        argv.append("--release")
    if settings.offline or toolchain.is_debian:
        argv += offline_config_args()
    return argv


def cargo_env(settings: Settings, toolchain: Toolchain) -> dict[str, str]:
    """The environment wasmforge runs cargo with: the toolchain's pair, and [build] target_dir unless CARGO_TARGET_DIR is set."""
    env = toolchain.cargo_env()
    if settings.target_dir is not None and not env.get("CARGO_TARGET_DIR"):
        env["CARGO_TARGET_DIR"] = str(settings.target_dir)
    return env


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
    crates = tuple(crates) or settings.plugin_crates
    wanted = _crate_dirs(settings, crates)
    toolchain = toolchain or find_toolchain(settings.target)
    argv = cargo_command(settings, toolchain, crates, color)
    make_readable(settings.root, toolchain)
    log.debug("running %s", " ".join(argv))
    started = time.perf_counter()
    try:
        process = subprocess.Popen(
            argv,
            cwd=settings.root,
            env=cargo_env(settings, toolchain),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            # With a stop event, cargo gets a process group of its own, so stopping kills its rustc too.
            start_new_session=stop is not None,
        )
    except OSError as error:
        raise BuildError(f"could not run {argv[0]}: {error.strerror}") from None

    collected = _Collected()
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
    diagnostics = "".join(collected.lines)

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


def check_crates(settings: Settings, crates: Sequence[str] = ()) -> None:
    """ConfigError if wasmforge.toml names a plugin crate the workspace lacks, UsageError for an unknown ``crates``.

    For commands that would otherwise find out only later (watch, test).
    """
    _crate_dirs(settings, [*settings.plugin_crates, *crates])


def _crate_dirs(settings: Settings, crates: Sequence[str]) -> dict[Path, str]:
    """Directory -> name for ``crates``; an error naming the members if one is unknown."""
    members = workspace_crates(settings.root)
    for crate in crates:
        if crate not in members:
            known = ", ".join(sorted(members)) or "none"
            if crate in settings.plugin_crates:
                raise ConfigError(
                    f"wasmforge.toml names plugin crate {crate!r}, which is not in the workspace (members: {known})"
                )
            raise UsageError(f"no crate {crate!r} in the workspace at {settings.root}; members: {known}")
    return {members[crate].resolve(): crate for crate in crates}


def _pump_stderr(stream: Optional[IO[str]], collected: _Collected, sink: Optional[DiagnosticSink]) -> None:
    assert stream is not None
    for line in stream:
        collected.lines.append(line)
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


def run_native(settings: Settings, arguments: Sequence[str], *, crate: Optional[str] = None,
               toolchain: Optional[Toolchain] = None) -> int:
    """Runs the workspace's runner crate natively (`cargo run -p NAME-runner -- ARGS`); its exit status.

    The runner calls the plugin's functions through the same generated glue as
    the .wasm, so the same call can be compared natively and in wasm. Its
    output goes straight to this process's stdout and stderr.
    """
    members = workspace_crates(settings.root)
    runners = sorted(name for name in members if name.endswith("-runner"))
    if crate is None:
        if not runners:
            raise UsageError(f"the workspace at {settings.root} has no runner crate (a crate named NAME-runner)")
        crate = runners[0]
    elif crate not in members:
        raise UsageError(f"no crate {crate!r} in the workspace at {settings.root}; runners: {', '.join(runners) or 'none'}")
    toolchain = toolchain or find_toolchain(settings.target)
    make_readable(settings.root, toolchain)
    argv = [str(toolchain.cargo), "run", "-q", "-p", crate]
    if settings.profile == "release":
        argv.append("--release")
    if settings.offline or toolchain.is_debian:
        argv += offline_config_args()
    try:
        return subprocess.run([*argv, "--", *arguments], cwd=settings.root, env=cargo_env(settings, toolchain)).returncode
    except OSError as error:
        raise BuildError(f"could not run {argv[0]}: {error.strerror}") from None
