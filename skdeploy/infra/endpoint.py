"""``SklearnEndpoint``: one stack's SageMaker endpoint, as a Pulumi component of small children.

The tree (each child a component with its own resources, see its module)::

    SklearnEndpoint                 skdeploy:index:SklearnEndpoint
      ArtifactStore                 bucket and artifact objects              (store.py)
      ExecutionRole                 role and its policy                      (role.py)
      RollbackAlarms                the two alarms, with blue/green only     (guardrails.py)
      Serving                       Model(s), configuration, logs, Endpoint  (serving.py)
      Autoscaling                   scaling targets and policies, if any     (scaling.py)
      FrontDoor                     the HTTPS API, if any                    (api.py)
      StackReference                the kind guard's memory                  (kind.py)

Every AWS resource was deployed directly under this component before the children existed; each
carries an alias to that URN (:func:`skdeploy.infra.naming.moved_from`), so updating a deployed
stack moves resources in the state and replaces none.

Usable from any Pulumi program::

    from skdeploy import load_stack_settings
    from skdeploy.infra.endpoint import SklearnEndpoint
    from skdeploy.infra.program import export_outputs

    endpoint = SklearnEndpoint("churn", settings)
    export_outputs(endpoint)  # endpointKind among them: the kind guard's memory
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from skdeploy.core import constants as c
from skdeploy.core.artifact import Artifact
from skdeploy.core.constants import COMPONENT_TYPE
from skdeploy.core.frameworks import IMAGE_REPOSITORY
from skdeploy.core.settings import EndpointSettings
from skdeploy.infra.api import FrontDoor
from skdeploy.infra.guardrails import ROLLBACK_ALARMS, RollbackAlarms, alarm_names
from skdeploy.infra.kind import EndpointReplacementRefused, guarded_endpoint_kind
from skdeploy.infra.naming import Naming, resource_tags
from skdeploy.infra.role import Account, ExecutionRole, RoleGrants
from skdeploy.infra.scaling import Autoscaling
from skdeploy.infra.serving import Serving, ServingInputs
from skdeploy.infra.store import ArtifactStore, build_artifacts, stack_sha256

__all__ = [
    "ROLLBACK_ALARMS",
    "EndpointReplacementRefused",
    "SecondEndpointRefused",
    "SklearnEndpoint",
    "alarm_names",
    "resource_tags",
]


class SecondEndpointRefused(RuntimeError):
    """A program declared a second SklearnEndpoint: the stack outputs describe one endpoint."""


def _claim_the_stack(name: str) -> None:
    """Refuse a second component in one program: both would need the same ``endpointKind``."""
    from pulumi.runtime.settings import get_root_resource

    stack = get_root_resource()
    if stack is None:
        return
    first = getattr(stack, "_skdeploy_endpoint", None)
    if first is not None:
        raise SecondEndpointRefused(
            f"one SklearnEndpoint per stack: {first!r} is already declared, so {name!r} would "
            "share its stack outputs (endpointKind among them, which guards one endpoint's "
            "serverless/instances switch); put the second endpoint in its own stack"
        )
    stack._skdeploy_endpoint = name  # type: ignore[attr-defined]


class SklearnEndpoint(pulumi.ComponentResource):
    """A SageMaker real-time endpoint serving one scikit-learn model artifact (per variant).

    One per stack. ``artifacts`` (variant name → built artifact) are built before the component
    (:func:`skdeploy.infra.store.build_artifacts`, which runs when they are not given). The
    component exports nothing: the program exports :meth:`outputs`, and must, for
    ``endpointKind`` is what the next update reads back to refuse a serverless/instances switch.
    """

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    model_name: pulumi.Output[str]
    model_data_url: pulumi.Output[str]
    artifact_sha256: pulumi.Output[str]
    image_uri: pulumi.Output[str]
    region: pulumi.Output[str]
    endpoint_kind: pulumi.Output[str]
    api_url: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        settings: EndpointSettings,
        *,
        artifacts: Mapping[str, Artifact] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _claim_the_stack(name)
        super().__init__(COMPONENT_TYPE, name, None, opts)
        built = dict(artifacts) if artifacts is not None else build_artifacts(settings)
        served = settings.production_variants
        variants = (*served, *([settings.shadow] if settings.shadow else []))
        naming = Naming(name.lower(), single=not settings.variants)
        tags = resource_tags(settings, stack_sha256(settings, built))
        account = Account(
            partition=aws.get_partition_output(opts=self._invoke()).partition,
            account_id=aws.get_caller_identity_output(opts=self._invoke()).account_id,
        )
        store = ArtifactStore(naming, settings, built, variants, tags, old_parent=self)
        image_uri = self._image_uri(settings)
        capture_bucket: pulumi.Output[str] = (
            pulumi.Output.from_input(settings.data_capture.bucket)
            if settings.data_capture is not None and settings.data_capture.bucket
            else store.bucket.bucket
        )
        grants = RoleGrants(store.prefix_arn, image_uri, capture_bucket)
        role = ExecutionRole(naming, settings, account, grants, tags, old_parent=self)
        rollback = (
            RollbackAlarms(naming, settings, tags, old_parent=self).alarms
            if settings.deployment
            else []
        )
        kind = guarded_endpoint_kind(self, settings, naming("previous"))
        inputs = ServingInputs(role, store, image_uri, capture_bucket, kind, tuple(rollback))
        serving = Serving(naming, settings, inputs, tags, old_parent=self)
        if settings.autoscaling is not None:
            Autoscaling(naming, settings, served, serving.endpoint, tags, old_parent=self)
        self.api_url = None
        if settings.api is not None:
            boundary = account.permissions_boundary
            front_door = FrontDoor(
                naming, settings, serving.endpoint, tags, boundary, old_parent=self
            )
            self.api_url = front_door.api_url

        self.endpoint_name = serving.endpoint.name
        self.endpoint_arn = serving.endpoint.arn
        self.endpoint_config_name = serving.config.name
        self.model_name = serving.models[served[0].name].name
        self.model_data_url = store.model_data_url(served[0].name)
        self.artifact_sha256 = pulumi.Output.from_input(stack_sha256(settings, built))
        self.image_uri = image_uri
        self.region = pulumi.Output.from_input(settings.region)
        self.endpoint_kind = kind
        self.register_outputs(self.outputs())

    def _invoke(self) -> pulumi.InvokeOptions:
        return pulumi.InvokeOptions(parent=self)

    def _image_uri(self, settings: EndpointSettings) -> pulumi.Output[str]:
        """The user's image, or AWS's prebuilt scikit-learn image of the framework version."""
        if settings.image_uri is not None:
            return pulumi.Output.from_input(settings.image_uri)
        return aws.sagemaker.get_prebuilt_ecr_image_output(
            repository_name=IMAGE_REPOSITORY,
            image_tag=settings.framework.image_tag,
            region=settings.region,
            opts=self._invoke(),
        ).registry_path

    def outputs(self) -> dict[str, pulumi.Output[str]]:
        """The stack outputs, keyed by the names in :mod:`skdeploy.core.constants` (``apiUrl`` only
        with the front door)."""
        return {
            c.OUTPUT_ENDPOINT_NAME: self.endpoint_name,
            c.OUTPUT_ENDPOINT_ARN: self.endpoint_arn,
            c.OUTPUT_ENDPOINT_CONFIG_NAME: self.endpoint_config_name,
            c.OUTPUT_MODEL_NAME: self.model_name,
            c.OUTPUT_MODEL_DATA_URL: self.model_data_url,
            c.OUTPUT_ARTIFACT_SHA256: self.artifact_sha256,
            c.OUTPUT_IMAGE_URI: self.image_uri,
            c.OUTPUT_REGION: self.region,
            c.OUTPUT_ENDPOINT_KIND: self.endpoint_kind,
            **({c.OUTPUT_API_URL: self.api_url} if self.api_url is not None else {}),
        }
