"""The CLI tests once more, as a user who is not root: CI runs the suite as root, who may
read anything, so without this run no CLI test would ever meet "permission denied"
where it does not expect it (a cache, a build directory, a home that is not writable)."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from helpers import REPO
from unprivileged import private_directory, unprivileged

CLI_TESTS = ["tests/test_cli_edges.py", "tests/test_cli_conventions.py", "tests/test_hostile_environment.py"]
#: Tests that make no sense as that user.
NOT_RUN: list[str] = []


@pytest.mark.cargo
def test_the_cli_tests_pass_for_a_user_who_is_not_root() -> None:
    if os.geteuid() != 0:
        pytest.skip(f"the suite itself runs as uid {os.geteuid()}, not root: the CLI tests just ran as that user")
    user = unprivileged()
    if isinstance(user, str):
        pytest.skip(user)
    work = private_directory(user)
    try:
        report = work / "report.xml"
        result = user.run(
            [user.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
             f"--basetemp={work / 'tmp'}", f"--junitxml={report}",
             *(f"--deselect={test}" for test in NOT_RUN), *CLI_TESTS],
            cwd=REPO, home=work,
            # The user's own cargo target and module cache: root's are not theirs to write.
            env={"WASMFORGE_TEST_TARGET_DIR": str(work / "target")},
            timeout=3000,
        )
        assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
        cases = ElementTree.parse(report).getroot().iter("testcase")
        ran = {f"{case.get('classname')}::{case.get('name')}": [child.tag for child in case] for case in cases}
        assert len(ran) > 60, sorted(ran)
        # As that user, the permission cases are not skipped: they run, and pass.
        permission = {name: outcome for name, outcome in ran.items() if "may_not_read" in name}
        assert permission and all(outcome == [] for outcome in permission.values()), permission
    finally:
        shutil.rmtree(work, ignore_errors=True)
