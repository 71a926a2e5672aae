"""The Pulumi program and its components: what ``pulumi up`` runs.

:func:`~skdeploy.infra.program.run` reads the stack's settings from Pulumi's configuration
(:mod:`~skdeploy.infra.config`, the only reader of ``pulumi.Config``), refuses what would fail
on SageMaker (:mod:`skdeploy.core.preflight`), builds the artifacts, declares one
:class:`~skdeploy.infra.endpoint.SklearnEndpoint` (a tree of small child components: artifact
store, execution role, rollback alarms, serving, autoscaling, the optional HTTPS front door) and
exports its outputs (:func:`~skdeploy.infra.program.export_outputs`, the only export). It may
import :mod:`skdeploy.core`, pulumi and pulumi_aws; never :mod:`skdeploy.tooling`, argparse or an
AWS SDK client (the provider makes the AWS calls; the two exceptions, the front door's Lambda
handler that ships as a file and the scaling guard's deploy-time call, are listed in
``[tool.importlinter]`` in pyproject.toml).
"""

from skdeploy.infra.config import from_pulumi_config
from skdeploy.infra.endpoint import SklearnEndpoint
from skdeploy.infra.program import export_outputs, run

__all__ = ["SklearnEndpoint", "export_outputs", "from_pulumi_config", "run"]
