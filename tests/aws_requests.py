"""Turn declared Pulumi inputs into the SageMaker API requests the provider would send.

The provider maps its camelCase inputs one-to-one to the API's PascalCase members; the few names
that differ are listed in RENAMES. Tags become the API's list of Key/Value pairs.
"""

from __future__ import annotations

from typing import Any

from skdeploy.tooling.mockrun import DeclaredResource

RENAMES = {
    "memorySizeInMb": "MemorySizeInMB",
    "kmsKeyArn": "KmsKeyId",
    "sseAlgorithm": "SSEAlgorithm",
    "kmsMasterKeyId": "KMSMasterKeyID",
    "initialSamplingPercentage": "InitialSamplingPercentage",
    "destinationS3Uri": "DestinationS3Uri",
}
DROP = {"tags", "region", "name", "arn", "id", "urn", "tagsAll"}


def pascal(value: Any) -> Any:
    """camelCase keys to PascalCase, recursively."""
    if isinstance(value, dict):
        return {RENAMES.get(k, k[:1].upper() + k[1:]): pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal(v) for v in value]
    return value


def tags(resource: DeclaredResource) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(resource.inputs.get("tags", {}).items())]


def body(resource: DeclaredResource) -> dict[str, Any]:
    return pascal({k: v for k, v in resource.inputs.items() if k not in DROP})


def create_model(model: DeclaredResource) -> dict[str, Any]:
    return {"ModelName": model.outputs["name"], **body(model), "Tags": tags(model)}


def create_endpoint_config(config: DeclaredResource) -> dict[str, Any]:
    return {"EndpointConfigName": config.outputs["name"], **body(config), "Tags": tags(config)}


def create_endpoint(endpoint: DeclaredResource) -> dict[str, Any]:
    return {"EndpointName": endpoint.outputs["name"], **body(endpoint), "Tags": tags(endpoint)}


def coerce(value: Any, shape: Any) -> Any:
    """Whole doubles to integers where the API shape says integer.

    Pulumi's wire format (protobuf Struct) carries every number as a double; the provider turns
    them back into its schema's types before calling AWS. This does the same by the API's shape.
    """
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: coerce(v, shape.members.get(k)) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [coerce(v, shape.member) for v in value]
    if shape.type_name in ("integer", "long") and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
