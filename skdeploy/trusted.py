"""``skdeploy:trustedModules``: the user's own modules whose classes a model's pickle may name.

A Pipeline with a custom transformer (``my_features.AddRatio``) pickles a reference to that
class, which the pickle allow-list refuses: it admits only the libraries' classes. A stack can
name modules it ships itself in the handler folder (``inference/my_features.py``, or a package
``inference/featurelib/`` with ``__init__.py``); they ship in the artifact's ``code/``, where the
container imports them. What that admits is kept small and visible:

- only modules that ship in the artifact: a name with no file in the handler folder is an error;
  naming a package admits its shipped sub-modules too;
- only **classes defined at the top level** of those files (``class AddRatio(...)``), read from
  the source with :mod:`ast`, never imported here. A function, an imported name
  (``from os import system``) or an attribute of the module stays refused: those are how a
  pickle runs code;
- names that would shadow the standard library, the container's packages or skdeploy's handler
  module cannot be trusted;
- the libraries' own names and the known gadgets are still decided by the allow-list first
  (:func:`skdeploy.pickle_policy.global_refusal`).

The admitted classes are listed by ``skdeploy check``, and the stack's Model carries the tag
``skdeploy:trusted-modules`` so a plan diff shows a change of trust to the reviewer.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from skdeploy.constants import PACKAGE_INIT, PROGRAM

__all__ = [
    "PROTECTED_MODULES",
    "TRUSTED_TAG",
    "TrustedClasses",
    "module_name_problem",
    "resolve_trusted",
]

#: The Model resource's tag naming the trusted modules (space-separated; tags allow no commas).
TRUSTED_TAG = "skdeploy:trusted-modules"

#: Top-level names a trusted module may not have: the libraries whose classes the allow-list
#: decides, and what the container itself imports (a module of that name in ``code/`` would
#: shadow it). The standard library's names are added from the running interpreter.
PROTECTED_MODULES = frozenset(
    {
        "sklearn",
        "numpy",
        "scipy",
        "pandas",
        "joblib",
        "threadpoolctl",
        "sagemaker_containers",
        "sagemaker_sklearn_container",
        "flask",
        "werkzeug",
        "gunicorn",
        "gevent",
        "boto3",
        "botocore",
        "google",
        "six",
        "skdeploy",
        "__main__",
        "builtins",
        Path(PROGRAM).stem,
    }
)


def module_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a trusted module name, or None (syntax only; no file is read)."""
    if not isinstance(name, str) or not name:
        return "must be a module name such as my_features or featurelib.text"
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return f"{name!r} is not a dotted Python module name"
    top = parts[0]
    if top in PROTECTED_MODULES or top in sys.stdlib_module_names:
        return (
            f"{name!r} names the standard library, a library the allow-list decides, the "
            "container's serving stack or the handler module itself: only the user's own "
            "modules can be trusted"
        )
    return None


@dataclass(frozen=True)
class TrustedClasses:
    """The classes a pickle may name beyond the allow-list, by module.

    ``classes`` maps each shipped module (dotted name) to the classes defined at its top
    level; ``files`` maps it to its file under ``code/``.
    """

    classes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.classes)

    def summary(self) -> list[str]:
        """One line per module: its file and the classes it admits."""
        return [
            f"{module} (code/{self.files[module]}): "
            + (", ".join(sorted(names)) if names else "no classes")
            for module, names in sorted(self.classes.items())
        ]


def _module_file(inference_dir: Path, dotted: str) -> tuple[Path, str] | None:
    """The shipped file of ``dotted`` (a module or package) and its name below ``code/``."""
    parts = dotted.split(".")
    folder = inference_dir.joinpath(*parts[:-1])
    # Every enclosing folder must be a package, or the folder does not ship.
    for depth in range(1, len(parts)):
        if not (inference_dir.joinpath(*parts[:depth]) / PACKAGE_INIT).is_file():
            return None
    package = folder / parts[-1] / PACKAGE_INIT
    if package.is_file():
        return package, "/".join([*parts, PACKAGE_INIT])
    module = folder / f"{parts[-1]}.py"
    if module.is_file():
        return module, "/".join([*parts[:-1], module.name])
    return None


def _submodules(dotted: str, shipped: Iterable[str]) -> list[str]:
    """``dotted`` and every shipped module below it (for a package), as dotted names."""
    prefix = dotted.replace(".", "/") + "/"
    found = {dotted}
    for name in shipped:
        if name.startswith(prefix) and name.endswith(".py"):
            parts = name[: -len(".py")].split("/")
            if parts[-1] == PACKAGE_INIT[: -len(".py")]:
                parts.pop()
            found.add(".".join(parts))
    return sorted(found)


def top_level_classes(tree: ast.Module) -> frozenset[str]:
    """Names bound by ``class`` statements in the module body (not in functions or branches)."""
    return frozenset(node.name for node in tree.body if isinstance(node, ast.ClassDef))


def resolve_trusted(
    inference_dir: Path,
    names: Iterable[str],
    shipped: Iterable[str],
    *,
    python: tuple[int, int],
) -> tuple[TrustedClasses, list[str]]:
    """The classes ``names`` admit, read from the files that ship; and every problem found.

    ``shipped`` lists the names below ``code/`` that the artifact carries
    (:func:`skdeploy.artifact.handler_files`); ``python`` is the container's ``major.minor``,
    which the sources must parse under.
    """
    shipped = sorted(shipped)
    classes: dict[str, frozenset[str]] = {}
    files: dict[str, str] = {}
    problems: list[str] = []
    for name in names:
        where = _module_file(inference_dir, name)
        if where is None or where[1] not in shipped:
            problems.append(
                f"trustedModules: {name} does not ship in the artifact's code/: put it in "
                f"{inference_dir.name}/{name.replace('.', '/')}.py, or make it a package "
                f"({inference_dir.name}/{name.replace('.', '/')}/{PACKAGE_INIT})"
            )
            continue
        is_package = where[1].endswith("/" + PACKAGE_INIT)
        for module in _submodules(name, shipped if is_package else ()):
            found = _module_file(inference_dir, module)
            if found is None:
                continue
            path, archived = found
            try:
                tree = ast.parse(
                    path.read_text(encoding="utf-8"), filename=str(path), feature_version=python
                )
            except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
                problems.append(
                    f"trustedModules: {module} ({archived}) cannot be read under Python "
                    f"{python[0]}.{python[1]}: {exc}"
                )
                continue
            classes[module] = top_level_classes(tree)
            files[module] = archived
    return TrustedClasses(classes, files), problems
