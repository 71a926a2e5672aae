"""Subcommands contributed by their own modules (serve, smoke, check, plan).

Each module exposes ``register(subparsers)``, which adds its parser and sets ``handler`` to a
function ``(argparse.Namespace) -> int`` returning the exit code. Listed here so that the CLI does
not import the heavier modules until it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from skdeploy import demo, local, plan, smoke

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: list[Registrar] = [local.register, smoke.register, demo.register, plan.register]
