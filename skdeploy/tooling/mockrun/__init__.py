"""Run the real Pulumi program under Pulumi's own mocks and record what it declares.

This is how the program is proven without the Pulumi CLI, the AWS provider plugin or AWS: the
tests assert on the recording and ``skdeploy plan`` prints and diffs it. The recording holds each
resource's type, logical name, parent, inputs and the options that matter (protect, retain on
delete, dependencies), which plain mocks do not show: a :class:`RecordingMonitor` reads them from
the registration request.

The package: :mod:`._provider` (the stand-in for pulumi-aws) and :mod:`._recording` (what
the program declared, read from each registration request).
"""

from __future__ import annotations

import gc
import runpy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from skdeploy.core.constants import PROJECT_NAME
from skdeploy.core.settings import SECRET, config_as_engine_strings, read_stack_config
from skdeploy.tooling.mockrun._provider import (
    MOCK_ACCOUNT_ID,
    MOCK_ORGANIZATION,
    REPLACED_ON_ANY_CHANGE,
    REPLACED_ON_CHANGE,
    UPDATED_IN_PLACE,
    ProviderMocks,
    replacing_fields,
)
from skdeploy.tooling.mockrun._recording import DeclaredResource, ProgramRun, RecordingMonitor

__all__ = [
    "MOCK_ACCOUNT_ID",
    "MOCK_ORGANIZATION",
    "REPLACED_ON_ANY_CHANGE",
    "REPLACED_ON_CHANGE",
    "UPDATED_IN_PLACE",
    "DeclaredResource",
    "ProgramRun",
    "ProviderMocks",
    "RecordingMonitor",
    "replacing_fields",
    "run_program",
]


def run_program(
    project_dir: Path,
    stack: str,
    config: Mapping[str, object] | None = None,
    *,
    program: Path | None = None,
    previous_outputs: Mapping[str, Any] | None = None,
) -> ProgramRun:
    """Run ``__main__.py`` for ``stack`` under mocks; ``config`` defaults to the stack file.

    ``config`` uses the stack file's shape (namespaced keys, structured values as objects);
    ``previous_outputs`` are the outputs of the stack's last update (none: a new stack).
    """
    values = dict(read_stack_config(project_dir, stack) if config is None else config)
    secret_keys = [k for k, v in values.items() if v == SECRET]
    pulumi.runtime.set_all_config(config_as_engine_strings(values), secret_keys)
    pulumi.runtime.reset_options()  # no root stack: set_mocks makes a new one
    region = str(values.get("aws:region") or "us-east-1")
    monitor = RecordingMonitor(ProviderMocks(region, previous_outputs))
    pulumi.runtime.set_mocks(
        monitor.mocks,
        project=PROJECT_NAME,
        stack=stack,
        preview=False,
        monitor=monitor,
        organization=MOCK_ORGANIZATION,
    )
    # The runtime's settings are new; a previous run that failed left its pending outputs in the
    # old ones: free them now. asyncio logs a dead future's unretrieved exception with a formatted
    # traceback, which calls ast.parse on Python 3.11; if the collector ran that inside the
    # preflight's own ast.parse, CPython 3.11.7 would fail with "SystemError: AST constructor
    # recursion depth mismatch".
    gc.collect()
    exports = _run_and_export(program or project_dir / "__main__.py")
    for resource in monitor.declared:
        if not resource.outputs and resource.urn in monitor.resources:
            resource.outputs = dict(monitor.resources[resource.urn].state)
    return ProgramRun(
        stack=stack,
        resources=monitor.declared,
        exports=exports,
        completed=frozenset(monitor.completed),
    )


def _run_and_export(script: Path) -> dict[str, Any]:
    """Run the program under the mocks already set; its stack outputs, secrets masked.

    ``pulumi.runtime.test`` is Pulumi's public way to run a program under mocks to the end: it
    runs the function in the SDK's own event loop, waits for every registration, and awaits the
    Output the function returns. The exports are read in that Output, once the program ran.
    """
    exports: dict[str, Any] = {}

    def settle(key: str, value: Any) -> pulumi.Output[None]:
        output = pulumi.Output.from_input(value)
        secret: pulumi.Output[bool] = pulumi.Output.from_input(output.is_secret())
        return pulumi.Output.all(output, secret).apply(
            lambda pair: exports.__setitem__(key, SECRET if pair[1] else pair[0])
        )

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def run_main() -> pulumi.Output[list[None]]:
        runpy.run_path(str(script), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        outputs = getattr(root, "outputs", None) or {}
        return pulumi.Output.all(*(settle(key, value) for key, value in outputs.items()))

    run_main()
    return exports
