"""Extracting ``model.tar.gz`` as the container does, refusing members that could escape."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath


class UnsafeArchiveError(ValueError):
    """A ``model.tar.gz`` member that could escape the model directory or is not a plain file."""


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or not path.parts:
        raise UnsafeArchiveError(f"refusing archive member {name!r}: it leaves the model directory")
    return path


def extract_artifact(archive: Path, target: Path) -> list[str]:
    """Extract ``model.tar.gz`` into ``target``, as the container does into ``/opt/ml/model``.

    Only directories and regular files are accepted, never absolute names, ``..``, links, devices
    or a member written twice: the archive is ours, but a tampered one must not write elsewhere.
    Returns the extracted file names.
    """
    target.mkdir(parents=True, exist_ok=True)
    extracted: list[str] = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            relative = _member_path(member.name)
            destination = target.joinpath(*relative.parts)
            if member.isdir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise UnsafeArchiveError(
                    f"refusing archive member {member.name!r}: not a regular file"
                )
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                raise UnsafeArchiveError(f"archive member {member.name!r} has no data")
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                with source, destination.open("xb") as out:
                    shutil.copyfileobj(source, out)
            except FileExistsError:
                raise UnsafeArchiveError(
                    f"refusing archive member {member.name!r}: written twice"
                ) from None
            extracted.append(relative.as_posix())
    return extracted
