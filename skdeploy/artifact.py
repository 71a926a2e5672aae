"""Build ``model.tar.gz`` exactly as the SageMaker scikit-learn container expects it, byte for byte
reproducibly.

Layout: the model files at the archive root (the container extracts it to ``/opt/ml/model``) and
``code/`` holding ``inference.py``, the other ``.py`` modules of the inference directory and an
optional ``requirements.txt``. Training scripts and samples never ship.

Reproducible: members sorted, mtime 0, uid/gid 0 with empty owner names, modes 0644/0755, no
links, a USTAR header, and a gzip header without name or timestamp. The content address is the
sha256 of the *uncompressed* tar, which stays stable even where another zlib compresses the same
bytes differently. Builds are cached by a hash of the inputs, and written to a temporary name
that is renamed only when complete, so a failed build (a full disk) never leaves a truncated
artifact behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from skdeploy.constants import (
    ARTIFACT_CODE_DIR,
    ARTIFACT_NAME,
    BUILD_DIR,
    PROGRAM,
    REQUIREMENTS_FILE,
)
from skdeploy.settings import EndpointSettings

#: Bumped whenever the archive layout or header choices change, to invalidate old cache entries.
FORMAT_VERSION = 1
#: zlib level 6 is what ``gzip``/``tar -czf`` use by default: a fair speed/size trade.
COMPRESS_LEVEL = 6
_CHUNK = 1 << 20


class ArtifactError(ValueError):
    """The inputs cannot make a valid artifact; the message lists every problem."""


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


def artifact_inputs(
    model_dir: Path, inference_dir: Path, model_files: Iterable[str]
) -> list[tuple[str, Path]]:
    """The (archive name, source file) pairs of an artifact, sorted, or :class:`ArtifactError`."""
    problems: list[str] = []
    members: dict[str, Path] = {}
    for name in model_files:
        source = model_dir / name
        if not source.is_file():
            problems.append(f"model file {source} does not exist")
        members[name] = source
    if not (inference_dir / PROGRAM).is_file():
        problems.append(f"{inference_dir / PROGRAM} does not exist: the container needs it")
    if inference_dir.is_dir():
        for source in sorted(inference_dir.iterdir()):
            if source.is_file() and (source.suffix == ".py" or source.name == REQUIREMENTS_FILE):
                members[f"{ARTIFACT_CODE_DIR}/{source.name}"] = source
    if not members or not any("/" not in m for m in members):
        problems.append("an artifact needs at least one model file at its root")
    for name in members:
        if len(name.encode()) > 100:
            problems.append(f"member name {name!r} is longer than 100 bytes")
    if problems:
        raise ArtifactError(
            "cannot build the artifact:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return sorted(members.items())


def inputs_digest(
    inputs: list[tuple[str, Path]], known: dict[str, list[object]] | None = None
) -> str:
    """A hash of the artifact's names and contents (and the format), used as the cache key.

    ``known`` maps a file's path to ``[size, mtime_ns, inode, sha256]`` from an earlier build: a
    file whose size, modification time (in nanoseconds) and inode are unchanged is not read
    again, so a cache hit on a 200 MB model costs a ``stat``, not a hash. Updated in place.
    """
    digest = hashlib.sha256(f"skdeploy-artifact-v{FORMAT_VERSION}\n".encode())
    for name, source in inputs:
        stat = source.stat()
        signature: list[object] = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        entry = None if known is None else known.get(str(source.resolve()))
        if entry is not None and entry[:3] == signature:
            content = str(entry[3])
        else:
            content = file_sha256(source)
            if known is not None:
                known[str(source.resolve())] = [*signature, content]
        digest.update(f"{name}\0{content}\n".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks (``hashlib.file_digest`` needs Python 3.11)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _HashingWriter(io.RawIOBase):
    """Passes bytes on to ``target`` while hashing them: the digest of the uncompressed tar."""

    def __init__(self, target: _Writable) -> None:
        self.target = target
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.digest.update(data)
        self.target.write(data)
        return len(data)


def _tarinfo(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(inputs: list[tuple[str, Path]], out: IO[bytes]) -> str:
    """Write the gzip-compressed tar of ``inputs`` to ``out``; return the sha256 of the tar."""
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=out, mtime=0, compresslevel=COMPRESS_LEVEL
    ) as gz:
        hashing = _HashingWriter(gz)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
            if any(name.startswith(f"{ARTIFACT_CODE_DIR}/") for name, _ in inputs):
                tar.addfile(_tarinfo(f"{ARTIFACT_CODE_DIR}/", 0, directory=True))
            for name, source in inputs:
                with source.open("rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    tar.addfile(_tarinfo(name, size), handle)
        return hashing.digest.hexdigest()


def build_artifact(
    model_dir: Path,
    inference_dir: Path,
    model_files: Iterable[str],
    build_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> Artifact:
    """Build (or reuse from the cache) the artifact of these inputs under ``build_dir``."""
    inputs = artifact_inputs(model_dir, inference_dir, model_files)
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
    total = sum(source.stat().st_size for _, source in inputs)
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
    )
