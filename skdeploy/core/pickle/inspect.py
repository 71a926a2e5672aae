"""Inspect a joblib or pickle model file without executing anything from it.

A model that the container cannot unpickle only fails 10-20 minutes into endpoint creation, on the
first health check (``shared/domain/deploy-pitfalls.md`` #1 and #4). Unpickling the file to find
out would run whatever the file asks for, so this module never unpickles: it reads the pickle
*opcodes* and simulates the unpickler's stack and memo with inert placeholders. Nothing is
imported, no callable is called and no object of the file's choosing is created. From that walk
it reports every global the unpickler would import (checked against an allow-list), the
scikit-learn versions estimators recorded in their state (``_sklearn_version``), whether the
pickle refers to ``numpy._core`` (only numpy 2 writes and imports it), the compression and the
pickle protocol. :func:`check_compatibility` turns a report into problems for one framework
version of :mod:`skdeploy.core.frameworks`.

This module holds the entry points and the report; the walk itself is in the package's private
modules, one concept each: ``_compression`` (joblib's compressors), ``_stream`` (the opcode
stream), ``_machine`` (stack, memo, loop and limits), ``_walker`` (what each opcode does),
``_arrays`` (joblib's array placeholder and numpy dtypes) and ``_attributes`` (BUILD states).

joblib's layout
    ``joblib.dump`` does not write a plain pickle. Each numpy array is pickled as a
    ``joblib.numpy_pickle.NumpyArrayWrapper`` (shape, dtype, order), and the array's raw bytes
    follow right after the wrapper's BUILD opcode, preceded by one padding-length byte and that
    many padding bytes when the wrapper records ``numpy_array_alignment_bytes`` (joblib >= 1.2).
    An array of Python objects follows as a nested, complete pickle stream instead. joblib's
    ``NumpyUnpickler.load_build`` consumes those bytes; this walker does the same from the
    wrapper's recorded shape and dtype (a plain ``pickletools.genops`` stops at the first array).
    Compressed files are recognised by joblib's own magic prefixes and decompressed as a stream,
    capped by ``InspectionLimits.max_stream_mb`` so that a zip bomb is refused.

Agreeing with the loader by construction
    Wherever joblib reads raw bytes, the walk reads exactly as many, or refuses: the placeholder
    only in the two forms joblib writes, its state only as joblib writes it, dtypes only in the
    states numpy writes (``_arrays.dtype_layout``), array data never inside an open pickle frame.
    Constructs whose effect cannot be read from the file (calling an object the pickle built,
    a BUILD that sets special or unseen attributes) are refused. A refusal stops the walk.

What the allow-list promises
    See :mod:`skdeploy.core.pickle.policy`: globals are allowed by the object they reach, under
    every name that reaches it. The work is bounded by :class:`InspectionLimits`.

What it does not promise
    That no allowed class or function can be turned into a gadget, or that the loader's own
    memory is bounded (``numpy.zeros`` of a huge shape is allowed). A model file from an
    untrusted source is code; the check makes honest mistakes and known attacks fail fast.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from skdeploy.core.frameworks import FRAMEWORKS, Framework
from skdeploy.core.pickle._compression import decompressed, detect_compression
from skdeploy.core.pickle._errors import Corrupt, PickleInspectionError, Unsafe
from skdeploy.core.pickle._findings import Findings
from skdeploy.core.pickle._limits import InspectionLimits, PickleLimitExceeded
from skdeploy.core.pickle._stream import Stream
from skdeploy.core.pickle._walker import Walker
from skdeploy.core.pickle.policy import global_refusal, in_package

__all__ = [
    "Compatibility",
    "InspectionLimits",
    "PickleInspectionError",
    "PickleLimitExceeded",
    "PickleReport",
    "check_compatibility",
    "global_refusal",
    "inspect_pickle",
]


@dataclass(frozen=True)
class PickleReport:
    """What a model file would make the unpickler do, found without unpickling it.

    ``globals`` lists each ``(module, name)`` the unpickler would import, in order of first use,
    after Python 2 name mapping (protocols < 3) as the unpickler applies it. ``refused`` holds one
    message per refused global or construct, each naming it. ``sklearn_versions`` are the distinct
    ``_sklearn_version`` values estimators recorded. ``compression`` is joblib's name for the
    compressor (``None`` when uncompressed); ``protocol`` is the outer pickle's protocol.
    """

    globals: tuple[tuple[str, str], ...]
    refused: tuple[str, ...]
    sklearn_versions: tuple[str, ...]
    uses_numpy_core: bool
    compression: str | None
    protocol: int


class Compatibility(NamedTuple):
    """Problems between a pickle and a framework: ``errors`` refuse, ``warnings`` inform."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def inspect_pickle(
    path: Path | str,
    *,
    limits: InspectionLimits | None = None,
    trusted: Mapping[str, Collection[str]] | None = None,
) -> PickleReport:
    """Report what unpickling ``path`` (as ``joblib.load`` does) would import, running nothing.

    ``limits`` bounds the work (default :class:`InspectionLimits`); passing one raises
    :class:`PickleLimitExceeded` naming the limit and its setting. ``trusted`` maps modules the
    model's own code ships to the classes they define (``skdeploy:trustedModules``, see
    :func:`global_refusal`). A construct whose effect on
    the real loader this walk cannot follow exactly ends the walk with a refusal. Raises
    :class:`PickleInspectionError` with the reason and byte offset for anything unreadable; no
    input makes it raise anything else.
    """
    path = Path(path)
    limits = limits or InspectionLimits()
    findings = Findings(trusted=dict(trusted or {}), limits=limits)
    try:
        with path.open("rb") as raw:
            head = raw.read(8)
            if not head:
                raise PickleInspectionError("the file is empty")
            raw.seek(0)
            compression = detect_compression(head)
            stream = Stream(decompressed(raw, compression), limits)
            walker = Walker(stream, findings, joblib_arrays=True, depth=0)
            where = f"the {compression or 'uncompressed'} stream"
            try:
                walker.run()
                walker.check_work()
            except Unsafe as exc:
                findings.refuse(
                    f"{exc} (at byte {stream.tell()} of {where}); nothing after it was inspected"
                )
            except (Corrupt, ValueError, OverflowError, UnicodeDecodeError) as exc:
                raise PickleInspectionError(
                    f"not a readable joblib/pickle file: {exc} (at byte {stream.tell()} of {where})"
                ) from exc
    except PickleInspectionError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    except OSError as exc:
        raise PickleInspectionError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (RecursionError, MemoryError) as exc:
        raise PickleInspectionError(
            f"{path}: the inspection ran out of "
            f"{'memory' if isinstance(exc, MemoryError) else 'stack'}; the file is refused"
        ) from exc
    return PickleReport(
        globals=tuple(findings.globals),
        refused=tuple(findings.refused),
        sklearn_versions=tuple(findings.versions),
        uses_numpy_core=any(in_package(module, "numpy._core") for module, _ in findings.globals),
        compression=compression,
        protocol=walker.proto if walker.proto else walker.highest_opcode_proto,
    )


