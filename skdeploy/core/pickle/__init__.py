"""The pickle inspector: reads a model file's opcodes and checks every global, executing nothing.

:mod:`~skdeploy.core.pickle.inspect` walks the opcodes, :mod:`~skdeploy.core.pickle.policy`
decides which globals are allowed, from the reviewed :mod:`~skdeploy.core.pickle.allowlist` and
the generated ``allowlist.json``.
"""

from skdeploy.core.pickle.inspect import (
    InspectionLimits,
    PickleInspectionError,
    check_compatibility,
    inspect_pickle,
)
from skdeploy.core.pickle.policy import global_refusal

__all__ = [
    "InspectionLimits",
    "PickleInspectionError",
    "check_compatibility",
    "global_refusal",
    "inspect_pickle",
]
