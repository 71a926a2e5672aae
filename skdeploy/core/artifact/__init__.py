"""Build ``model.tar.gz`` exactly as the SageMaker scikit-learn container expects it, byte for byte
reproducibly.

Layout: the model files at the archive root (the container extracts it to ``/opt/ml/model``) and
``code/`` holding ``inference.py``, the other ``.py`` modules of the inference directory, the
``.py`` files of its packages (sub-folders with ``__init__.py``) and an optional
``requirements.txt``. Training scripts and samples never ship.

Contained (``_inputs``): every file comes from inside the project folder and is read as the
file that was checked; all problems are listed in one :class:`ArtifactError`.

Reproducible (``_archive``): fixed tar and gzip headers, so the same inputs give the same bytes.
The content address is the sha256 of the *uncompressed* tar, which stays stable even where another
zlib compresses the same bytes differently. Builds are cached by a hash of the inputs, and written
to a temporary name that is renamed only when complete, so a failed build (a full disk) never
leaves a truncated artifact behind.

The package: ``_inputs`` checks and opens the inputs, ``_archive`` writes the tar; the builder and
its cache stay in this ``__init__``, so that the names it calls (``write_archive``,
``inputs_digest``, ``file_sha256``) are looked up on ``skdeploy.core.artifact``, where the tests
replace them to simulate a full disk or a swapped file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from skdeploy.core.artifact._archive import (
    COMPRESS_LEVEL,
    USTAR_MAX_SIZE,
    _HashingWriter,  # noqa: F401  (tests patch it as skdeploy.core.artifact._HashingWriter)
    write_archive,
)
from skdeploy.core.artifact._inputs import ArtifactError, Source, artifact_inputs, handler_files
from skdeploy.core.constants import ARTIFACT_NAME, BUILD_DIR
from skdeploy.core.settings import EndpointSettings

__all__ = [
    "COMPRESS_LEVEL",
    "FORMAT_VERSION",
    "USTAR_MAX_SIZE",
    "Artifact",
    "ArtifactError",
    "Source",
    "artifact_inputs",
    "build_artifact",
    "build_for_settings",
    "file_sha256",
    "handler_files",
    "inputs_digest",
    "write_archive",
    "write_json_atomically",
]

#: Bumped whenever the archive layout or header choices change, to invalidate old cache entries.
FORMAT_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Artifact:
    """A built ``model.tar.gz``: where it is, its content address and its size in bytes."""

    path: Path
    sha256: str
    bytes: int
    members: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """The ``skdeploy build --json`` shape."""
        return {"path": str(self.path), "sha256": self.sha256, "bytes": self.bytes}


def inputs_digest(
    inputs: list[tuple[str, Source]], known: dict[str, list[object]] | None = None
) -> str:
    """A hash of the artifact's names and contents (and the format), used as the cache key.

    ``known`` maps a file's path to ``[size, mtime_ns, inode, sha256]`` from an earlier build: a
    file whose size, modification time (in nanoseconds) and inode are unchanged is not read
    again, so a cache hit on a 200 MB model costs a ``stat``, not a hash. Updated in place.
    """
    digest = hashlib.sha256(f"skdeploy-artifact-v{FORMAT_VERSION}\n".encode())
    for name, source in inputs:
        signature: list[object] = [source.size, source.mtime_ns, source.inode]
        entry = None if known is None else known.get(str(source.path))
        if entry is not None and entry[:3] == signature:
            content = str(entry[3])
        else:
            content = file_sha256(source)
            if known is not None:
                known[str(source.path)] = [*signature, content]
        digest.update(f"{name}\0{content}\n".encode())
    return digest.hexdigest()


def file_sha256(path: Path | Source) -> str:
    """sha256 of a file, read in 1 MiB chunks (``hashlib.file_digest`` needs Python 3.11)."""
    digest = hashlib.sha256()
    with path.open() if isinstance(path, Source) else path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_artifact(
    model_dir: Path,
    inference_dir: Path,
    model_files: Iterable[str],
    build_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
    project_dir: Path | None = None,
) -> Artifact:
    """Build (or reuse from the cache) the artifact of these inputs under ``build_dir``.

    Every input must resolve inside ``project_dir`` (see :func:`artifact_inputs`).
    """
    inputs = artifact_inputs(model_dir, inference_dir, model_files, project_dir=project_dir)
    index_path = build_dir / "artifacts" / "file-digests.json"
    try:
        known: dict[str, list[object]] = json.loads(index_path.read_text())
    except (OSError, ValueError):
        known = {}
    before = json.dumps(known, sort_keys=True)
    key = inputs_digest(inputs, known)
    if json.dumps(known, sort_keys=True) != before:
        index_path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(index_path, known)
    entry = build_dir / "artifacts" / key
    meta_path = entry / "artifact.json"
    path = entry / ARTIFACT_NAME
    members = tuple(name for name, _ in inputs)
    if meta_path.is_file() and path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("bytes") == path.stat().st_size:
            return Artifact(path, str(meta["sha256"]), int(meta["bytes"]), members)
    total = sum(source.size for _, source in inputs)
    if progress is not None and total > 50 * 1024 * 1024:
        progress(f"building {ARTIFACT_NAME} from {total / 1e6:.0f} MB of inputs")
    entry.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".model-", suffix=".tmp", dir=entry)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            sha256 = write_archive(inputs, out)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        tmp.replace(path)
        write_json_atomically(meta_path, {"sha256": sha256, "bytes": size, "members": members})
    except BaseException:
        tmp.unlink(missing_ok=True)
        with suppress(OSError):
            entry.rmdir()  # only if empty: a cache entry holds a whole artifact or nothing
        raise
    return Artifact(path, sha256, size, members)


def write_json_atomically(path: Path, data: object) -> None:
    """Write JSON under a temporary name and rename it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, indent=2))
    tmp.replace(path)


def build_for_settings(
    settings: EndpointSettings, *, progress: Callable[[str], None] | None = None
) -> Artifact:
    """Build the artifact a stack deploys, under the project's git-ignored ``build/`` folder."""
    return build_artifact(
        settings.model_dir,
        settings.inference_dir,
        settings.model_files,
        settings.project_dir / BUILD_DIR,
        progress=progress,
        project_dir=settings.project_dir,
    )
