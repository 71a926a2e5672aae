"""Build ``model.tar.gz`` exactly as the SageMaker scikit-learn container expects it, byte for byte
reproducibly.

Layout: the model files at the archive root (the container extracts it to ``/opt/ml/model``) and
``code/`` holding ``inference.py``, the other ``.py`` modules of the inference directory, the
``.py`` files of its packages (sub-folders with ``__init__.py``) and an optional
``requirements.txt``. Training scripts and samples never ship.

Contained: every file comes from inside the project folder. Folders outside it, symlinks that
leave it or point into a hidden folder (``.git``, ``.env``), and anything but regular files
(FIFOs, sockets, devices) are refused, all problems in one :class:`ArtifactError`. Links that
stay inside are archived as the file they point to. Files are opened one path component at a
time with ``O_NOFOLLOW`` and must still be the file (device and inode) that was checked, so a
link swapped in between the check and the read is refused too. Hard links cannot be told from
regular files by their path and are accepted: git cannot carry them in a pull request.

Reproducible: members sorted, mtime 0, uid/gid 0 with empty owner names, modes 0644/0755, no
links, USTAR headers (a PAX size record for a member of 8 GiB or more, which USTAR cannot hold),
and a gzip header without name or timestamp. The content address is the
sha256 of the *uncompressed* tar, which stays stable even where another zlib compresses the same
bytes differently. Builds are cached by a hash of the inputs, and written to a temporary name
that is renamed only when complete, so a failed build (a full disk) never leaves a truncated
artifact behind.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from skdeploy.core.constants import (
    ARTIFACT_CODE_DIR,
    ARTIFACT_NAME,
    BUILD_DIR,
    PACKAGE_INIT,
    PROGRAM,
    REQUIREMENTS_FILE,
)
from skdeploy.core.settings import EndpointSettings

#: Bumped whenever the archive layout or header choices change, to invalidate old cache entries.
FORMAT_VERSION = 1
#: zlib level 6 is what ``gzip``/``tar -czf`` use by default: a fair speed/size trade.
COMPRESS_LEVEL = 6
_CHUNK = 1 << 20


#: The largest member a USTAR header holds (11 octal digits); a larger one gets a PAX record.
USTAR_MAX_SIZE = 8**11 - 1


class ArtifactError(ValueError):
    """The inputs cannot make a valid artifact; the message lists every problem."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(
            "cannot build the artifact:\n" + "\n".join(f"  - {p}" for p in self.problems)
        )


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


@dataclass(frozen=True)
class Source:
    """An input file as it was checked: its real path inside ``root`` and its identity then."""

    path: Path
    root: Path
    device: int
    inode: int
    size: int
    mtime_ns: int

    def open(self) -> BinaryIO:
        """The file, opened without following any link below ``root``, if it is still the same.

        Raises :class:`ArtifactError` when a folder on the way or the file itself has become a
        link, or another file has taken its name, since the check.
        """
        try:
            fd = _open_below(self.root, self.path.relative_to(self.root).parts)
        except OSError as exc:
            if exc.errno not in _CHANGED:
                raise  # a permission, a disk: not a swap; the command line reports it as is
            raise ArtifactError(
                f"{self.path} changed after it was checked ({exc.strerror}): a link or another "
                "file took its place; refused"
            ) from None
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (self.device, self.inode) or not stat.S_ISREG(
            opened.st_mode
        ):
            os.close(fd)
            raise ArtifactError(
                f"{self.path} changed after it was checked: another file took its place; refused"
            )
        return os.fdopen(fd, "rb")


#: What opening a checked path fails with when a link or another kind of file took its place.
_CHANGED = frozenset({errno.ELOOP, errno.ENOTDIR, errno.ENOENT, errno.ENXIO})


def _open_below(root: Path, parts: tuple[str, ...]) -> int:
    """Open ``root/parts...`` read-only, refusing a symlink at every component (``ELOOP``).

    ``O_NONBLOCK``: a FIFO swapped in after the check opens at once instead of waiting for a
    writer (and is then refused by its type).
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            below = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = below
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)


def _lstat_below(root: Path, parts: tuple[str, ...]) -> os.stat_result:
    """``lstat`` of ``root/parts...`` with no link followed on the way (``ELOOP`` if one is)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            below = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = below
        return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a link that does not resolve (a loop)"
    return "a special file"


