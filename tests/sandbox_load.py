"""Load pickle files with the real ``joblib.load`` under audit hooks, and report what they did.

Run as a script (``python tests/sandbox_load.py FILE...``), never imported by the tool itself. For
each file it prints one JSON line: the globals the unpickler looked up (``pickle.find_class``
audit events, in order), the forbidden effects it tried (each blocked: the hook raises before the
effect happens), and how the load ended. The differential tests compare that against what the
static inspector reported for the same file.

Forbidden: starting a process (``os.system``, ``os.exec*``, ``os.spawn*``, ``os.posix_spawn``,
``os.fork``, ``subprocess.Popen``), opening any file that is not Python code being imported (the
model is read from an already-open file, so ``joblib.load`` itself opens nothing), changing the
file system (``os.remove``, ``os.rename``, ``os.mkdir``, ...), network use, ``ctypes``, and
importing a module that starts processes, opens connections or runs code.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

#: Standard-library modules that nothing in an accepted model should import while loading.
FORBIDDEN_STDLIB = frozenset(
    {
        "subprocess",
        "socket",
        "ctypes",
        "pty",
        "webbrowser",
        "http",
        "urllib",
        "ftplib",
        "smtplib",
        "runpy",
        "code",
        "pdb",
        "multiprocessing",
        "shutil",
        "tempfile",
        "pickletools",
        "antigravity",
        "this",
    }
)

_PROCESS_EVENTS = ("os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork")
_PROCESS_EVENTS += ("subprocess.Popen", "os.kill", "os.killpg", "pty.spawn")
_FS_EVENTS = ("os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.chown")
_FS_EVENTS += ("os.truncate", "os.link", "os.symlink", "os.utime", "shutil.")
_NET_EVENTS = ("socket.", "urllib.Request", "http.client.")
_CODE_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".pth")


class Blocked(Exception):
    """Raised by the hook: the effect did not happen."""


class _State:
    armed = False
    globals: list[list[str]] = []  # noqa: RUF012 - reset per file
    forbidden: list[str] = []  # noqa: RUF012


def _forbidden_import(module: str) -> bool:
    """Imports no model load needs. (The libraries' own lazy imports of their dependencies are
    allowed: which modules a pickle makes the unpickler look up is checked through the
    ``pickle.find_class`` events instead.)"""
    return module.split(".")[0] in FORBIDDEN_STDLIB


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _State.armed:
        return
    if event == "pickle.find_class":
        _State.globals.append([str(args[0]), str(args[1])])
        return
    problem = None
    if event.startswith(_PROCESS_EVENTS):
        problem = f"{event}: starts a process"
    elif event.startswith(_FS_EVENTS):
        problem = f"{event}: changes the file system"
    elif event.startswith(_NET_EVENTS):
        problem = f"{event}: uses the network"
    elif event.startswith("ctypes."):
        problem = f"{event}: native code"
    elif event == "open":
        path, mode = str(args[0]), str(args[1])
        writing = any(flag in mode for flag in "wax+")
        if writing or not path.endswith(_CODE_SUFFIXES):
            problem = f"open({path!r}, {mode!r}): touches a file"
    elif event == "import" and _forbidden_import(str(args[0])):
        problem = f"import {args[0]}: a module no model load needs"
    if problem is not None:
        _State.forbidden.append(problem)
        raise Blocked(problem)


def load_one(path: str) -> dict[str, Any]:
    """Load ``path`` with joblib.load from an open file, under the armed hook."""
    import joblib  # imported before arming: its own imports are not the model's doing

    with open(path, "rb") as handle:
        data = handle.read()
    _State.globals, _State.forbidden = [], []
    outcome = "loaded"
    _State.armed = True
    try:
        joblib.load(io.BytesIO(data))
    except Blocked:
        outcome = "blocked"
    except BaseException as exc:  # any failure of a hostile file is an outcome
        outcome = f"failed: {type(exc).__name__}"
    finally:
        _State.armed = False
    return {
        "file": path,
        "outcome": outcome,
        "globals": _State.globals,
        "forbidden": _State.forbidden,
    }


def main(paths: list[str]) -> None:
    # The libraries a model uses are imported up front, so the hook sees the model's doing only.
    import joblib  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import scipy.sparse  # noqa: F401
    import sklearn  # noqa: F401

    sys.addaudithook(_hook)
    for path in paths:
        print(json.dumps(load_one(path)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
