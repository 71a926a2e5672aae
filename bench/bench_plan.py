"""Benchmark 4: the offline plan per stack (the Pulumi program under mocks, no CLI, no cloud).

In-process, after one warm-up run (pulumi and pulumi-aws imported, the program run once), each
stack's program is timed under mocks (:func:`skdeploy.tooling.mockrun.run_program`) and, where
``skdeploy.tooling.plan`` is present, as the whole plan document
(:func:`skdeploy.tooling.plan.build_plan`). A cold start is reported separately: importing
pulumi-aws in a new interpreter, and the whole ``python -m skdeploy plan --stack dev --json``
command from a new process.

Target: a warm plan within 2 s per stack.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

from common import REPO, header, verdict

from skdeploy.core.settings import available_stacks

TARGET_SECONDS = 2.0
REPEAT = 3


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def cold_import_seconds() -> float:
    """Seconds to import skdeploy.tooling.mockrun (pulumi, pulumi-aws) in a new interpreter."""
    code = (
        "import time; start = time.perf_counter(); import skdeploy.tooling.mockrun; "
        "print(time.perf_counter() - start)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return float(completed.stdout.strip())


def cold_command_seconds(stack: str) -> tuple[str, float]:
    """Wall time of the plan command from a new process (run_program if there is no command)."""
    command = [sys.executable, "-m", "skdeploy", "plan", "--stack", stack, "--json"]
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if completed.returncode == 0:
        return "python -m skdeploy plan --stack " + stack + " --json", elapsed
    code = (
        "from pathlib import Path; from skdeploy.tooling.mockrun import run_program; "
        f"run_program(Path({str(REPO)!r}), {stack!r})"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)
    return "python -c 'run_program(...)'", time.perf_counter() - start


def main() -> dict[str, object]:
    header("4. Offline plan per stack (Pulumi program under mocks)")
    import_seconds = cold_import_seconds()
    from skdeploy.tooling.mockrun import run_program

    build_plan: Callable[..., object] | None
    try:
        from skdeploy.tooling.plan import build_plan
    except ImportError:
        build_plan = None
    stacks = available_stacks(REPO)
    run_program(REPO, stacks[0])  # warm-up: imports done, program compiled once
    results: dict[str, object] = {"cold_import_s": import_seconds}
    targets = []
    for stack in stacks:

        def program_run(stack: str = stack) -> object:
            return run_program(REPO, stack)

        program = min(timed(program_run) for _ in range(REPEAT))
        figures = {"run_program_s": program}
        line = f"  {stack:<8} run_program {program * 1e3:6.0f} ms"
        worst = program
        if build_plan is not None:
            plan = min(timed(partial(build_plan, REPO, stack)) for _ in range(REPEAT))
            figures["build_plan_s"] = plan
            line += f"   build_plan {plan * 1e3:6.0f} ms"
            worst = max(worst, plan)
        print(line)
        results[stack] = figures
        targets.append(
            verdict(
                f"{stack} warm plan (s)",
                worst,
                f"<= {TARGET_SECONDS:.0f} s",
                worst <= TARGET_SECONDS,
            )
        )
    what, cold = cold_command_seconds(stacks[0])
    results["cold_command"] = {"command": what, "seconds": cold}
    print(f"  cold: import skdeploy.tooling.mockrun {import_seconds:.2f} s; `{what}` {cold:.2f} s")
    results["targets"] = targets
    return results


if __name__ == "__main__":
    main()
