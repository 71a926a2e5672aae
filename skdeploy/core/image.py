"""Which container image serves the model: SageMaker's prebuilt scikit-learn image for the
framework version and region, or the stack's ``imageUri`` override.

The program resolves the prebuilt image with the provider's ``getPrebuiltEcrImage`` data source
(computed by the provider from its own registry table, no AWS call). CDK's ``fromDlc`` uses the
deep-learning-containers account, which is wrong for scikit-learn; the provider's table is right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from skdeploy.core.frameworks import IMAGE_REPOSITORY, Framework

#: Registry account of the scikit-learn image per region, from sagemaker-python-sdk's
#: ``image_uri_config/sklearn.json``. Used offline (the plan, the tests' provider mock) where the
#: provider's data source cannot run; the deployed program always asks the provider.
REGISTRY_ACCOUNTS: dict[str, str] = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-2": "246618743249",
    "eu-west-1": "141502667606",
    "eu-central-1": "492215442770",
    "ap-northeast-1": "354813040037",
}

_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::[^@]+|@sha256:[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class ImageRef:
    """The parts of an ECR image URI that IAM needs to allow pulling it."""

    account: str
    region: str
    repository: str

    def repository_arn(self, partition: str = "aws") -> str:
        """ARN of the ECR repository, for the execution role's pull permissions."""
        return f"arn:{partition}:ecr:{self.region}:{self.account}:repository/{self.repository}"


def parse_image_uri(uri: str) -> ImageRef:
    """Split an ECR image URI; raises ValueError for anything that is not one."""
    match = _IMAGE.match(uri)
    if match is None:
        raise ValueError(f"not an ECR image URI: {uri!r}")
    return ImageRef(match["account"], match["region"], match["repository"])


def prebuilt_image_uri(framework: Framework, region: str) -> str:
    """The prebuilt image URI from the offline table (plan, mocks); KeyError for other regions."""
    account = REGISTRY_ACCOUNTS[region]
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{IMAGE_REPOSITORY}:{framework.image_tag}"
