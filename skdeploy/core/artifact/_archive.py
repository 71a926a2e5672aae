"""The archive itself: a gzip-compressed USTAR tar with fixed headers, the same bytes every time.

Members sorted, mtime 0, uid/gid 0 with empty owner names, modes 0644/0755, no links, USTAR
headers (a PAX size record for a member of 8 GiB or more, which USTAR cannot hold), and a gzip
header without name or timestamp. The content address is the sha256 of the *uncompressed* tar.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from typing import IO, Protocol

from skdeploy.core.artifact._inputs import Source
from skdeploy.core.constants import ARTIFACT_CODE_DIR

__all__ = ["COMPRESS_LEVEL", "USTAR_MAX_SIZE", "write_archive"]

#: zlib level 6 is what ``gzip``/``tar -czf`` use by default: a fair speed/size trade.
COMPRESS_LEVEL = 6

#: The largest member a USTAR header holds (11 octal digits); a larger one gets a PAX record.
USTAR_MAX_SIZE = 8**11 - 1


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
