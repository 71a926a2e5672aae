"""Pulumi program of this project: `pulumi up -s dev` runs it. Wiring only; see skdeploy/."""

from pathlib import Path

from skdeploy.infra.program import run

run(Path(__file__).resolve().parent)