def _major_minor(version: str) -> str | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def check_compatibility(
    report: PickleReport, framework: Framework, *, allow_version_skew: bool = False
) -> Compatibility:
    """Problems that would make ``framework``'s container fail to load or misuse the model.

    Errors: refused globals; a recorded scikit-learn version whose major.minor differs from the
    framework's (a warning instead with ``allow_version_skew``); ``numpy._core`` on a numpy-1
    framework; lz4 compression when the framework does not install lz4. Warnings: no recorded
    scikit-learn version, and pandas objects, whose pickles depend on the pandas version.
    """
    errors: list[str] = list(report.refused)
    warnings: list[str] = []
    for version in report.sklearn_versions:
        if _major_minor(version) == framework.sklearn_minor:
            continue
        matching = [
            f"{f.version} (scikit-learn {f.scikit_learn})"
            for f in FRAMEWORKS.values()
            if f.sklearn_minor == _major_minor(version)
        ]
        message = (
            f"the model was saved with scikit-learn {version}, but framework {framework.version} "
            f"runs scikit-learn {framework.scikit_learn} (major.minor {framework.sklearn_minor}): "
            "unpickling may fail, or predictions may differ. Re-save the model with "
            f"scikit-learn=={framework.scikit_learn}"
            + (f", or use framework {' or '.join(matching)}" if matching else "")
        )
        (warnings if allow_version_skew else errors).append(message)
    if report.uses_numpy_core and framework.numpy_major < 2:
        numpy2 = [f.version for f in FRAMEWORKS.values() if f.numpy_major >= 2]
        errors.append(
            "the pickle refers to numpy._core, which only numpy 2 writes and imports, but "
            f"framework {framework.version} has numpy {framework.numpy}: re-save the model "
            "under numpy<2" + (f", or use framework {' or '.join(numpy2)}" if numpy2 else "")
        )
    if report.compression == "lz4" and not any(
        requirement.lower().startswith("lz4") for requirement in framework.runtime_requirements()
    ):
        errors.append(
            f"the file is lz4-compressed, and lz4 is not among the packages framework "
            f"{framework.version} pins: joblib.load fails there. Re-save with compress=('zlib', 3)"
        )
    modules = {module for module, _ in report.globals}
    if not report.sklearn_versions and any(in_package(m, "sklearn") for m in modules):
        warnings.append(
            "no scikit-learn version is recorded in the pickle (scikit-learn < 0.18, or a custom "
            "__getstate__): the version match cannot be checked"
        )
    if any(in_package(m, "pandas") for m in modules):
        warnings.append(
            f"the pickle holds pandas objects, which only load reliably under the pandas that "
            f"wrote them; framework {framework.version} has pandas {framework.pandas}"
        )
    return Compatibility(errors=tuple(errors), warnings=tuple(warnings))
