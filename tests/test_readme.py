"""The README's two commands are what CI runs and what a newcomer types."""

from __future__ import annotations

import re

from helpers import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section, re.S)


def test_readme_has_exactly_two_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    main, tests = commands
    assert main.startswith("./scripts/setup.sh") and main.endswith("call add 1 2")
    assert tests.startswith("./scripts/setup.sh --test")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci/run").read_text().strip().splitlines()
    assert ci[-1] == readme_commands()[1]


def test_ci_checks_types_as_the_readme_says() -> None:
    """mypy --strict is CI's step of its own, before the tests, and the README says how to run it."""
    mypy = ".venv/bin/python -m mypy --strict wasmforge"
    ci = (REPO / ".ci/run").read_text().strip().splitlines()
    assert mypy in ci and ci.index(mypy) < len(ci) - 1
    assert mypy in (REPO / "README.md").read_text()
