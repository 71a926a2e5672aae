"""The EndpointConfiguration's ``asyncInferenceConfig``, from the stack's ``async`` key.

Kept apart from :mod:`skdeploy.infra.serving` so that the configuration gains one argument and
the serving module stays about Model → EndpointConfiguration → Endpoint. The execution role's
grants for it (S3 writes on the result prefixes, SNS publish) are in :mod:`skdeploy.core.iam`.
"""

from __future__ import annotations

import pulumi_aws as aws

from skdeploy.core.settings import EndpointSettings


def async_config(
    settings: EndpointSettings,
) -> aws.sagemaker.EndpointConfigurationAsyncInferenceConfigArgs | None:
    """None without ``async``; else the output paths, topics and per-instance concurrency."""
    asynchronous = settings.async_inference
    if asynchronous is None:
        return None
    sm = aws.sagemaker
    topics = asynchronous.success_topic_arn or asynchronous.error_topic_arn
    notices = (
        sm.EndpointConfigurationAsyncInferenceConfigOutputConfigNotificationConfigArgs(
            success_topic=asynchronous.success_topic_arn,
            error_topic=asynchronous.error_topic_arn,
        )
        if topics
        else None
    )
    concurrency = asynchronous.max_concurrent_invocations_per_instance
    return sm.EndpointConfigurationAsyncInferenceConfigArgs(
        output_config=sm.EndpointConfigurationAsyncInferenceConfigOutputConfigArgs(
            s3_output_path=asynchronous.output_path,
            s3_failure_path=asynchronous.failure_path,
            kms_key_id=settings.kms_key_arn,
            notification_config=notices,
        ),
        client_config=None
        if concurrency is None
        else sm.EndpointConfigurationAsyncInferenceConfigClientConfigArgs(
            max_concurrent_invocations_per_instance=concurrency
        ),
    )
