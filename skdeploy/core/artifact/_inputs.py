"""What goes into an artifact: every input checked to lie inside the project, opened safely.

Folders outside the project, symlinks that leave it or point into a hidden folder (``.git``,
``.env``), and anything but regular files (FIFOs, sockets, devices) are refused, all problems in
one :class:`ArtifactError`. Links that stay inside are archived as the file they point to. Files
are opened one path component at a time with ``O_NOFOLLOW`` and must still be the file (device and
inode) that was checked, so a link swapped in between the check and the read is refused too.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from skdeploy.core.constants import ARTIFACT_CODE_DIR, PACKAGE_INIT, PROGRAM, REQUIREMENTS_FILE

__all__ = ["ArtifactError", "Source", "artifact_inputs", "handler_files"]


class ArtifactError(ValueError):
    """The inputs cannot make a valid artifact; the message lists every problem."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(
            "cannot build the artifact:\n" + "\n".join(f"  - {p}" for p in self.problems)
        )


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
