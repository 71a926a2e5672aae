"""The artifact ships files from inside the project only (issue 13, findings 6, 7 and 8).

Every file in ``model.tar.gz`` must resolve inside the project: folders named outside it
(absolute, ``..``), symlinks that leave it (a file, a handler, ``requirements.txt``, the model
folder itself, a parent folder) and links into hidden folders (``.git``, ``.env``) are refused,
by name, in one message; links that stay inside are archived as the regular file they point
to. Non-regular files (FIFOs, sockets) are refused without being opened for long, so nothing
hangs. A member past the 8 GiB USTAR limit gets a PAX size record instead of crashing, and the
bytes of every artifact the old builder could make stay the same.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from skdeploy.core import artifact
from skdeploy.core.artifact import (
    ArtifactError,
    artifact_inputs,
    build_artifact,
    build_for_settings,
)
from skdeploy.core.settings import load_stack_settings
from skdeploy.tooling import cli
from tests.support import WIRE_MEMBERS, copy_project

GIB = 1 << 30
USTAR_LIMIT = 8**11  # the first size a USTAR header's 11 octal digits cannot hold: 8 GiB


# --- helpers ------------------------------------------------------------------------------------


def build(project: Path, build_dir: Path, model_files: tuple[str, ...] = ("model.joblib",)):
    """The direct API, as test_artifact.py calls it (no project_dir: the folders' common one)."""
    return build_artifact(project / "model", project / "inference", model_files, build_dir)


def set_stack(project: Path, stack: str, **values: Any) -> None:
    """Add ``skdeploy:<key>`` values to a stack file of a project copy."""
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text())
    for key, value in values.items():
        data["config"][f"skdeploy:{key}"] = value
    path.write_text(yaml.safe_dump(data))


def outside_model_dir(tmp_path: Path, project: Path) -> Path:
    """A folder next to the project holding a valid copy of its model (a pickle that passes)."""
    outside = tmp_path / "outside-model"
    outside.mkdir()
    shutil.copy2(project / "model" / "model.joblib", outside / "model.joblib")
    shutil.copy2(project / "model" / "samples.json", outside / "samples.json")
    return outside


def secret(tmp_path: Path) -> Path:
    """A file outside the project that must never ship."""
    path = tmp_path / "secret.txt"
    path.write_text("AWS_SECRET_ACCESS_KEY=do-not-ship\n")
    return path


