"""The policies of the skdeploy pack: thin adapters from pulumi_policy's callbacks to ``rules``.

Building these objects has no side effect; only ``PolicyPack(...)`` (in ``__main__.py``) starts
the analyzer's gRPC server and blocks. So tests import :data:`POLICIES` and call each policy's
``validate`` with real ``ResourceValidationArgs``/``StackValidationArgs``.

The adapters turn pulumi_policy's property proxies into plain data first: a proxy raises
``UnknownValueError`` when a value is unknown during a preview, which would abort the whole rule;
plain data carries :data:`rules.UNKNOWN` instead and lets each rule decide (see ``rules``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

PACK_NAME = "skdeploy"
PACK_DESCRIPTION = (
    "skdeploy's guarantees for a SageMaker endpoint stack: private encrypted buckets, "
    "least-privilege IAM, and resilient prod endpoints."
)


def plain(value: Any) -> Any:
    """``value`` without pulumi_policy's proxies; values unknown in a preview become UNKNOWN."""
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key in value:
            try:
                result[key] = plain(value[key])
            except UnknownValueError:
                result[key] = rules.UNKNOWN
        return result
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items: list[Any] = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(rules.UNKNOWN)
        return items
    return value


def resource_of_args(args: ResourceValidationArgs) -> dict[str, Any]:
    """A resource validation's resource, as the plain mapping ``rules`` reads."""
    return {
        "type": args.resource_type,
        "name": args.name,
        "urn": args.urn,
        "inputs": plain(args.props),
    }


def resource_of_stack(resource: PolicyResource) -> dict[str, Any]:
    """One resource of a stack validation (its props are its outputs, a superset of inputs)."""
    props = plain(resource.props)
    return {
        "type": resource.resource_type,
        "name": resource.name,
        "urn": resource.urn,
        "inputs": props,
        "outputs": props,
        "property_dependencies": {
            key: [dependency.urn for dependency in deps]
            for key, deps in resource.property_dependencies.items()
        },
    }


def _report(violations: Iterable[rules.Violation], report_violation: ReportViolation) -> None:
    for violation in violations:
        report_violation(violation.message, violation.urn)


def resource_policy(
    name: str, description: str, rule: Callable[[rules.Resource], list[rules.Violation]]
) -> ResourceValidationPolicy:
    """A mandatory resource policy that reports what ``rule`` finds in each resource."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        _report(rule(resource_of_args(args)), report_violation)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def stack_policy(
    name: str,
    description: str,
    rule: Callable[[str, Sequence[rules.Resource]], list[rules.Violation]],
) -> StackValidationPolicy:
    """A mandatory stack policy; ``rule`` gets the stack name (from the URNs) and resources."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [resource_of_stack(r) for r in args.resources]
        urns = [r["urn"] for r in resources if r["urn"]]
        if not urns:
            return
        _report(rule(rules.stack_of_urn(urns[0]), resources), report_violation)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


POLICIES = [
    stack_policy(
        "s3-buckets-private-and-encrypted",
        "Every S3 bucket has a public access block with all four flags true and default "
        "server-side encryption (AES256 or KMS).",
        lambda _stack, resources: rules.check_buckets_private_and_encrypted(resources),
    ),
    resource_policy(
        "s3-no-public-acl",
        "No S3 bucket, bucket ACL or object grants access to the public.",
        rules.check_no_public_acl,
    ),
    resource_policy(
        "iam-least-privilege",
        "No *FullAccess or AdministratorAccess managed policies, no '*' or 'service:*' actions, "
        "and Resource '*' only in statements whose Sid is justified.",
        rules.check_iam_least_privilege,
    ),
    stack_policy(
        "prod-endpoint-resilient",
        "Prod stacks run at least two instances per variant (no serverless), capture data, "
        "and roll back updates on CloudWatch alarms.",
        rules.check_prod_endpoints,
    ),
]
