"""The artifact: container layout, byte-for-byte reproducibility, cache, atomic writes."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from skdeploy.core.artifact import ArtifactError, build_artifact
from tests.support import REPO, WIRE_MEMBERS, copy_project


def build(project: Path, build_dir: Path, model_files: tuple[str, ...] = ("model.joblib",)):
    return build_artifact(project / "model", project / "inference", model_files, build_dir)


def test_layout_has_the_model_at_the_root_and_the_code_under_code(tmp_path: Path) -> None:
    """Model files at the root, handlers under code/, and nothing else (no train.py, no samples)."""
    project = copy_project(tmp_path / "p")
    (project / "inference" / "helpers.py").write_text("X = 1\n")
    (project / "inference" / "requirements.txt").write_text("requests==2.32.3\n")
    (project / "inference" / "notes.md").write_text("not shipped\n")
    built = build(project, tmp_path / "build")
    with tarfile.open(built.path) as tar:
        names = tar.getnames()
        members = tar.getmembers()
    assert names == [
        "code",
        "code/helpers.py",
        "code/inference.py",
        "code/requirements.txt",
        *WIRE_MEMBERS,
        "model.joblib",
    ]
    for member in members:
        assert member.uid == member.gid == 0
        assert member.uname == member.gname == ""
        assert member.mtime == 0
        assert member.isdir() or member.isfile()
        assert member.mode == (0o755 if member.isdir() else 0o644)


def test_gzip_header_has_no_name_and_no_timestamp(tmp_path: Path) -> None:
    """The gzip header carries neither the file name nor a build time."""
    built = build(copy_project(tmp_path / "p"), tmp_path / "build")
    header = built.path.read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] & 0x08 == 0, "FNAME flag set"
    assert header[4:8] == b"\0\0\0\0", "MTIME set"


def test_sha256_is_that_of_the_uncompressed_tar(tmp_path: Path) -> None:
    """The content address is the sha256 of the tar inside the gzip, as documented."""
    built = build(copy_project(tmp_path / "p"), tmp_path / "build")
    assert hashlib.sha256(gzip.decompress(built.path.read_bytes())).hexdigest() == built.sha256
    assert built.bytes == built.path.stat().st_size


def test_a_copy_with_other_mtimes_and_umask_gives_the_same_bytes(tmp_path: Path) -> None:
    """Rebuilding from a copy with other mtimes, modes and umask yields identical bytes."""
    first = build(copy_project(tmp_path / "a"), tmp_path / "build-a")
    old_umask = os.umask(0o077)
    try:
        other = copy_project(tmp_path / "b")
    finally:
        os.umask(old_umask)
    for path in (*other.joinpath("model").iterdir(), *other.joinpath("inference").iterdir()):
        os.utime(path, (1_000_000_000, 1_000_000_000))
        path.chmod(0o600)
    second = build(other, tmp_path / "build-b")
    assert second.path.read_bytes() == first.path.read_bytes()
    assert second.sha256 == first.sha256


def test_a_changed_handler_changes_the_content_address(tmp_path: Path) -> None:
    """Editing inference.py gives a new sha256 (and so a new S3 key)."""
    project = copy_project(tmp_path / "p")
    before = build(project, tmp_path / "build")
    with (project / "inference" / "inference.py").open("a") as handle:
        handle.write("\n# changed\n")
    after = build(project, tmp_path / "build")
    assert after.sha256 != before.sha256


def test_a_cache_hit_returns_the_same_file_without_rebuilding(tmp_path: Path) -> None:
    """Identical inputs reuse the cached artifact (same path, untouched file)."""
    project = copy_project(tmp_path / "p")
    first = build(project, tmp_path / "build")
    stamp = first.path.stat().st_mtime_ns
    second = build(project, tmp_path / "build")
    assert second == first
    assert second.path.stat().st_mtime_ns == stamp


def test_symlinked_inputs_are_stored_as_regular_files(tmp_path: Path) -> None:
    """A symlinked model is archived as a regular file: the archive holds no links.

    The link stays inside the project: one that leaves it is refused (test_artifact_containment).
    """
    project = copy_project(tmp_path / "p")
    real = project / "elsewhere.joblib"
    shutil.move(project / "model" / "model.joblib", real)
    (project / "model" / "model.joblib").symlink_to(real)
    built = build(project, tmp_path / "build")
    with tarfile.open(built.path) as tar:
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())


def test_missing_inputs_are_all_reported(tmp_path: Path) -> None:
    """A missing model file and a missing inference.py are reported together."""
    project = copy_project(tmp_path / "p")
    (project / "inference" / "inference.py").unlink()
    with pytest.raises(ArtifactError) as caught:
        build(project, tmp_path / "build", ("absent.joblib",))
    assert "absent.joblib does not exist" in str(caught.value)
    assert "inference.py does not exist" in str(caught.value)


def test_a_failed_write_leaves_no_artifact_behind(tmp_path: Path, monkeypatch) -> None:
    """When writing fails midway (a full disk), neither a partial file nor a cache entry stays."""
    project = copy_project(tmp_path / "p")

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("skdeploy.core.artifact.write_archive", disk_full)
    with pytest.raises(OSError, match="No space left"):
        build(project, tmp_path / "build")
    leftovers = [
        p for p in (tmp_path / "build").rglob("*") if p.is_file() and p.name != "file-digests.json"
    ]
    assert leftovers == []


def test_the_committed_project_builds(tmp_path: Path) -> None:
    """The repository's own model and handlers make a valid archive."""
    built = build(REPO, tmp_path / "build")
    with tarfile.open(fileobj=io.BytesIO(built.path.read_bytes())) as tar:
        assert "model.joblib" in tar.getnames()
        assert "code/inference.py" in tar.getnames()


def test_a_cache_hit_reads_no_input_again(tmp_path: Path, monkeypatch) -> None:
    """Unchanged inputs (same size, mtime and inode) are not hashed again on a cache hit."""
    project = copy_project(tmp_path / "p")
    first = build(project, tmp_path / "build")

    def no_reading(_path: Path) -> str:
        raise AssertionError("an unchanged input was read again")

    monkeypatch.setattr("skdeploy.core.artifact.file_sha256", no_reading)
    assert build(project, tmp_path / "build") == first


def test_an_edit_that_keeps_the_size_is_still_seen(tmp_path: Path) -> None:
    """A same-size edit changes the mtime, so the file is hashed again and the sha256 changes."""
    project = copy_project(tmp_path / "p")
    handler = project / "inference" / "inference.py"
    first = build(project, tmp_path / "build")
    text = handler.read_text()
    handler.write_text(text.replace("Serving handlers", "Serving HANDLERS", 1))
    assert handler.stat().st_size == len(text.encode())
    assert build(project, tmp_path / "build").sha256 != first.sha256
