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
  (:func:`skdeploy.core.pickle.policy.global_refusal`).

The admitted classes are listed by ``skdeploy check``, and the stack's Model carries the tag
``skdeploy:trusted-modules`` so a plan diff shows a change of trust to the reviewer.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from skdeploy.core.constants import CONTAINER_MODULES, PACKAGE_INIT, PROGRAM, WIRE_MODULE

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
#: shadow it), with the handler module and the wire format it imports. The standard library's
#: names are added from the running interpreter.
PROTECTED_MODULES = CONTAINER_MODULES | frozenset(
    {
        "sagemaker_sklearn_container",
        "skdeploy",
        "__main__",
        "builtins",
        Path(PROGRAM).stem,
        WIRE_MODULE,
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
            f"container's serving stack or the handler modules ({Path(PROGRAM).stem}, "
            f"{WIRE_MODULE}): only the user's own modules can be trusted"
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


def _module_scope_bindings(tree: ast.Module) -> set[str]:
    """Names the module binds other than by its top-level ``class`` statements.

    Assignments, imports, ``def``, loop and ``with`` targets and the like at module scope
    (branches included), and every name a function or class body declares ``global``: any of
    these can rebind a class's name to something else (``Foo = os.system``).
    """
    bound: set[str] = set()
    pending: list[ast.AST] = [n for n in tree.body if not isinstance(n, ast.ClassDef)]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Global):
            bound.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
            # Their bodies are scopes of their own, except for what they declare global.
            pending.extend(n for n in ast.walk(node) if isinstance(n, ast.Global))
            pending.extend(node.decorator_list)
            continue
        elif isinstance(node, ast.Lambda):
            continue
        pending.extend(ast.iter_child_nodes(node))
    for node in tree.body:  # what a class body declares global escapes it
        if isinstance(node, ast.ClassDef):
            bound.update(
                name for n in ast.walk(node) if isinstance(n, ast.Global) for name in n.names
            )
    return bound


#: Calls and names through which a module can bind any name at run time; a module using one
#: cannot have its classes told from other objects by reading it.
_DYNAMIC_BINDERS = frozenset({"globals", "vars", "exec", "eval", "__import__", "setattr"})


def dynamic_binding(tree: ast.Module) -> str | None:
    """Where the module may bind names that reading it cannot see, or None.

    A star import; a call of ``globals``, ``vars``, ``exec``, ``eval`` or ``__import__``; a
    ``setattr`` on anything but ``self`` or ``cls``; ``sys.modules``; or an assignment to an
    attribute of an imported module (``me.AddRatio = ...`` after ``import my_features as me``).
    """
    imported = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.alias) and node.name == "*":
            return f"a star import (line {line})"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            on_self = bool(node.args) and (
                isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls")
            )
            if name in _DYNAMIC_BINDERS and not (name == "setattr" and on_self):
                return f"{name}() (line {line})"
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (
                (node.value.id == "sys" and node.attr == "modules")
                or (isinstance(node.ctx, ast.Store | ast.Del) and node.value.id in imported)
            )
        ):
            return f"{node.value.id}.{node.attr} (line {line})"
    return None


#: Class decorators known to return the class they are given; any other decorator may bind the
#: name to something else (``@(lambda c: os.system)``), so its class is not admitted.
_CLASS_PRESERVING_DECORATORS = frozenset({"dataclass", "dataclasses.dataclass"})


def _keeps_the_class(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return ast.unparse(target) in _CLASS_PRESERVING_DECORATORS


def top_level_classes(tree: ast.Module) -> frozenset[str]:
    """Names bound by ``class`` statements in the module body, and by nothing else.

    A class inside a branch or a function, a name that some other statement may rebind
    (``Foo = os.system`` after ``class Foo``, or ``global Foo`` in a function), or a class under
    a decorator other than ``dataclass`` (which may return anything) is not one.
    """
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    decorated = {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef) and not all(map(_keeps_the_class, node.decorator_list))
    }
    return frozenset(classes - decorated - _module_scope_bindings(tree))


def resolve_trusted(
    inference_dir: Path,
    names: Iterable[str],
    shipped: Iterable[str],
    *,
    python: tuple[int, int],
) -> tuple[TrustedClasses, list[str]]:
    """The classes ``names`` admit, read from the files that ship; and every problem found.

    ``shipped`` lists the names below ``code/`` that the artifact carries
    (:func:`skdeploy.core.artifact.handler_files`); ``python`` is the container's ``major.minor``,
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
            dynamic = dynamic_binding(tree)
            if dynamic is not None:
                problems.append(
                    f"trustedModules: {module} ({archived}) uses {dynamic}, through which it can "
                    "bind any name at run time, so its classes cannot be told from functions by "
                    "reading it: move the classes the model needs into a module without it"
                )
                continue
            classes[module] = top_level_classes(tree)
            files[module] = archived
    return TrustedClasses(classes, files), problems
