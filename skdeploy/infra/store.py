"""The artifact store: a private, encrypted, versioned, TLS-only bucket and the model artifacts.

Each artifact sits under its content address (``models/<sha256>/model.tar.gz``), so a new model
is a new object (and a new ``modelDataUrl``, which replaces the Model); old objects are kept
when newer ones replace them, for a rollback still reads its own.

A multi-model stack (``models``) uploads one artifact per model under one prefix
(``multi-models/<name>-<sha256>.tar.gz``, see :func:`~skdeploy.core.constants.target_model`): the
Model's ``modelDataUrl`` is the prefix, so a changed model replaces only its own object.

A stack pinned to an earlier artifact (``artifactSha256``, written by ``skdeploy rollback``)
builds nothing and uploads nothing: its artifact is the object already under that sha's key, and
the store declares no object for it (the one it held leaves the state, and stays in S3).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pulumi
import pulumi_aws as aws

from skdeploy.core import iam
from skdeploy.core.artifact import Artifact, build_artifact, build_for_settings
from skdeploy.core.constants import (
    ARTIFACT_PREFIX,
    BUILD_DIR,
    DEFAULT_VARIANT,
    MULTI_MODEL_PREFIX,
    artifact_key,
    target_model,
)
from skdeploy.core.settings import EndpointSettings, VariantSettings
from skdeploy.infra.naming import Naming, moved_from

ARTIFACT_STORE_TYPE = "skdeploy:index:ArtifactStore"


def build_artifacts(settings: EndpointSettings) -> dict[str, Artifact]:
    """Variant name → its artifact, built (or reused from the cache) before anything is declared.

    The single default variant is the stack's own artifact (:func:`build_for_settings`), or,
    under a pin, the artifact already in the bucket (:func:`pinned_artifact`).
    """
    if settings.artifact_sha256 is not None:
        return {DEFAULT_VARIANT: pinned_artifact(settings.artifact_sha256)}
    if settings.multi_model:
        return {name: build_for_settings(view) for name, view in settings.model_views}
    variants = (*settings.production_variants, *([settings.shadow] if settings.shadow else []))
    single = not settings.variants
    built: dict[str, Artifact] = {}
    for variant in variants:
        if single and variant.name == DEFAULT_VARIANT:
            built[variant.name] = build_for_settings(settings)
        else:
            built[variant.name] = build_artifact(
                variant.model_dir,
                variant.inference_dir,
                variant.model_files,
                settings.project_dir / BUILD_DIR,
                project_dir=settings.project_dir,
            )
    return built


def stack_sha256(settings: EndpointSettings, artifacts: Mapping[str, Artifact]) -> str:
    """The sha256 the stack's tags and ``artifactSha256`` output carry: its served artifact's, or,
    for a multi-model stack, the digest of its ``name=sha256`` lines (one address for the set)."""
    if not settings.multi_model:
        return artifacts[settings.production_variants[0].name].sha256
    lines = "".join(f"{m.name}={artifacts[m.name].sha256}\n" for m in settings.models)
    return hashlib.sha256(lines.encode()).hexdigest()


def pinned_artifact(sha256: str) -> Artifact:
    """An artifact already uploaded: its ``path`` is its S3 key, never read (nothing is built)."""
    return Artifact(path=Path(artifact_key(sha256)), sha256=sha256, bytes=0, members=())


class ArtifactStore(pulumi.ComponentResource):
    """The bucket and one object per distinct artifact (variants with equal inputs share one)."""

    bucket: aws.s3.Bucket
    #: Variant name → the S3 object of its artifact (none for a pinned artifact: it exists).
    objects: dict[str, aws.s3.BucketObjectv2]

    def __init__(
        self,
        naming: Naming,
        settings: EndpointSettings,
        artifacts: Mapping[str, Artifact],
        variants: Sequence[VariantSettings],
        tags: Mapping[str, str],
        *,
        old_parent: pulumi.Resource,
    ) -> None:
        super().__init__(
            ARTIFACT_STORE_TYPE,
            naming("artifact-store"),
            None,
            pulumi.ResourceOptions(parent=old_parent),
        )
        self._old_parent = old_parent
        self.bucket = aws.s3.Bucket(
            naming("artifacts"),
            force_destroy=False,
            tags=dict(tags),
            opts=self._moved(
                pulumi.ResourceOptions(protect=settings.protect, retain_on_delete=settings.protect)
            ),
        )
        guards = self._bucket_guards(naming, settings.kms_key_arn)
        self.multi_model = settings.multi_model
        if self.multi_model:
            self._model_objects(naming, settings, artifacts, tags, guards)
        else:
            self._variant_objects(naming, settings, artifacts, variants, tags, guards)
        # The whole content-addressed prefix: during an update or a rollback the running
        # configuration still downloads its own (older) artifact.
        prefix = MULTI_MODEL_PREFIX if self.multi_model else ARTIFACT_PREFIX
        self.prefix_arn = pulumi.Output.concat(self.bucket.arn, "/", prefix, "*")
        self.register_outputs({"bucket": self.bucket.bucket, "prefixArn": self.prefix_arn})

    def _variant_objects(
        self,
        naming: Naming,
        settings: EndpointSettings,
        artifacts: Mapping[str, Artifact],
        variants: Sequence[VariantSettings],
        tags: Mapping[str, str],
        guards: list[pulumi.Resource],
    ) -> None:
        """One object per distinct variant artifact, none for a pinned one."""
        self.keys = {v.name: artifact_key(artifacts[v.name].sha256) for v in variants}
        by_key: dict[str, aws.s3.BucketObjectv2] = {}
        pinned = {artifact_key(settings.artifact_sha256)} if settings.artifact_sha256 else set()
        for variant in variants:
            key = self.keys[variant.name]
            if key not in by_key and key not in pinned:
                by_key[key] = self._object(
                    naming.of(variant, "artifact"), key, artifacts[variant.name], tags, guards
                )
        self.objects = {
            v.name: by_key[self.keys[v.name]] for v in variants if self.keys[v.name] in by_key
        }

    def _model_objects(
        self,
        naming: Naming,
        settings: EndpointSettings,
        artifacts: Mapping[str, Artifact],
        tags: Mapping[str, str],
        guards: list[pulumi.Resource],
    ) -> None:
        """One object per model of a multi-model endpoint, under the common prefix."""
        self.keys = {
            m.name: MULTI_MODEL_PREFIX + target_model(m.name, artifacts[m.name].sha256)
            for m in settings.models
        }
        self.objects = {
            m.name: self._object(
                naming(f"model-{m.name.lower()}-artifact"),
                self.keys[m.name],
                artifacts[m.name],
                tags,
                guards,
            )
            for m in settings.models
        }

    def _object(
        self,
        name: str,
        key: str,
        artifact: Artifact,
        tags: Mapping[str, str],
        guards: list[pulumi.Resource],
    ) -> aws.s3.BucketObjectv2:
        return aws.s3.BucketObjectv2(
            name,
            bucket=self.bucket.id,
            key=key,
            source=pulumi.FileAsset(str(artifact.path)),
            content_type="application/gzip",
            tags=dict(tags),
            opts=self._moved(pulumi.ResourceOptions(retain_on_delete=True, depends_on=guards)),
        )

    def _moved(self, opts: pulumi.ResourceOptions | None = None) -> pulumi.ResourceOptions:
        return moved_from(self._old_parent, self, opts)

    def model_data_url(self, variant: str) -> pulumi.Output[str]:
        """``s3://bucket/key`` of a variant's artifact; a multi-model endpoint's common prefix."""
        if self.multi_model:
            return pulumi.Output.concat("s3://", self.bucket.bucket, "/", MULTI_MODEL_PREFIX)
        return pulumi.Output.concat("s3://", self.bucket.bucket, "/", self.keys[variant])

    def _bucket_guards(self, naming: Naming, kms_key_arn: str | None) -> list[pulumi.Resource]:
        """Public access blocked, owner-enforced, encrypted, versioned, TLS only."""
        bucket = self.bucket
        public_block = aws.s3.BucketPublicAccessBlock(
            naming("artifacts-public-access"),
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._moved(),
        )
        ownership = aws.s3.BucketOwnershipControls(
            naming("artifacts-ownership"),
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=self._moved(),
        )
        s3 = aws.s3
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            naming("artifacts-encryption"),
            bucket=bucket.id,
            rules=[
                s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms" if kms_key_arn else "AES256",
                        kms_master_key_id=kms_key_arn,
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=self._moved(),
        )
        versioning = aws.s3.BucketVersioning(
            naming("artifacts-versioning"),
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=self._moved(),
        )
        bucket_policy = aws.s3.BucketPolicy(
            naming("artifacts-tls-only"),
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(iam.tls_only_bucket_policy(arn))),
            opts=self._moved(pulumi.ResourceOptions(depends_on=[public_block])),
        )
        return [encryption, versioning, ownership, public_block, bucket_policy]
