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
class SourcePatch:
    """A text replacement the image's Dockerfile makes in an installed module (like ``sed``).

    ``module`` is a dotted module name of a plain ``.py`` file; every occurrence of ``old``
    becomes ``new``. The local runtime makes the same edit after installing, so that what
    imports there imports in the container, and no more.
    """

    module: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class Framework:
    """One release of the SageMaker scikit-learn serving container.

    ``local_runtime`` says whether skdeploy can rebuild the container's environment in a
    virtualenv; when it cannot, ``refusal`` says why, and serving locally is refused with that
    reason instead of half-working.

    ``serving_pins`` are the container's own pins. ``extra_runtime_pins`` are what the local
    runtime needs on top so that those pins import together, as they do in the image: what pip
    installed there when the image was built (the release's ``requirements.txt`` where it says,
    bounds where it does not), never a different version of a listed pin.
    ``source_patches`` are the edits the image's Dockerfile makes to installed modules.
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
    source_patches: tuple[SourcePatch, ...] = field(default=())

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

#: sagemaker-containers imports ``pkg_resources``, which setuptools 70 dropped.
_SETUPTOOLS = "setuptools<70"

#: Flask 1.1.1 imports ``jinja2.escape`` and ``itsdangerous.json``; Jinja2 3.1 and itsdangerous
#: 2.1 removed them, and MarkupSafe 2.1 removed ``soft_unicode``. The releases that pin only Flask
#: got the versions of their day; these bounds select the newest that still import.
_FLASK_1_1_ERA = ("jinja2<3.1", "itsdangerous<2.1", "MarkupSafe<2.1")

#: sagemaker-containers' generated protobuf modules fail under protobuf 4 ("Descriptors cannot be
#: created directly").
_PROTOBUF_3 = "protobuf<4"

#: The 1.4-2 image's Dockerfile (``docker/1.4-2/final/Dockerfile.cpu``) rewrites this line with
#: ``sed``: Python 3.10 removed ``collections.Mapping``, and sagemaker-containers 2.8.6 subclasses
#: it, so without the edit ``sagemaker_containers.beta.framework`` does not import at all.
_MAPPING_PATCH = SourcePatch(
    module="sagemaker_containers._mapping",
    old="collections.Mapping",
    new="collections.abc.Mapping",
    reason="Python 3.10 removed collections.Mapping (the image makes the same edit)",
)

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
            local_runtime=True,
            extra_runtime_pins=(
                *_FLASK_1_1_ERA,
                _PROTOBUF_3,
                # The 0.23-1 requirements.txt pins this pair; left open, the resolver may
                # backtrack sagemaker-containers' unpinned boto3 to an ancient release.
                "boto3==1.14.62",
                "botocore==1.17.62",
                _SETUPTOOLS,
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
            local_runtime=True,
            # All from the 1.0-1 requirements.txt, which pins them for the same reasons.
            extra_runtime_pins=(
                "jinja2==3.0.3",
                "MarkupSafe==2.1.1",
                "itsdangerous==2.0.1",
                "boto3==1.16.4",
                "botocore==1.19.4",
                _SETUPTOOLS,
            ),
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
            extra_runtime_pins=(_SETUPTOOLS,),
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
            extra_runtime_pins=(
                # sagemaker-containers needs boto3 and pins none; left open, the resolver
                # backtracks to boto3 0.0.3 / botocore 0.76, whose vendored requests imports
                # collections.MutableMapping (gone in Python 3.10). The image's own pin is not
                # published; botocore 1.36 is what its issue #233 asks for (the image's awscli
                # needs it), supports Python 3.10 and urllib3 2, and takes pandas 2.3's
                # python-dateutil 2.9. Bounds, not ==, as this is not a pin of the image.
                "boto3>=1.36.0,<1.37",
                "botocore>=1.36.0,<1.37",
                _SETUPTOOLS,
            ),
            source_patches=(_MAPPING_PATCH,),
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