def _hidden(parts: tuple[str, ...]) -> str | None:
    return next((part for part in parts if part.startswith(".")), None)


def _hidden_problem(real: Path, root: Path, where: str) -> str | None:
    """Why ``real`` (inside ``root``) may not ship, when it lies in a hidden file or folder."""
    hidden = _hidden(real.relative_to(root).parts)
    if hidden is None:
        return None
    return (
        f"{where} the hidden {hidden}: hidden files and folders never ship (they hold secrets: "
        ".git/config, .env)"
    )


def _project_root(model_dir: Path, inference_dir: Path, project_dir: Path | None) -> Path:
    """The folder every input must resolve inside: the project, else the folders' common one."""
    if project_dir is None:
        project_dir = Path(
            os.path.commonpath([os.path.abspath(model_dir), os.path.abspath(inference_dir)])
        )
    return Path(os.path.realpath(project_dir))


def _folder(problems: list[str], what: str, folder: Path, root: Path) -> Path | None:
    """The real path of a model or handler folder inside ``root``, or None and a problem."""
    real = Path(os.path.realpath(folder))
    shown = str(folder) if str(real) == os.path.abspath(folder) else f"{folder} (-> {real})"
    if not real.is_relative_to(root):
        problems.append(
            f"{what} {shown} is outside the project {root}: the artifact ships nothing from "
            "outside it"
        )
        return None
    hidden = _hidden_problem(real, root, f"{what} {shown} lies in")
    if hidden is not None:
        problems.append(hidden)
        return None
    if not real.is_dir():
        problems.append(f"{what} {shown} is not a directory")
        return None
    return real


def _checked(
    problems: list[str], what: str, path: Path, root: Path, *, required: bool
) -> Source | None:
    """``path`` (a name in a checked folder) as a :class:`Source`, or None (and a problem).

    A symlink must resolve inside ``root`` and not into a hidden file or folder. Missing files
    and folders are a problem only when ``required``; anything else but a regular file is one.
    """
    real = Path(os.path.realpath(path))
    if path.is_symlink():
        if not real.is_relative_to(root):
            problems.append(
                f"{what} {path} is a link to {real}, outside the project {root}: refused"
            )
            return None
        hidden = _hidden_problem(real, root, f"{what} {path} is a link into")
        if hidden is not None:
            problems.append(hidden)
            return None
    if real == root:
        found = None
    else:
        try:
            found = _lstat_below(root, real.relative_to(root).parts)
        except FileNotFoundError:
            found = None
        except OSError as exc:
            problems.append(f"{what} {path} cannot be checked ({exc.strerror}): refused")
            return None
    if found is None or stat.S_ISDIR(found.st_mode):
        if required:
            problems.append(
                f"{what} {path} does not exist"
                if found is None
                else f"{what} {path} is a folder, not a file"
            )
        return None
    if not stat.S_ISREG(found.st_mode):
        problems.append(
            f"{what} {path} is {_kind(found.st_mode)}, not a regular file: only regular files ship"
        )
        return None
    return Source(real, root, found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)


def _is_package(folder: Path) -> bool:
    return (folder / PACKAGE_INIT).is_file()


