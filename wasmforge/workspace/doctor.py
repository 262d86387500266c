"""`wasmforge doctor`: what toolchain was found, what is missing, and the fix for each."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from ..errors import ToolchainError
from .optimize import TEMPLATE_SAVING, WASM_OPT_ARGS, find_wasm_opt, wasm_opt_version
from .toolchain import (
    DEBIAN_REGISTRY,
    TEMPLATE_CRATES,
    DEFAULT_TARGET,
    WASM_TARGETS,
    Survey,
    Toolchain,
    TriedPair,
    debian_crate_package,
    fix_for_target,
    offline_from_env,
    registry_problems,
    release_of,
    survey,
)


@dataclass(frozen=True)
class Check:
    """One line of the report: what was looked at, whether it is fine, and the fix if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    #: A missing optional piece (such as the WASI target) does not fail the doctor.
    required: bool = True
    #: Works, but not as one would guess: an older rustc chosen over the one on PATH.
    warning: bool = False


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]
    toolchain: Optional[Toolchain]
    tried: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when a build for the default target can work."""
        return all(check.ok for check in self.checks if check.required)

    def to_json(self) -> dict[str, Any]:
        chosen = self.toolchain
        return {
            "ok": self.ok,
            "toolchain": None if chosen is None else {
                "cargo": str(chosen.cargo),
                "rustc": str(chosen.rustc),
                "rustc_version": chosen.rustc_version,
                "origin": chosen.origin,
                "sysroot": str(chosen.sysroot),
                "targets": list(chosen.targets),
                "passed_over": None if chosen.passed_over is None else {
                    "rustc": str(chosen.passed_over.rustc),
                    "rustc_version": chosen.passed_over.rustc_version,
                    "target": chosen.passed_over.target,
                },
            },
            "checks": [
                {"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix, "required": c.required,
                 "warning": c.warning}
                for c in self.checks
            ],
            "tried": list(self.tried),
        }


def diagnose(env: Optional[Mapping[str, str]] = None, offline: bool = False) -> Report:
    """Looks at the machine; never raises for a missing piece, reports it."""
    env = os.environ if env is None else env
    found = survey(env)
    try:
        chosen: Optional[Toolchain] = found.choose(DEFAULT_TARGET)
    except ToolchainError:
        chosen = None
    tried = tuple(_tried_line(c) for c in found.pairs)
    checks = [*_toolchain_checks(found, chosen), *_crate_checks(chosen, offline or offline_from_env(env)),
              _wasm_opt_check(env)]
    return Report(checks=tuple(checks), toolchain=chosen, tried=tried)


def _wasm_opt_check(env: Mapping[str, str]) -> Check:
    """wasm-opt is optional: without it release builds are as cargo made them, only larger."""
    wasm_opt = find_wasm_opt(env)
    if wasm_opt is not None:
        return Check("wasm-opt", True, f"{wasm_opt} ({wasm_opt_version(wasm_opt)}): release builds run "
                                       f"wasm-opt {' '.join(WASM_OPT_ARGS)}", required=False)
    if env.get("WASMFORGE_WASM_OPT", "").strip().lower() in ("off", "0", "false", "no"):
        return Check("wasm-opt", True, "off (WASMFORGE_WASM_OPT): release builds are as cargo makes them",
                     required=False)
    return Check("wasm-opt", False, f"not found: release builds are as cargo makes them; wasm-opt would save "
                                    f"about {TEMPLATE_SAVING:.0%} of a release .wasm (the template plugin's: "
                                    "72.6 KiB -> 43.3 KiB)",
                 "`apt-get install binaryen` (or point WASMFORGE_WASM_OPT at a wasm-opt)", required=False)


def _tried_line(pair: TriedPair) -> str:
    if pair.toolchain is not None:
        t = pair.toolchain
        targets = ", ".join(t.targets) or "no wasm targets"
        return f"{pair.origin}: {t.rustc} ({t.rustc_version}; {targets})"
    return f"{pair.origin}: {pair.problem}"


def _toolchain_checks(found: Survey, chosen: Optional[Toolchain]) -> list[Check]:
    if chosen is None:
        usable = next((c.toolchain for c in found.pairs if c.toolchain is not None), None)
        checks = [
            Check(
                "toolchain",
                False,
                f"no cargo + rustc pair has the {DEFAULT_TARGET} std",
                fix_for_target(DEFAULT_TARGET, found.rustup),
            )
        ]
        if usable is not None:
            checks.append(Check("rustc", True, f"{usable.rustc} ({usable.rustc_version}), without the wasm std"))
        return checks
    try:
        cargo_version = chosen.cargo_version()
    except ToolchainError as error:
        cargo_version = f"version unknown: {error}"
    checks = [
        Check("cargo", True, f"{chosen.cargo} ({cargo_version}), found via {chosen.origin}"),
        _rustc_check(chosen),
    ]
    for target in WASM_TARGETS[:2]:
        has = chosen.has_target(target)
        checks.append(
            Check(
                f"target {target}",
                has,
                "installed" if has else "not installed",
                "" if has else fix_for_target(target, found.rustup if not chosen.is_debian else None),
                required=target == DEFAULT_TARGET,
            )
        )
    linker = chosen.linker()
    checks.append(
        Check(
            "linker",
            linker is not None,
            str(linker) if linker else "rust-lld not found",
            "" if linker else "`apt-get install lld` (Debian) or reinstall the rustup toolchain",
        )
    )
    return checks


def _rustc_check(chosen: Toolchain) -> Check:
    """The chosen rustc; a warning when an older one was chosen over the one first on PATH."""
    detail = f"{chosen.rustc} ({chosen.rustc_version}), sysroot {chosen.sysroot}"
    skipped = chosen.passed_over
    if skipped is None:
        return Check("rustc", True, detail)
    mine, theirs = release_of(chosen.rustc_version), release_of(skipped.rustc_version)
    return Check(
        "rustc",
        True,
        f"{detail}; chosen because rustc {theirs} first on PATH ({skipped.rustc}) has no {skipped.target} std, "
        f"so code that needs Rust newer than {mine} will not compile",
        skipped.fix(),
        warning=True,
    )


def _crate_checks(chosen: Optional[Toolchain], offline: bool) -> list[Check]:
    uses_debian = offline or (chosen is not None and chosen.is_debian)
    if not uses_debian:
        return [Check("crates", True, "crates.io (needs network; pass --offline to use Debian's registry)")]
    missing = registry_problems()
    if not missing:
        return [Check("crates", True, f"Debian registry {DEBIAN_REGISTRY} (offline), with every crate the templates use")]
    if missing == [f"{DEBIAN_REGISTRY} is missing"]:
        packages = " ".join(debian_crate_package(c) for c in TEMPLATE_CRATES)
        return [Check("crates", False, f"{DEBIAN_REGISTRY} is missing", f"`apt-get install {packages}`")]
    packages = " ".join(debian_crate_package(c) for c in missing)
    return [
        Check(
            "crates",
            False,
            f"Debian registry {DEBIAN_REGISTRY} lacks {', '.join(missing)}",
            f"`apt-get install {packages}`",
        )
    ]
