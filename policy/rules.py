"""The rules of the skdeploy policy pack, as plain functions over plain data.

Each rule takes resources as plain mappings and returns :class:`Violation` objects, so the same
code runs in three places: inside ``pulumi preview --policy-pack policy`` (through the thin
adapters in ``pack.py``), in the tests against what ``skdeploy.tooling.mockrun`` records for every
committed stack, and in the tests against deliberately bad declarations.

A resource is a mapping with

- ``type``: the Pulumi type token (``aws:s3/bucket:Bucket``);
- ``name``: the logical name;
- ``inputs``: the properties, camelCase as the engine sends them (``dataCaptureConfig``);
- optionally ``urn``, ``outputs`` (known outputs such as a bucket's physical name), and
  ``property_dependencies`` (input name -> URNs the input was computed from).

During a preview some values are not known yet (a new bucket's id, an inline policy that embeds
an ARN); the adapters pass them as :data:`UNKNOWN`. A per-resource rule skips an unknown value:
Pulumi runs resource policies again during ``pulumi up``, with every input known, before the
resource is created. A stack rule matches an unknown reference through ``property_dependencies``
(the engine records which resource an input came from), so pairings such as "this access block
guards that bucket" are decided in the preview too.

This module imports nothing outside the standard library on purpose: Pulumi runs a policy pack in
its own virtualenv (``policy/requirements.txt``), and a pack published to Pulumi Cloud is uploaded
without the rest of the repository. :data:`WILDCARD_RESOURCE_SIDS` therefore restates
``skdeploy.core.iam.WILDCARD_RESOURCE_SIDS``; ``tests/test_policy.py`` fails the moment the two
differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final


class _Unknown:
    """A value the engine does not know yet (preview); see the module docstring."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown during preview>"


#: The one value adapters use for "not known during this preview".
UNKNOWN: Final = _Unknown()

#: Statements allowed ``Resource: "*"`` and why. Mirror of skdeploy.core.iam.WILDCARD_RESOURCE_SIDS
#: (kept equal by tests/test_policy.py; see the module docstring for why it is not imported).
WILDCARD_RESOURCE_SIDS: Final[Mapping[str, str]] = {
    "PullImageAuthorization": "ecr:GetAuthorizationToken has no resource-level permissions",
    "PutSageMakerMetrics": "cloudwatch:PutMetricData has no resource-level permissions; "
    "narrowed by the cloudwatch:namespace condition",
    "ManageVpcNetworkInterfaces": "the EC2 network-interface actions SageMaker needs in a VPC "
    "have no resource-level permissions for these calls",
}

