"""The tools around the deploy: the ``skdeploy`` command line and what its commands run.

``cli`` is the argparse wiring; each command is a module or package (``build``, ``local`` for
``serve``, ``smoke``, ``demo`` for ``check`` and ``demo``, ``plan``), with ``common`` (exit codes
and the error handling every command shares), ``runtime`` (the container-faithful virtualenvs,
whose ``_runtime/`` files run there by path; ``interpreter`` finds their Python), ``memory``,
``mockrun`` (the program under Pulumi's mocks, for ``plan`` and the tests) and
``pickle_allowlist_gen``. It may import
:mod:`skdeploy.core` and :mod:`skdeploy.infra`; nothing below imports it. This ``__init__``
imports no module, so that importing one tool (``mockrun``, in the program's import probe) does
not import the others: the public API is the command line, :func:`skdeploy.tooling.cli.main`.
"""

__all__ = [
    "build",
    "cli",
    "commands",
    "common",
    "demo",
    "interpreter",
    "local",
    "memory",
    "mockrun",
    "pickle_allowlist_gen",
    "plan",
    "runtime",
    "smoke",
]
