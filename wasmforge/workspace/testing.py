"""`wasmforge test`: the plugin crates' own `cargo test`, natively, then pytest in the workspace."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from ..errors import EXIT_ENVIRONMENT, WasmforgeError
from .build import check_crates
from .cargo import Cargo
from .settings import Settings

LineSink = Callable[[str], None]
_CARGO_RESULT = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
_PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


class TestEnvironmentError(WasmforgeError):
    """pytest is missing where `wasmforge test` would run it."""

    exit_code = EXIT_ENVIRONMENT


@dataclass(frozen=True)
class SuiteResult:
    """What one test runner reported."""

    name: str
    ok: bool
    passed: int = 0
    failed: int = 0
    ran: bool = True
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "ran": self.ran, "passed": self.passed, "failed": self.failed,
                "note": self.note}

    def summary(self) -> str:
        if not self.ran:
            return f"{self.name}: {self.note}"
        state = "ok" if self.ok else "FAILED"
        extra = f", {self.note}" if self.note else ""
        return f"{self.name}: {state}, {self.passed} passed, {self.failed} failed{extra}"


def run_cargo_tests(settings: Settings, cargo: Cargo, members: Mapping[str, Path], on_line: LineSink,
                    crates: Sequence[str] = ()) -> SuiteResult:
    """`cargo test` of the plugin crates (or ``crates``) for the host, where ordinary Rust tools work."""
    check_crates(settings, members, crates)  # a crate wasmforge.toml names but the workspace lacks: a config error
    cargo.prepare()
    argv = cargo.argv("test", "--color=never", crates=tuple(crates) or settings.plugin_crates)
    code, output = _stream(argv, settings.root, on_line, env=cargo.env())
    counts = [tuple(map(int, m.groups())) for m in _CARGO_RESULT.finditer(output)]
    passed, failed = sum(c[0] for c in counts), sum(c[1] for c in counts)
    return SuiteResult("cargo test", ok=code == 0, passed=passed, failed=failed,
                       note="" if code == 0 or counts else "it did not compile; see above")


def run_pytest(settings: Settings, on_line: LineSink, extra_args: Sequence[str] = (), *,
               profile: Optional[str] = None) -> SuiteResult:
    """pytest in the workspace, with this interpreter (which has wasmforge's fixtures).

    Its fixtures build with the workspace's settings; ``profile`` (given on the command line) overrides
    pytest.ini's wasmforge_profiles, and the target and features given pass on too.
    """
    if not _has_python_tests(settings.root) and not extra_args:
        return SuiteResult("pytest", ok=True, ran=False, note="no test_*.py in the workspace; skipped")
    if importlib.util.find_spec("pytest") is None:
        raise TestEnvironmentError(
            f"pytest is not installed for {sys.executable}; install it with `{sys.executable} -m pip install pytest`"
        )
    # wasmforge's fixtures arrive through its pytest11 entry point.
    argv = [sys.executable, "-m", "pytest", *extra_args]
    if profile is not None:
        argv += ["--wasmforge-profile", profile]
    argv += ["--wasmforge-target", settings.target]
    for feature in settings.features:
        argv += ["--wasmforge-feature", feature]
    if settings.no_default_features:
        argv.append("--wasmforge-no-default-features")
    code, output = _stream(argv, settings.root, on_line)
    counts: dict[str, int] = {}
    for number, kind in _PYTEST_COUNTS.findall(output.strip().splitlines()[-1] if output.strip() else ""):
        counts[kind.rstrip("s") if kind.startswith("error") else kind] = int(number)
    failed = counts.get("failed", 0) + counts.get("error", 0)
    # pytest exits 5 when it collected nothing. With the user's own selection
    # (-k, a path) that is a mistyped filter, and a pass would hide it.
    if code == 5 and extra_args:
        return SuiteResult("pytest", ok=False, passed=0, failed=0,
                           note=f"no tests matched {' '.join(extra_args)}")
    return SuiteResult("pytest", ok=code in (0, 5), passed=counts.get("passed", 0), failed=failed,
                       note="no tests collected" if code == 5 else "")


def _has_python_tests(root: Path) -> bool:
    """Whether a test_*.py is anywhere in the workspace (tests/, or a plugin crate's own), not under target/."""
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d != "target" and not d.startswith(".")]
        if any(name.startswith("test_") and name.endswith(".py") for name in files):
            return True
    return False


def _stream(argv: list[str], cwd: Path, on_line: LineSink, env: Optional[dict[str, str]] = None) -> tuple[int, str]:
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace")
    except OSError as error:
        raise TestEnvironmentError(f"could not run {argv[0]}: {error.strerror}") from error
    collected: list[str] = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            collected.append(line)
            on_line(line)
    except BaseException:
        process.kill()
        raise
    return process.wait(), "".join(collected)