def handler_files(
    handlers: Path, root: Path, problems: list[str] | None = None
) -> list[tuple[str, Path]]:
    """What ships in ``code/`` from a handler folder: ``(name below code/, path)``, sorted.

    The folder's ``*.py`` modules and ``requirements.txt``, and the ``*.py`` files of its
    packages (sub-folders holding ``__init__.py``, and their sub-packages), so a user's own
    modules ship whether they are one file or a package. Hidden entries and ``__pycache__`` are
    skipped; a folder that is not a package (tests, notebooks, data) does not ship. A package
    reached through a link must resolve inside ``root`` (else a problem is added, if a list is
    given, and it is left out); a package seen twice (a link loop) is listed once.
    """
    found: list[tuple[str, Path]] = []
    seen: set[Path] = set()

    def walk(folder: Path, prefix: str, top: bool) -> None:
        real = Path(os.path.realpath(folder))
        if real in seen:
            return
        seen.add(real)
        for path in sorted(folder.iterdir()):
            name = path.name
            if name.startswith(".") or name == "__pycache__":
                continue
            if path.is_dir():
                if not name.isidentifier() or not _is_package(path):
                    continue
                if path.is_symlink():
                    checked: list[str] = []
                    if _folder(checked, "handler package", path, root) is None:
                        if problems is not None:
                            problems.extend(checked)
                        continue
                walk(path, f"{prefix}{name}/", False)
            elif path.suffix == ".py" or (top and name == REQUIREMENTS_FILE):
                found.append((f"{prefix}{name}", path))

    walk(handlers, "", True)
    return sorted(found)


def artifact_inputs(
    model_dir: Path,
    inference_dir: Path,
    model_files: Iterable[str],
    *,
    project_dir: Path | None = None,
) -> list[tuple[str, Source]]:
    """The (archive name, checked source) pairs of an artifact, sorted, or :class:`ArtifactError`.

    Every source must resolve inside ``project_dir`` (None: the deepest folder holding both
    ``model_dir`` and ``inference_dir``; the command line and the Pulumi program pass the
    project). Nothing outside it is read, not even to list a folder.
    """
    problems: list[str] = []
    members: dict[str, Source] = {}
    root = _project_root(model_dir, inference_dir, project_dir)
    models = _folder(problems, "model folder", model_dir, root)
    handlers = _folder(problems, "handler folder", inference_dir, root)
    names = list(model_files)
    if not names:
        problems.append("an artifact needs at least one model file at its root")
    for name in names:
        if not name or "/" in name or "\0" in name or name.startswith("."):
            problems.append(f"model file name {name!r} must be a plain file name inside modelDir")
        elif models is not None:
            source = _checked(problems, "model file", models / name, root, required=True)
            if source is not None:
                members[name] = source
    if handlers is not None:
        shipped = handler_files(handlers, root, problems)
        for name, path in shipped:
            source = _checked(problems, "handler", path, root, required=name == PROGRAM)
            if source is not None:
                members[f"{ARTIFACT_CODE_DIR}/{name}"] = source
        if PROGRAM not in dict(shipped):
            problems.append(f"{handlers / PROGRAM} does not exist: the container needs it")
    for name in members:
        if len(name.encode()) > 100:
            problems.append(f"member name {name!r} is longer than 100 bytes")
    if problems:
        raise ArtifactError(problems)
    return sorted(members.items())


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


class _TarInfo(tarfile.TarInfo):
    """A USTAR header, as every artifact had, unless the member is too big for one.

    A member of 8 GiB or more gets a PAX extended header holding its size (USTAR would fail with
    "overflow in number field"); everything else keeps the exact USTAR bytes, so no existing
    artifact changes its content address.
    """

    def tobuf(
        self,
        format: int | None = tarfile.USTAR_FORMAT,
        encoding: str | None = tarfile.ENCODING,
        errors: str = "surrogateescape",
    ) -> bytes:
        if self.size > USTAR_MAX_SIZE:
            format = tarfile.PAX_FORMAT
        return super().tobuf(format, encoding, errors)  # type: ignore[arg-type]


def _tarinfo(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = _TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(inputs: list[tuple[str, Source]], out: IO[bytes]) -> str:
    """Write the gzip-compressed tar of ``inputs`` to ``out``; return the sha256 of the tar."""
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=out, mtime=0, compresslevel=COMPRESS_LEVEL
    ) as gz:
        hashing = _HashingWriter(gz)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
            if any(name.startswith(f"{ARTIFACT_CODE_DIR}/") for name, _ in inputs):
                tar.addfile(_tarinfo(f"{ARTIFACT_CODE_DIR}/", 0, directory=True))
            for name, source in inputs:
                with source.open() as handle:
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
