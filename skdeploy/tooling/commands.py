"""The subcommands, in the order ``skdeploy --help`` lists them, each contributed by its module.

Each module exposes ``register(subparsers)``, which adds its parser and sets ``handler`` to a
function ``(argparse.Namespace) -> int`` returning the exit code.
"""

from __future__ import annotations

from skdeploy.tooling import batch, build, demo, history, local, plan, rollback, smoke
from skdeploy.tooling.common import Registrar

REGISTRARS: list[Registrar] = [
    build.register,
    local.register,
    smoke.register,
    demo.register,
    plan.register,
    rollback.register,
    history.register,
    batch.register,
]
