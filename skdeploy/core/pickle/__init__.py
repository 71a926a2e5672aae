"""The pickle inspector: reads a model file's opcodes and checks every global, executing nothing.

:mod:`~skdeploy.core.pickle.inspect` holds the entry points (:func:`inspect_pickle`,
:func:`check_compatibility`) and the report; :mod:`~skdeploy.core.pickle.policy` decides which
globals are allowed, from the reviewed :mod:`~skdeploy.core.pickle.allowlist` and the generated
``allowlist.json``. The walk lives in private modules, one concept each: ``_compression``,
``_stream`` (the opcode stream), ``_machine`` and ``_walker`` (the simulated unpickler),
``_arrays`` (joblib's arrays and numpy dtypes), ``_attributes``, ``_values``, ``_findings``,
``_limits`` and ``_errors``.
"""

from skdeploy.core.pickle.inspect import (
    Compatibility,
    InspectionLimits,
    PickleInspectionError,
    PickleLimitExceeded,
    PickleReport,
    check_compatibility,
    inspect_pickle,
)
from skdeploy.core.pickle.policy import global_refusal

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