# --- Type tokens (pulumi-aws 7; the V2 names are deprecated aliases that still exist) ----------
BUCKET_TYPES: Final = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
PUBLIC_ACCESS_BLOCK_TYPE: Final = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION_TYPES: Final = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
#: S3 resources with an ``acl`` (canned) and/or grants: the bucket, its ACL, its objects.
ACL_TYPES: Final = frozenset(
    {
        *BUCKET_TYPES,
        "aws:s3/bucketAcl:BucketAcl",
        "aws:s3/bucketAclV2:BucketAclV2",
        "aws:s3/bucketObject:BucketObject",
        "aws:s3/bucketObjectv2:BucketObjectv2",
    }
)
ROLE_TYPE: Final = "aws:iam/role:Role"
#: IAM resources whose ``policy`` input is a policy document.
POLICY_DOCUMENT_TYPES: Final = frozenset(
    {
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
#: IAM resources that attach managed policies by ARN (``policyArn`` or ``policyArns``).
ATTACHMENT_TYPES: Final = frozenset(
    {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
        "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
        "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
        "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive",
        "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive",
    }
)
ENDPOINT_TYPE: Final = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG_TYPE: Final = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SCALING_TARGET_TYPE: Final = "aws:appautoscaling/target:Target"

PUBLIC_ACCESS_FLAGS: Final = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
#: Server-side encryption algorithms S3 accepts; all three encrypt at rest.
SSE_ALGORITHMS: Final = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
#: Canned ACLs that let someone outside the account read or write.
PUBLIC_CANNED_ACLS: Final = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GRANTEE_URIS: Final = frozenset(
    {
        "http://acs.amazonaws.com/groups/global/AllUsers",
        "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
    }
)
#: Managed policies whose name contains one of these grant far more than an endpoint needs.
BROAD_MANAGED_POLICY_MARKERS: Final = ("FullAccess", "AdministratorAccess")
#: Prod endpoints keep at least this many instances (one can fail or be patched).
PROD_MIN_INSTANCES: Final = 2
SAGEMAKER_SCALABLE_DIMENSION: Final = "sagemaker:variant:DesiredInstanceCount"


@dataclass(frozen=True)
class Violation:
    """One broken rule: what is wrong and how to fix it, and the offending resource's URN."""

    message: str
    urn: str | None = None


Resource = Mapping[str, Any]


# --- Small readers ----------------------------------------------------------------------------
def _inputs(resource: Resource) -> Mapping[str, Any]:
    value = resource.get("inputs")
    return value if isinstance(value, Mapping) else {}


def _outputs(resource: Resource) -> Mapping[str, Any]:
    value = resource.get("outputs")
    return value if isinstance(value, Mapping) else {}


def _urn(resource: Resource) -> str | None:
    urn = resource.get("urn")
    return urn if isinstance(urn, str) and urn else None


def _label(resource: Resource) -> str:
    kind = str(resource.get("type", "")).rsplit(":", 1)[-1]
    return f"{kind} '{resource.get('name', '?')}'"


def _known_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _as_list(value: Any) -> list[Any]:
    """A JSON/engine value that may be one item or a list of them, as a list."""
    if value is None or value is UNKNOWN:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _of_type(resources: Iterable[Resource], types: str | frozenset[str]) -> list[Resource]:
    wanted = frozenset({types}) if isinstance(types, str) else types
    return [r for r in resources if r.get("type") in wanted]


def _identities(resource: Resource, *keys: str) -> set[str]:
    """Known physical names/ids of ``resource`` under ``keys`` (inputs, outputs, ``id``)."""
    found: set[str] = set()
    for source in (_inputs(resource), _outputs(resource), resource):
        for key in keys:
            value = _known_str(source.get(key))
            if value is not None:
                found.add(value)
    return found


def refers_to(source: Resource, prop: str, target: Resource, *target_keys: str) -> bool:
    """Whether ``source``'s input ``prop`` names ``target``.

    By value when the value is known (equal to one of ``target``'s identities under
    ``target_keys``), otherwise by the engine's property dependencies (preview).
    """
    value = _inputs(source).get(prop)
    if isinstance(value, str) and value:
        return value in _identities(target, *target_keys)
    if value is UNKNOWN:
        deps = resource_dependencies(source).get(prop, ())
        target_urn = _urn(target)
        return target_urn is not None and target_urn in deps
    return False


def resource_dependencies(resource: Resource) -> Mapping[str, Sequence[str]]:
    """The ``property_dependencies`` of a resource (input name -> URNs), or none."""
    deps = resource.get("property_dependencies")
    return deps if isinstance(deps, Mapping) else {}


def stack_of_urn(urn: str) -> str:
    """The stack name in ``urn:pulumi:<stack>::<project>::<type>::<name>``."""
    head = urn.split("::", 1)[0]
    prefix = "urn:pulumi:"
    if not head.startswith(prefix):
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    return head[len(prefix) :]


def is_prod_stack(stack: str) -> bool:
    """Stacks named ``prod`` or starting with ``prod`` (``prod-eu``, ``production``)."""
    return stack.lower().startswith("prod")


# --- Rule 1: every bucket is private and encrypted --------------------------------------------
def check_buckets_private_and_encrypted(resources: Iterable[Resource]) -> list[Violation]:
    """Stack rule: every bucket has a four-way public access block and default encryption.

    Each S3 bucket needs a ``BucketPublicAccessBlock`` with ``blockPublicAcls``,
    ``blockPublicPolicy``, ``ignorePublicAcls`` and ``restrictPublicBuckets`` all true, and a
    ``BucketServerSideEncryptionConfiguration`` whose rules use AES256 or KMS (or the bucket's own
    deprecated inline ``serverSideEncryptionConfiguration``). Guards are matched to the bucket by
    their ``bucket`` input: the bucket's physical name (its id), or, while that is unknown in a
    preview, the property dependency on the bucket.
    """
    resources = list(resources)
    blocks = _of_type(resources, PUBLIC_ACCESS_BLOCK_TYPE)
    encryptions = _of_type(resources, ENCRYPTION_TYPES)
    violations: list[Violation] = []
    for bucket in _of_type(resources, BUCKET_TYPES):
        label, urn = _label(bucket), _urn(bucket)
        own_blocks = [b for b in blocks if refers_to(b, "bucket", bucket, "bucket", "id")]
        if not own_blocks:
            violations.append(
                Violation(
                    f"{label} has no BucketPublicAccessBlock: declare one for this bucket with "
                    f"{', '.join(PUBLIC_ACCESS_FLAGS)} all true",
                    urn,
                )
            )
        for block in own_blocks:
            off = [f for f in PUBLIC_ACCESS_FLAGS if _inputs(block).get(f) is not True]
            if off:
                violations.append(
                    Violation(
                        f"{label} is not fully private: {_label(block)} does not set "
                        f"{', '.join(off)} to true",
                        urn,
                    )
                )
        algorithms = [
            *_inline_sse_algorithms(bucket),
            *(
                algorithm
                for e in encryptions
                if refers_to(e, "bucket", bucket, "bucket", "id")
                for algorithm in _sse_algorithms(_inputs(e).get("rules"))
            ),
        ]
        if not algorithms:
            violations.append(
                Violation(
                    f"{label} is not encrypted: declare a BucketServerSideEncryptionConfiguration "
                    f"for it with sseAlgorithm {' or '.join(sorted(SSE_ALGORITHMS))}",
                    urn,
                )
            )
        for algorithm in algorithms:
            if algorithm is not UNKNOWN and algorithm not in SSE_ALGORITHMS:
                violations.append(
                    Violation(
                        f"{label} uses sseAlgorithm {algorithm!r}; use one of "
                        f"{', '.join(sorted(SSE_ALGORITHMS))}",
                        urn,
                    )
                )
    return violations


def _sse_algorithms(rules: Any) -> list[Any]:
    """``sseAlgorithm`` of each rule (``rules`` or ``rule``), UNKNOWN where not known yet."""
    found: list[Any] = []
    for rule in _as_list(rules):
        if not isinstance(rule, Mapping):
            continue
        default = rule.get("applyServerSideEncryptionByDefault")
        if isinstance(default, Mapping) and "sseAlgorithm" in default:
            found.append(default["sseAlgorithm"])
    return found


def _inline_sse_algorithms(bucket: Resource) -> list[Any]:
    inline = _inputs(bucket).get("serverSideEncryptionConfiguration")
    if not isinstance(inline, Mapping):
        return []
    return _sse_algorithms(inline.get("rule") or inline.get("rules"))


def check_no_public_acl(resource: Resource) -> list[Violation]:
    """Resource rule: no S3 bucket, bucket ACL or object grants access to the public.

    Refuses the canned ACLs ``public-read``, ``public-read-write`` and ``authenticated-read`` (any
    AWS account), and grants to the AllUsers or AuthenticatedUsers groups.
    """
    if resource.get("type") not in ACL_TYPES:
        return []
    inputs, label = _inputs(resource), _label(resource)
    violations: list[Violation] = []
    acls = [inputs.get("acl")]
    grants = list(_as_list(inputs.get("grants")))
    policy = inputs.get("accessControlPolicy")
    if isinstance(policy, Mapping):
        grants += [
            g.get("grantee") for g in _as_list(policy.get("grants")) if isinstance(g, Mapping)
        ]
    for acl in acls:
        if isinstance(acl, str) and acl in PUBLIC_CANNED_ACLS:
            violations.append(
                Violation(f"{label} sets the public ACL {acl!r}; use 'private' (or none)")
            )
    for grantee in grants:
        if isinstance(grantee, Mapping) and grantee.get("uri") in PUBLIC_GRANTEE_URIS:
            violations.append(
                Violation(f"{label} grants access to the public group {grantee['uri']}")
            )
    return violations


# --- Rule 2: least-privilege IAM --------------------------------------------------------------
def check_iam_least_privilege(resource: Resource) -> list[Violation]:
    """Resource rule: no broad managed policies, no ``*`` actions, ``Resource: "*"`` justified.

    - managed policies (attachments' ``policyArn``/``policyArns``, a role's ``managedPolicyArns``)
      must not be ``*FullAccess`` or ``AdministratorAccess``;
    - Allow statements of inline policies (``policy`` of role/user/group policies and managed
      ``Policy`` documents, a role's ``inlinePolicies``) must not allow ``*`` or ``service:*``,
      nor use ``NotAction``;
    - an Allow statement may name ``Resource: "*"`` (or use ``NotResource``) only when its Sid is
      one of :data:`WILDCARD_RESOURCE_SIDS`.
    """
    type_, inputs, label = resource.get("type"), _inputs(resource), _label(resource)
    violations: list[Violation] = []
    arns: list[Any] = []
    documents: list[tuple[str, Any]] = []
    if type_ in ATTACHMENT_TYPES:
        arns += [inputs.get("policyArn"), *_as_list(inputs.get("policyArns"))]
    if type_ == ROLE_TYPE:
        arns += _as_list(inputs.get("managedPolicyArns"))
        for inline in _as_list(inputs.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                documents.append(
                    (f"inline policy {inline.get('name', '?')!r}", inline.get("policy"))
                )
    if type_ in POLICY_DOCUMENT_TYPES:
        documents.append(("policy", inputs.get("policy")))
    for arn in arns:
        if isinstance(arn, str) and _is_broad_managed_policy(arn):
            violations.append(
                Violation(
                    f"{label} attaches the managed policy {arn}: *FullAccess and "
                    "AdministratorAccess grant far more than an endpoint needs; write a "
                    "least-privilege inline policy instead"
                )
            )
    for where, document in documents:
        violations += [
            Violation(f"{label} {where}: {problem}")
            for problem in policy_document_problems(document)
        ]
    return violations


def _is_broad_managed_policy(arn: str) -> bool:
    name = arn.rsplit("/", 1)[-1].lower()
    return any(marker.lower() in name for marker in BROAD_MANAGED_POLICY_MARKERS)


def policy_document_problems(document: Any) -> list[str]:
    """What is too broad in one IAM policy document (a JSON string or a mapping)."""
    if document is None or document is UNKNOWN:
        return []
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            return [f"is not valid JSON ({exc})"]
    if not isinstance(document, Mapping):
        return ["is not a JSON object"]
    problems: list[str] = []
    for index, statement in enumerate(_as_list(document.get("Statement"))):
        if not isinstance(statement, Mapping) or statement.get("Effect", "Allow") != "Allow":
            continue
        sid = statement.get("Sid")
        name = f"statement {sid!r}" if sid else f"statement #{index} (no Sid)"
        for action in _as_list(statement.get("Action")):
            if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                problems.append(
                    f"{name} allows the wildcard action {action!r}; list the actions it needs"
                )
        if "NotAction" in statement:
            problems.append(f"{name} uses NotAction in an Allow, which allows every other action")
        wildcard = "*" in _as_list(statement.get("Resource")) or "NotResource" in statement
        if wildcard and sid not in WILDCARD_RESOURCE_SIDS:
            problems.append(
                f'{name} allows Resource "*" but its Sid is not one of the justified '
                f"{', '.join(sorted(WILDCARD_RESOURCE_SIDS))}; name the resources, or add the "
                "Sid and why to skdeploy.core.iam.WILDCARD_RESOURCE_SIDS"
            )
    return problems


# --- Rule 3: prod endpoints are resilient -----------------------------------------------------
def check_prod_endpoints(stack: str, resources: Iterable[Resource]) -> list[Violation]:
    """Stack rule for prod-named stacks: >= 2 instances, data capture, rollback alarms.

    In a stack named ``prod`` or ``prod...``:

    - no production variant is serverless (``serverlessConfig``);
    - every variant has ``initialInstanceCount`` >= 2, or an Application Auto Scaling target
      (``resourceId`` ``endpoint/<endpoint>/variant/<variant>``, dimension
      ``sagemaker:variant:DesiredInstanceCount``) with ``minCapacity`` >= 2;
    - every endpoint configuration captures data: ``dataCaptureConfig`` with
      ``enableCapture: true`` and ``initialSamplingPercentage`` > 0. ``enableCapture`` must be
      set: the provider sends ``false`` when it is left out;
    - every endpoint rolls back on alarms:
      ``deploymentConfig.autoRollbackConfiguration.alarms`` names at least one alarm.
    """
    if not is_prod_stack(stack):
        return []
    resources = list(resources)
    configs = _of_type(resources, ENDPOINT_CONFIG_TYPE)
    endpoints = _of_type(resources, ENDPOINT_TYPE)
    targets = _of_type(resources, SCALING_TARGET_TYPE)
    violations: list[Violation] = []
    users: dict[int, list[Resource]] = {id(c): [] for c in configs}
    for endpoint in endpoints:
        used = [c for c in configs if refers_to(endpoint, "endpointConfigName", c, "name")]
        if not used:
            violations.append(
                Violation(
                    f"{_label(endpoint)} uses an endpoint configuration this stack does not "
                    "declare, so its instances and data capture cannot be checked",
                    _urn(endpoint),
                )
            )
        for config in used:
            users[id(config)].append(endpoint)
        violations += _rollback_violations(endpoint)
    for config in configs:
        violations += _variant_violations(config, users[id(config)], targets)
        violations += _capture_violations(config)
    return violations


def _variant_violations(
    config: Resource, endpoints: list[Resource], targets: list[Resource]
) -> list[Violation]:
    label, urn = _label(config), _urn(config)
    variants = [
        v for v in _as_list(_inputs(config).get("productionVariants")) if isinstance(v, Mapping)
    ]
    if not variants:
        return [Violation(f"{label} declares no production variants", urn)]
    violations: list[Violation] = []
    for variant in variants:
        name = variant.get("variantName")
        if variant.get("serverlessConfig") is not None:
            violations.append(
                Violation(
                    f"{label} variant {name!r} is serverless; prod runs on instances "
                    f"(at least {PROD_MIN_INSTANCES})",
                    urn,
                )
            )
            continue
        count = _number(variant.get("initialInstanceCount"))
        if count is not None and count >= PROD_MIN_INSTANCES:
            continue
        floors = [
            _number(_inputs(t).get("minCapacity")) for t in _targets_of(endpoints, name, targets)
        ]
        if any(floor is not None and floor >= PROD_MIN_INSTANCES for floor in floors):
            continue
        shown = "unknown" if count is None else f"{count:g}"
        violations.append(
            Violation(
                f"{label} variant {name!r} may run {shown} instance(s): prod needs "
                f"initialInstanceCount >= {PROD_MIN_INSTANCES} or an autoscaling target with "
                f"minCapacity >= {PROD_MIN_INSTANCES}",
                urn,
            )
        )
    return violations


def _targets_of(
    endpoints: list[Resource], variant: Any, targets: list[Resource]
) -> Iterator[Resource]:
    """Scaling targets of ``variant`` on any of ``endpoints`` (matched by known resourceId)."""
    ids = {
        f"endpoint/{endpoint_name}/variant/{variant}"
        for endpoint in endpoints
        for endpoint_name in _identities(endpoint, "name")
    }
    for target in targets:
        inputs = _inputs(target)
        dimension = inputs.get("scalableDimension", SAGEMAKER_SCALABLE_DIMENSION)
        if inputs.get("resourceId") in ids and dimension in (SAGEMAKER_SCALABLE_DIMENSION, UNKNOWN):
            yield target


def _capture_violations(config: Resource) -> list[Violation]:
    label, urn = _label(config), _urn(config)
    capture = _inputs(config).get("dataCaptureConfig")
    if capture is UNKNOWN:
        return []
    if not isinstance(capture, Mapping):
        return [
            Violation(
                f"{label} has no dataCaptureConfig: prod captures a sample of requests and "
                "responses (enableCapture true, initialSamplingPercentage > 0, destinationS3Uri)",
                urn,
            )
        ]
    violations: list[Violation] = []
    if capture.get("enableCapture") not in (True, UNKNOWN):
        violations.append(
            Violation(
                f"{label} does not enable data capture: set dataCaptureConfig.enableCapture to "
                "true (the provider sends false when it is left out)",
                urn,
            )
        )
    sampling = capture.get("initialSamplingPercentage")
    if sampling is not UNKNOWN and not ((_number(sampling) or 0) > 0):
        violations.append(
            Violation(
                f"{label} captures no requests: dataCaptureConfig.initialSamplingPercentage is "
                f"{sampling!r}, it must be > 0",
                urn,
            )
        )
    return violations


def _rollback_violations(endpoint: Resource) -> list[Violation]:
    deployment = _inputs(endpoint).get("deploymentConfig")
    if deployment is UNKNOWN:
        return []
    rollback = (
        deployment.get("autoRollbackConfiguration") if isinstance(deployment, Mapping) else None
    )
    if rollback is UNKNOWN:
        return []
    alarms = rollback.get("alarms") if isinstance(rollback, Mapping) else None
    if alarms is UNKNOWN:
        return []
    named = [
        a
        for a in _as_list(alarms)
        if isinstance(a, Mapping)
        and (a.get("alarmName") is UNKNOWN or _known_str(a.get("alarmName")))
    ]
    if named:
        return []
    return [
        Violation(
            f"{_label(endpoint)} has no rollback alarms: prod updates must roll back on their "
            "own; set deploymentConfig.autoRollbackConfiguration.alarms to CloudWatch alarms "
            "on the endpoint's errors or latency",
            _urn(endpoint),
        )
    ]