def no_artifact_left(build_dir: Path) -> bool:
    """No tar (whole or partial) and no cache entry: only the digest index may exist."""
    return [p for p in build_dir.rglob("*") if p.is_file() and p.name != "file-digests.json"] == []


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging (a blocking open of a FIFO) past ``seconds``."""

    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: something blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def refused(call: Any, *args: Any) -> str:
    """The message of the ArtifactError ``call(*args)`` raises."""
    with pytest.raises(ArtifactError) as caught:
        call(*args)
    return str(caught.value)


# --- Finding 6: folders outside the project -----------------------------------------------------


def test_an_absolute_model_dir_outside_the_project_is_refused(tmp_path: Path) -> None:
    """modelDir: /etc with modelFiles: [passwd] ships nothing and names /etc."""
    project = copy_project(tmp_path / "p")
    set_stack(project, "dev", modelDir="/etc", modelFiles=["passwd"])
    settings = load_stack_settings(project, "dev")
    message = refused(build_for_settings, settings)
    assert "/etc" in message
    assert "outside the project" in message
    assert no_artifact_left(project / "build")


def test_a_dot_dot_model_dir_is_refused(tmp_path: Path) -> None:
    """modelDir: ../outside-model (a valid pickle, so no other check objects) is refused."""
    project = copy_project(tmp_path / "p")
    outside_model_dir(tmp_path, project)
    set_stack(project, "dev", modelDir="../outside-model")
    message = refused(build_for_settings, load_stack_settings(project, "dev"))
    assert "outside-model" in message
    assert "outside the project" in message


def test_a_deep_dot_dot_path_to_etc_is_refused(tmp_path: Path) -> None:
    """../../../../../../../etc resolves to /etc whatever the depth of the project."""
    project = copy_project(tmp_path / "p")
    set_stack(project, "dev", modelDir="../" * 30 + "etc", modelFiles=["passwd"])
    message = refused(build_for_settings, load_stack_settings(project, "dev"))
    assert "/etc" in message


def test_an_inference_dir_outside_the_project_is_refused(tmp_path: Path) -> None:
    """inferenceDir outside the project: its handlers are not shipped."""
    project = copy_project(tmp_path / "p")
    shutil.copytree(project / "inference", tmp_path / "outside-inference")
    set_stack(project, "dev", inferenceDir=str(tmp_path / "outside-inference"))
    message = refused(build_for_settings, load_stack_settings(project, "dev"))
    assert "outside-inference" in message
    assert "outside the project" in message


def test_every_problem_is_listed_in_one_message(tmp_path: Path) -> None:
    """Model folder and handler folder both outside: one error lists both."""
    project = copy_project(tmp_path / "p")
    outside_model_dir(tmp_path, project)
    shutil.copytree(project / "inference", tmp_path / "outside-inference")
    set_stack(project, "dev", modelDir="../outside-model", inferenceDir="../outside-inference")
    with pytest.raises(ArtifactError) as caught:
        build_for_settings(load_stack_settings(project, "dev"))
    message = str(caught.value)
    assert "outside-model" in message
    assert "outside-inference" in message
    assert len(caught.value.problems) == 2


def test_a_model_file_name_with_a_path_is_refused(tmp_path: Path) -> None:
    """The direct API refuses names that are not plain file names (no ../ in member names)."""
    project = copy_project(tmp_path / "p")
    message = refused(build, project, tmp_path / "build", ("../model/model.joblib",))
    assert "../model/model.joblib" in message


def test_a_model_dir_in_a_hidden_folder_is_refused(tmp_path: Path) -> None:
    """modelDir: .git with modelFiles: [config] would ship CI credentials: refused."""
    project = copy_project(tmp_path / "p")
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text("[http]\n\textraheader = AUTHORIZATION: basic x\n")
    set_stack(project, "dev", modelDir=".git", modelFiles=["config"])
    message = refused(build_for_settings, load_stack_settings(project, "dev"))
    assert ".git" in message
    assert "hidden" in message


# --- Finding 7: links ---------------------------------------------------------------------------


def test_a_symlinked_model_file_pointing_outside_is_refused(tmp_path: Path) -> None:
    """model/model.joblib -> a file outside the project: refused, named, nothing built."""
    project = copy_project(tmp_path / "p")
    real = tmp_path / "elsewhere.joblib"
    shutil.move(project / "model" / "model.joblib", real)
    (project / "model" / "model.joblib").symlink_to(real)
    message = refused(build, project, tmp_path / "build")
    assert "model.joblib" in message
    assert str(real) in message
    assert no_artifact_left(tmp_path / "build")


@pytest.mark.parametrize("name", ["helpers.py", "requirements.txt", "inference.py"])
def test_a_symlinked_handler_pointing_outside_is_refused(tmp_path: Path, name: str) -> None:
    """inference/<name> -> a secret outside: refused (the old code shipped it as code/<name>)."""
    project = copy_project(tmp_path / "p")
    (project / "inference" / name).unlink(missing_ok=True)
    (project / "inference" / name).symlink_to(secret(tmp_path))
    message = refused(build, project, tmp_path / "build")
    assert name in message
    assert "secret.txt" in message


def test_a_symlinked_model_dir_pointing_outside_is_refused(tmp_path: Path) -> None:
    """model/ itself a link to a folder outside (the stack keeps the default modelDir)."""
    project = copy_project(tmp_path / "p")
    outside = outside_model_dir(tmp_path, project)
    shutil.rmtree(project / "model")
    (project / "model").symlink_to(outside)
    message = refused(build_for_settings, load_stack_settings(project, "dev"))
    assert "outside-model" in message
    message = refused(build, project, tmp_path / "build")
    assert "outside-model" in message


def test_a_symlinked_inference_dir_pointing_outside_is_refused(tmp_path: Path) -> None:
    """inference/ itself a link to a folder outside."""
    project = copy_project(tmp_path / "p")
    shutil.move(project / "inference", tmp_path / "outside-inference")
    (project / "inference").symlink_to(tmp_path / "outside-inference")
    message = refused(build_for_settings, load_stack_settings(project, "dev"))
    assert "outside-inference" in message


def test_a_symlinked_parent_folder_pointing_outside_is_refused(tmp_path: Path) -> None:
    """modelDir: models/v1 where models/ is a link out of the project."""
    project = copy_project(tmp_path / "p")
    (tmp_path / "shared" / "v1").mkdir(parents=True)
    shutil.copy2(project / "model" / "model.joblib", tmp_path / "shared" / "v1" / "model.joblib")
    (project / "models").symlink_to(tmp_path / "shared")
    set_stack(project, "dev", modelDir="models/v1")
    message = refused(build_for_settings, load_stack_settings(project, "dev"))
    assert "shared" in message


def test_a_symlink_in_an_inference_subfolder_is_neither_shipped_nor_followed(
    tmp_path: Path,
) -> None:
    """code/ is one level: sub-folders of inference/ (and links in them) never reach the tar.

    (A pin, not a fix: the old code did not walk sub-folders either.)
    """
    project = copy_project(tmp_path / "p")
    (project / "inference" / "pkg").mkdir()
    (project / "inference" / "pkg" / "evil.py").symlink_to(secret(tmp_path))
    (project / "inference" / "linked_pkg").symlink_to(tmp_path, target_is_directory=True)
    built = build(project, tmp_path / "build")
    with tarfile.open(built.path) as tar:
        names = tar.getnames()
        assert not any("pkg" in n or "secret" in n for n in names), names
        assert all(b"do-not-ship" not in tar.extractfile(m).read() for m in tar if m.isfile())


def test_a_link_that_stays_inside_the_project_is_archived_as_the_file(tmp_path: Path) -> None:
    """model/model.joblib -> ../trained/model.joblib is allowed: the same bytes as plain files.

    (A pin: the old code allowed it too.)
    """
    plain = copy_project(tmp_path / "plain")
    shutil.copy2(plain / "inference" / "inference.py", plain / "inference" / "helpers.py")
    project = copy_project(tmp_path / "p")
    (project / "trained").mkdir()
    shutil.move(project / "model" / "model.joblib", project / "trained" / "model.joblib")
    (project / "model" / "model.joblib").symlink_to(Path("..") / "trained" / "model.joblib")
    (project / "inference" / "helpers.py").symlink_to("inference.py")
    linked = build(project, tmp_path / "build")
    assert linked.sha256 == build(plain, tmp_path / "build-plain").sha256
    with tarfile.open(linked.path) as tar:
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())


def test_a_link_inside_the_project_into_a_hidden_folder_is_refused(tmp_path: Path) -> None:
    """model/model.joblib -> ../.env: inside the project, but hidden files never ship."""
    project = copy_project(tmp_path / "p")
    (project / ".env").write_text("AWS_SECRET_ACCESS_KEY=do-not-ship\n")
    (project / "inference" / "requirements.txt").symlink_to(Path("..") / ".env")
    message = refused(build, project, tmp_path / "build")
    assert ".env" in message
    assert "hidden" in message


def test_a_link_loop_is_refused_and_a_dangling_link_inside_is_ignored(tmp_path: Path) -> None:
    """loop.py -> loop.py is refused by name; an editor's lock link (.#x.py -> a name that
    does not exist, inside the project) is skipped as before, so editing does not break builds.
    """
    project = copy_project(tmp_path / "p")
    (project / "inference" / ".#inference.py").symlink_to("user@host.1234:1700000000")
    assert build(project, tmp_path / "build").members == (
        "code/inference.py",
        *WIRE_MEMBERS,
        "model.joblib",
    )
    (project / "inference" / "loop.py").symlink_to("loop.py")
    message = refused(build, project, tmp_path / "build")
    assert "loop.py" in message
    assert "does not resolve" in message


def test_a_hard_link_is_archived_as_a_regular_file(tmp_path: Path) -> None:
    """Hard links are accepted (decision, see the README): git cannot carry them in a PR."""
    project = copy_project(tmp_path / "p")
    other = tmp_path / "trained.joblib"
    os.link(project / "model" / "model.joblib", other)
    built = build(project, tmp_path / "build")
    with tarfile.open(built.path) as tar:
        assert tar.getmember("model.joblib").isfile()


def test_fifos_and_sockets_are_refused_without_hanging(tmp_path: Path) -> None:
    """A FIFO model file, a FIFO handler, a socket requirements.txt: one message, no hang."""
    project = copy_project(tmp_path / "p")
    os.mkfifo(project / "model" / "pipe.joblib")
    os.mkfifo(project / "inference" / "helpers.py")
    (project / "inference" / "requirements.txt").unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(project / "inference" / "requirements.txt"))
        with deadline(10):
            message = refused(build, project, tmp_path / "build", ("model.joblib", "pipe.joblib"))
    finally:
        server.close()
    for name, kind in [("pipe.joblib", "FIFO"), ("helpers.py", "FIFO"), ("requirements", "socket")]:
        assert any(name in line and kind in line for line in message.splitlines()), (name, message)
    assert "not a regular file" in message


def test_a_link_swapped_in_after_the_check_is_refused(tmp_path: Path) -> None:
    """Between the check and the read, model.joblib becomes a link out: the read refuses it."""
    project = copy_project(tmp_path / "p")
    inputs = artifact_inputs(project / "model", project / "inference", ["model.joblib"])
    model = project / "model" / "model.joblib"
    model.unlink()
    model.symlink_to(secret(tmp_path))
    with pytest.raises(ArtifactError, match=r"model\.joblib"):
        artifact.write_archive(inputs, io.BytesIO())


def test_a_file_replaced_after_the_check_is_refused(tmp_path: Path, monkeypatch) -> None:
    """A different file renamed over a checked one mid-build is refused; nothing is left."""
    project = copy_project(tmp_path / "p")
    model = project / "model" / "model.joblib"
    digest = artifact.inputs_digest

    def swap_after_digest(*args: Any, **kwargs: Any) -> str:
        key = digest(*args, **kwargs)
        replacement = model.with_name("other.joblib")
        replacement.write_bytes(model.read_bytes() + b"\0")
        replacement.replace(model)
        return key

    monkeypatch.setattr("skdeploy.core.artifact.inputs_digest", swap_after_digest)
    with pytest.raises(ArtifactError, match="changed"):
        build(project, tmp_path / "build")
    assert no_artifact_left(tmp_path / "build")


# --- Finding 8: members past 8 GiB, and bytes that do not change ---------------------------------


def test_a_sparse_8_gib_model_gets_a_pax_size_record(tmp_path: Path, monkeypatch) -> None:
    """An 8 GiB + 1 byte (sparse) model: its header is written and reads back with its size.

    Writing the whole 8 GiB takes minutes (3 here), so the tar stream is cut after its first MiB
    (the headers and the start of the data), which is where the old code crashed with
    "overflow in number field". SKDEPLOY_SLOW_TESTS=1 runs the full build below.
    """
    project = copy_project(tmp_path / "p")
    big = project / "model" / "big.joblib"
    big.touch()
    os.truncate(big, USTAR_LIMIT + 1)
    inputs = artifact_inputs(project / "model", project / "inference", ["big.joblib"])
    seen = bytearray()

    class Enough(Exception):
        pass

    def record(self: Any, data: bytes) -> int:
        seen.extend(data)
        if len(seen) > 1 << 20:
            raise Enough
        return len(data)

    monkeypatch.setattr(artifact._HashingWriter, "write", record)
    with pytest.raises(Enough):
        artifact.write_archive(inputs, io.BytesIO())
    with tarfile.open(fileobj=io.BytesIO(bytes(seen)), mode="r|") as tar:
        member = next(m for m in iter(tar.next, None) if m.name == "big.joblib")
    assert member.size == USTAR_LIMIT + 1
    assert member.isfile()
    assert member.pax_headers == {"size": str(USTAR_LIMIT + 1)}
    assert (member.mtime, member.uid, member.gid, member.mode) == (0, 0, 0, 0o644)


def test_members_under_8_gib_keep_their_ustar_headers(tmp_path: Path) -> None:
    """No PAX record for a normal member: a 1 MiB sparse file is a plain USTAR member."""
    project = copy_project(tmp_path / "p")
    os.truncate(project / "model" / "model.joblib", 1 << 20)
    built = build(project, tmp_path / "build")
    with tarfile.open(built.path) as tar:
        for member in tar.getmembers():
            assert member.pax_headers == {}


#: sha256 of the artifact of the fixed inputs below, as the builder made it before issue 13: the
#: fix must not move any existing artifact to a new content address (S3 key).
GOLDEN_SHA256 = "fa6536e731932373e702bcc3f4cd844defbcccd3b6b73fb7e89620508bb9f6d5"


def test_the_bytes_of_todays_artifacts_do_not_change(tmp_path: Path) -> None:
    """Fixed inputs (a non-ASCII handler name included) give the pre-fix sha256."""
    (tmp_path / "model").mkdir()
    (tmp_path / "inference").mkdir()
    (tmp_path / "model" / "model.joblib").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "model" / "extra.bin").write_bytes(b"\x00" * 5000)
    (tmp_path / "inference" / "inference.py").write_text(
        "def model_fn(model_dir):\n    return None\n"
    )
    (tmp_path / "inference" / "helpers.py").write_text("X = 1\n")
    (tmp_path / "inference" / "modèle.py").write_text("Y = 2\n")
    (tmp_path / "inference" / "requirements.txt").write_text("requests==2.32.3\n")
    built = build_artifact(
        tmp_path / "model", tmp_path / "inference", ["extra.bin", "model.joblib"], tmp_path / "b"
    )
    assert built.sha256 == GOLDEN_SHA256


@pytest.mark.skipif(
    os.environ.get("SKDEPLOY_SLOW_TESTS") != "1", reason="minutes of gzip: SKDEPLOY_SLOW_TESTS=1"
)
def test_a_full_8_gib_sparse_model_builds_and_lists(tmp_path: Path) -> None:
    """The whole build of an 8 GiB + 1 byte sparse model; GNU tar lists it with its size."""
    project = copy_project(tmp_path / "p")
    os.truncate(project / "model" / "model.joblib", USTAR_LIMIT + 1)
    built = build(project, tmp_path / "build")
    listing = subprocess.run(
        ["tar", "-tvzf", str(built.path)], capture_output=True, text=True, check=True
    ).stdout
    assert any(
        "model.joblib" in line and str(USTAR_LIMIT + 1) in line for line in listing.splitlines()
    ), listing


# --- The refusal reaches the user: the command line ---------------------------------------------


def test_check_static_reports_a_model_dir_outside_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`skdeploy check --static -s dev`: a failed check naming the folder, no traceback."""
    project = copy_project(tmp_path / "p")
    outside_model_dir(tmp_path, project)
    set_stack(project, "dev", modelDir="../outside-model")
    code = cli.main(["check", "--static", "-s", "dev", "--project-dir", str(project)])
    captured = capsys.readouterr()
    assert code == cli.EXIT_FAILED
    assert "outside-model" in captured.out
    assert "outside the project" in captured.out
    assert "Traceback" not in captured.out + captured.err


