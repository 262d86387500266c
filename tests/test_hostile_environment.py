"""What the machine, not the plugin, can throw at wasmforge: directories that may not be read,
a deleted current directory, closed or full standard streams, bytes that are not UTF-8,
templates holding symbolic links, plugins served through symbolic links.

Each command answers with one line and a documented exit code, never a traceback. The
permission cases run as a user who is not root (root may read anything): through setpriv
as `nobody` when the suite runs as root, as the suite's own user otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

from helpers import REPO, assert_one_line_error, run_cli
from unprivileged import Unprivileged, private_directory, unprivileged
from wat_plugins import write_answer
from wasmforge import CheckCall, HotPlugin
from wasmforge.errors import ScaffoldError
from wasmforge.workspace.scaffold import new_workspace

TIMEOUT = 30.0


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return env


def cli(*args: "str | bytes", cwd: Path = REPO, preexec: Optional[Callable[[], None]] = None,
        stdout: "int | None" = subprocess.PIPE, input: Optional[str] = None) -> "subprocess.CompletedProcess[str]":
    """`python -m wasmforge ARGS` with control over the standard streams, which run_cli does not give."""
    return subprocess.run([sys.executable, "-m", "wasmforge", *args], cwd=cwd, env=cli_env(), stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=600, preexec_fn=preexec,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


# ---- directories the user may not read -------------------------------------------------------------


@pytest.fixture
def user() -> Unprivileged:
    found = unprivileged()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture
def place(user: Unprivileged, demo) -> Iterator[Path]:
    """A directory of the unprivileged user's, with a plugin, a workspace and locked directories in it."""
    base = private_directory(user)
    try:
        shutil.copy(demo.wasm, base / "plugin.wasm")
        (base / "locked").mkdir()
        shutil.copy(demo.wasm, base / "locked/plugin.wasm")
        (base / "template").mkdir()
        (base / "template/Cargo.toml").write_text("[workspace]\n")
        workspace = base / "ws"
        shutil.copytree(demo.root, workspace, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
        for path in [base, *base.rglob("*")]:
            user.own(path)
        for locked in (base / "locked", base / "template"):
            locked.chmod(0)
        (workspace / "wasmforge.toml").chmod(0)
        yield base
    finally:
        for path in (base / "locked", base / "template"):
            path.chmod(0o700)
        shutil.rmtree(base)


@pytest.mark.cargo
@pytest.mark.parametrize("args, exit_code, fragments", [
    (["-C", "locked", "build"], 2, ["-C locked: permission denied: you may not read it"]),
    (["-C", "locked/deeper", "call", "add", "1", "2"], 2, ["-C locked/deeper: cannot reach it (Permission denied)"]),
    (["call", "--plugin", "locked/plugin.wasm", "add", "1", "2"], 2, ["cannot reach the plugin locked/plugin.wasm",
                                                                        "Permission denied"]),
    (["inspect", "locked/plugin.wasm"], 2, ["cannot reach the plugin locked/plugin.wasm", "Permission denied"]),
    (["-C", "ws", "build"], 2, ["cannot read", "ws/wasmforge.toml: Permission denied"]),
    (["-C", "ws", "call", "add", "1", "2"], 2, ["cannot read", "ws/wasmforge.toml: Permission denied"]),
    (["-C", "ws", "watch"], 2, ["cannot read", "ws/wasmforge.toml: Permission denied"]),
    (["chain", "--dir", "locked", "preprocess", "--input", "x"], 1, ["cannot list the plugins in",
                                                                     "locked: Permission denied"]),
    (["new", "x", "--template", "./template"], 2, ["template/template.toml: Permission denied"]),
    (["new", "x", "--path", "locked/x"], 2, ["locked/x: Permission denied", "nothing was written"]),
])
def test_what_the_user_may_not_read_is_one_line(user: Unprivileged, place: Path, args, exit_code, fragments) -> None:
    result = user.wasmforge(*args, cwd=place, home=place)
    assert_one_line_error(result, exit_code, *fragments)


@pytest.mark.cargo
def test_the_unprivileged_user_really_is_refused(user: Unprivileged, place: Path) -> None:
    """The cases above test something: the same user reads the plugin when it is not locked away."""
    result = user.wasmforge("call", "--plugin", "plugin.wasm", "add", "1", "2", cwd=place, home=place)
    assert (result.returncode, result.stdout) == (0, "3\n"), result.stderr
    assert os.stat(place).st_uid == user.uid


# ---- the current directory, and the standard streams ------------------------------------------------


def test_a_deleted_current_directory(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    script = 'mkdir "$1" && cd "$1" && rmdir "$1" && shift && exec "$@"'
    for args in (["build"], ["call", "add"], ["new", "x"]):
        result = subprocess.run(["sh", "-c", script, "sh", str(gone), sys.executable, "-m", "wasmforge", *args],
                                env=cli_env(), capture_output=True, text=True,
                                timeout=600)
        assert_one_line_error(result, 2, "the current directory cannot be used", "was it deleted?",
                              "pass -C with an absolute path")
    # With -C naming a directory that exists, a deleted current directory does not matter.
    ok = subprocess.run(["sh", "-c", script, "sh", str(gone), sys.executable, "-m", "wasmforge", "-C", str(tmp_path),
                         "new", "fine", "--dry-run"], env=cli_env(),
                        capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0 and ok.stdout.startswith(f"would create {tmp_path / 'fine'} with:"), ok.stderr


@pytest.mark.cargo
def test_a_full_stdout(demo) -> None:
    with open("/dev/full", "w") as full:
        for args in (["call", "--plugin", str(demo.wasm), "add", "1", "2"], ["inspect", str(demo.wasm)],
                     ["call", "--plugin", str(demo.wasm), "--list"], ["--help"], ["--version"], ["call", "--help"],
                     ["new", "x", "--dry-run"]):
            result = cli(*args, stdout=full.fileno())
            assert_one_line_error(result, 1, "could not write the result to stdout: No space left on device")


def test_a_closed_stdout_is_refused_before_anything_is_done(tmp_path: Path) -> None:
    result = cli("new", "x", cwd=tmp_path, stdout=None, preexec=lambda: os.close(1))
    assert_one_line_error(result, 2, "stdout is closed", ">/dev/null")
    assert not (tmp_path / "x").exists()
    assert_one_line_error(cli("--help", stdout=None, preexec=lambda: os.close(1)), 2, "stdout is closed")


@pytest.mark.cargo
def test_closed_stdin_and_stderr(demo, tmp_path: Path) -> None:
    chain = cli("chain", "add", "--dir", str(demo.wasm.parent), stdout=subprocess.PIPE, preexec=lambda: os.close(0))
    assert_one_line_error(chain, 2, "pipe the input in")
    # With nowhere to say it, the exit code still does.
    quiet = cli("-C", str(tmp_path / "nowhere"), "build", preexec=lambda: os.close(2))
    assert (quiet.returncode, quiet.stderr) == (2, "")


@pytest.mark.cargo
def test_input_that_is_not_utf8(demo) -> None:
    result = cli("chain", "preprocess", "--dir", str(demo.wasm.parent), "--input", b"caf\xe9")
    assert_one_line_error(result, 2, "--input is not UTF-8 text (at byte 3)", "pipe such input in on stdin")


# ---- templates hold files, not links ------------------------------------------------------------------


def user_template(root: Path) -> Path:
    template = root / "tpl"
    (template / "crates/{{name}}-plugin/src").mkdir(parents=True)
    (template / "Cargo.toml").write_text('[workspace]\nmembers = ["crates/*"]\n')
    (template / "crates/{{name}}-plugin/src/lib.rs").write_text("// {{name}}\n")
    (template / "template.toml").write_text('next = ["wasmforge build --release"]\n')
    return template


@pytest.mark.parametrize("link, points_to", [
    ("secret.txt", "SECRET"),  # a file only its owner may read, as /etc/shadow is
    ("crates/{{name}}-plugin/keys", "SECRET_DIR"),  # a directory
    ("dangling.txt", "nowhere"),  # a link to nothing
])
def test_a_template_with_a_symbolic_link_is_refused(tmp_path: Path, link: str, points_to: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root:$6$hash:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/id_ed25519").write_text("PRIVATE KEY\n")
    target = {"SECRET": secret, "SECRET_DIR": tmp_path / "keys", "nowhere": tmp_path / "nowhere"}[points_to]
    template = user_template(tmp_path)
    (template / link).symlink_to(target)
    result = run_cli("new", "app", "--template", str(template), cwd=tmp_path)
    assert_one_line_error(result, 2, f"template '{template}' holds a symbolic link, {link} -> {target}",
                          "templates copy files, not links", "nothing was written")
    assert not (tmp_path / "app").exists()
    with pytest.raises(ScaffoldError, match="holds a symbolic link"):
        new_workspace("app", tmp_path / "app", template=str(template), dry_run=True)


def test_a_relative_template_is_found_from_minus_c(tmp_path: Path) -> None:
    project = tmp_path / "project"
    user_template(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("-C", str(project), "new", "app", "--template", "./tpl", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (project / "app/crates/app-plugin/src/lib.rs").read_text() == "// app\n"
    assert result.stderr.splitlines()[-1] == "  wasmforge build --release"  # next steps from that template too
    assert_one_line_error(run_cli("new", "app2", "--template", "./tpl", cwd=elsewhere), 2,
                          "template directory ./tpl does not exist")


# ---- a plugin served through a symbolic link -------------------------------------------------------


def test_from_file_reloads_when_the_file_a_link_leads_to_changes(tmp_path: Path) -> None:
    (tmp_path / "builds").mkdir()
    (tmp_path / "served").mkdir()
    target = write_answer(tmp_path / "builds/v1.wasm", 1)
    link = tmp_path / "served/current.wasm"
    link.symlink_to(target)
    with HotPlugin.from_file(link, check=CheckCall("answer")) as hot:
        assert hot.answer() == 1
        write_answer(target, 2)  # the link is untouched; the file it leads to changes
        assert hot.wait_for_version(2, timeout=TIMEOUT) and hot.answer() == 2
        # Point the link at a file in a third directory, atomically as `ln -sfn` would ...
        (tmp_path / "other").mkdir()
        moved = write_answer(tmp_path / "other/v3.wasm", 3)
        (tmp_path / "served/.next").symlink_to(moved)
        os.replace(tmp_path / "served/.next", link)
        assert hot.wait_for_version(3, timeout=TIMEOUT) and hot.answer() == 3
        # ... and that file's changes count from then on.
        write_answer(moved, 4)
        assert hot.wait_for_version(4, timeout=TIMEOUT) and hot.answer() == 4
