"""The SageMaker scikit-learn container releases skdeploy knows, one entry per framework version.

This table is the single source of truth for what runs inside each container: the Pulumi program
uses it to pick the image tag, the preflight checks compare a pickle's recorded scikit-learn
version against it, and the local runtime installs exactly these pins into a virtualenv of the
container's Python minor version. The figures come from the pinned ``requirements.txt`` of each
release of aws/sagemaker-scikit-learn-container (see ``shared/domain/sklearn-container.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The serving library every release runs (``sagemaker_containers.beta.framework``).
SAGEMAKER_CONTAINERS_PIN = "sagemaker-containers==2.8.6.post2"

#: The scikit-learn image repository in SageMaker's per-region registries.
IMAGE_REPOSITORY = "sagemaker-scikit-learn"


@dataclass(frozen=True)
class Framework:
    """One release of the SageMaker scikit-learn serving container.

    ``local_runtime`` says whether skdeploy can rebuild the container's environment in a
    virtualenv: the two oldest releases pin packages that do not import together as listed
    (Flask 1.1.1 pulls in Jinja2 3.1; pandas 1.1.3 has no wheels past Python 3.9 for 3.8-era
    builds), so serving them locally is refused with a reason instead of half-working.
    """

    version: str
    python: str
    scikit_learn: str
    numpy: str
    pandas: str
    scipy: str
    serving_pins: tuple[str, ...]
    local_runtime: bool
    refusal: str = ""
    extra_runtime_pins: tuple[str, ...] = field(default=())

    @property
    def image_tag(self) -> str:
        """The CPU image tag, e.g. ``1.2-1-cpu-py3``."""
        return f"{self.version}-cpu-py3"

    @property
    def sklearn_minor(self) -> str:
        """``major.minor`` of the pinned scikit-learn, what a pickle must match."""
        return ".".join(self.scikit_learn.split(".")[:2])

    @property
    def numpy_major(self) -> int:
        """Major version of the pinned numpy (a numpy-2 pickle fails on numpy 1)."""
        return int(self.numpy.split(".")[0])

    def runtime_requirements(self) -> list[str]:
        """Every pin the local runtime virtualenv installs, in ``pip`` requirement syntax."""
        scipy = self.scipy if self.scipy.startswith((">", "<", "=", "~")) else f"=={self.scipy}"
        return [
            f"scikit-learn=={self.scikit_learn}",
            f"numpy=={self.numpy}",
            f"pandas=={self.pandas}",
            f"scipy{scipy}",
            SAGEMAKER_CONTAINERS_PIN,
            *self.serving_pins,
            *self.extra_runtime_pins,
        ]


_OLD_SERVING = ("Flask==1.1.1", "Werkzeug==0.15.6", "gunicorn==20.0.4")

FRAMEWORKS: dict[str, Framework] = {
    f.version: f
    for f in (
        Framework(
            version="0.23-1",
            python="3.8",
            scikit_learn="0.23.2",
            numpy="1.19.2",
            pandas="1.1.3",
            scipy="1.5.3",
            serving_pins=_OLD_SERVING,
            local_runtime=False,
            refusal=(
                "its pins do not import together as listed (Flask 1.1.1 pulls in Jinja2 3.1, "
                "sagemaker-containers needs protobuf<4 which 0.23-1 does not pin)"
            ),
        ),
        Framework(
            version="1.0-1",
            python="3.8",
            scikit_learn="1.0.2",
            numpy="1.19.2",
            pandas="1.1.3",
            scipy="1.5.3",
            serving_pins=(*_OLD_SERVING, "protobuf==3.20.1"),
            local_runtime=False,
            refusal="its pins do not import together as listed (Flask 1.1.1 pulls in Jinja2 3.1)",
        ),
        Framework(
            version="1.2-1",
            python="3.9",
            scikit_learn="1.2.1",
            numpy="1.24.1",
            pandas="1.1.3",
            scipy="1.8.0",
            serving_pins=(
                "Flask==1.1.1",
                "itsdangerous==2.0.1",
                "Werkzeug==2.0.3",
                "jinja2==3.0.3",
                "MarkupSafe==2.1.1",
                "gunicorn==23.0.0",
                "gevent==23.9.1",
                "protobuf==3.20.2",
            ),
            local_runtime=True,
            # sagemaker-containers imports pkg_resources, which setuptools 70 dropped.
            extra_runtime_pins=("setuptools<70",),
        ),
        Framework(
            version="1.4-2",
            python="3.10",
            scikit_learn="1.4.2",
            numpy="2.1.0",
            pandas="2.3.2",
            scipy=">=1.9.0",
            serving_pins=(
                "Flask==1.1.1",
                "itsdangerous==2.0.1",
                "Werkzeug==2.0.3",
                "jinja2<3.0",
                "MarkupSafe<2.0",
                "gunicorn==23.0.0",
                "gevent==23.9.1",
                "protobuf==3.20.2",
            ),
            local_runtime=True,
            extra_runtime_pins=("setuptools<70",),
        ),
    )
}

DEFAULT_FRAMEWORK_VERSION = "1.2-1"


class UnknownFrameworkError(ValueError):
    """A framework version that is not in :data:`FRAMEWORKS`."""


def get_framework(version: str) -> Framework:
    """Return the table entry for ``version`` or raise, listing the supported versions."""
    try:
        return FRAMEWORKS[version]
    except KeyError:
        raise UnknownFrameworkError(
            f"unknown framework version {version!r}; supported: {', '.join(FRAMEWORKS)}"
        ) from None