def test_check_static_reports_a_symlink_out_of_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A handler linked to a secret outside fails `check --static` before anything is read."""
    project = copy_project(tmp_path / "p")
    (project / "inference" / "helpers.py").symlink_to(secret(tmp_path))
    code = cli.main(["check", "--static", "-s", "dev", "--project-dir", str(project)])
    captured = capsys.readouterr()
    assert code == cli.EXIT_FAILED
    assert "helpers.py" in captured.out
    assert "secret.txt" in captured.out


def test_build_reports_the_refusal_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`skdeploy build`: "skdeploy: cannot build the artifact: ..." on stderr, exit 2."""
    project = copy_project(tmp_path / "p")
    set_stack(project, "dev", modelDir="/etc", modelFiles=["passwd"])
    code = cli.main(["build", "-s", "dev", "--project-dir", str(project)])
    captured = capsys.readouterr()
    assert code == cli.EXIT_CANNOT_RUN
    assert "skdeploy: cannot build the artifact" in captured.err
    assert "/etc" in captured.err
    assert "Traceback" not in captured.err


def test_plan_refuses_a_variant_outside_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`skdeploy plan`: the program refuses the stack with the message; no plan, no traceback."""
    project = copy_project(tmp_path / "p")
    outside_model_dir(tmp_path, project)
    set_stack(
        project,
        "staging",
        variants=[{"name": "A", "weight": 1}, {"name": "B", "modelDir": "../outside-model"}],
    )
    code = cli.main(["plan", "-s", "staging", "--project-dir", str(project)])
    captured = capsys.readouterr()
    assert code != cli.EXIT_OK
    assert "outside-model" in captured.err
    assert "outside the project" in captured.err
    assert "Traceback" not in captured.out + captured.err
    assert no_artifact_left(project / "build")


def test_the_pulumi_program_passes_the_project_to_variant_builds(
    tmp_path: Path, monkeypatch
) -> None:
    """Even with the preflight check skipped, the program's own builds refuse the variant."""
    from skdeploy.tooling.mockrun import run_program

    project = copy_project(tmp_path / "p")
    outside_model_dir(tmp_path, project)
    set_stack(
        project,
        "staging",
        variants=[{"name": "A", "weight": 1}, {"name": "B", "modelDir": "../outside-model"}],
    )
    monkeypatch.setattr("skdeploy.infra.program.assert_deployable", lambda _settings: None)
    with pytest.raises(ArtifactError, match="outside the project"):
        run_program(project, "staging")
