"""Preflight: every reason SageMaker would fail this stack, found in seconds, before deploying.

The static checks (settings, pickle inspection, handlers, requirements, sizes) run in the Pulumi
program before any resource is declared, so ``pulumi preview`` fails with the same report as
``skdeploy check`` and nothing is half-deployed. ``skdeploy check`` adds the one check that needs
the container-faithful runtime: load the model and predict ``samples.json`` (see
:func:`skdeploy.tooling.local.load_and_predict`).

One private module per check (``_trust``, ``_pickles``, ``_handlers``, ``_requirements``,
``_sizes``, ``_samples``), the report they fill (``_report``) and the entry points that run them
in order (``_deployable``).
"""

from skdeploy.core.preflight._deployable import assert_deployable, check_containment, static_checks
from skdeploy.core.preflight._handlers import check_handlers, shipped_code
from skdeploy.core.preflight._pickles import PICKLE_SUFFIXES, check_pickles, is_pickle_name
from skdeploy.core.preflight._report import Finding, PreflightError, PreflightReport, Severity
from skdeploy.core.preflight._requirements import check_requirements, requirement_names
from skdeploy.core.preflight._sizes import (
    INSTANCE_MEMORY,
    MEMORY_BUDGET,
    MemoryLimit,
    check_sizes,
    memory_limit,
)
from skdeploy.core.preflight._trust import check_trust, trusted_classes

__all__ = [
    "INSTANCE_MEMORY",
    "MEMORY_BUDGET",
    "PICKLE_SUFFIXES",
    "Finding",
    "MemoryLimit",
    "PreflightError",
    "PreflightReport",
    "Severity",
    "assert_deployable",
    "check_containment",
    "check_handlers",
    "check_pickles",
    "check_requirements",
    "check_sizes",
    "check_trust",
    "is_pickle_name",
    "memory_limit",
    "requirement_names",
    "shipped_code",
    "static_checks",
    "trusted_classes",
]
