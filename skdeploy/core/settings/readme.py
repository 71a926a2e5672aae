"""The README's settings table, written from the schema; run as a module to rewrite README.md.

``python -m skdeploy.core.settings.readme [README.md]`` replaces the table between the
``<!-- settings-table ... -->`` markers (tests/test_readme.py fails, and says so, when it is
stale).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Final

from skdeploy.core.settings.schema import SETTINGS

#: The command that rewrites the table, as a failing test tells it.
REGENERATE: Final = "build/uv/bin/uv run --frozen python -m skdeploy.core.settings.readme"
_TABLE = re.compile(r"(<!-- settings-table:[^>]*-->\n)(.*?)(\n<!-- /settings-table -->)", re.S)


def settings_table() -> str:
    """The Markdown table of every ``skdeploy:`` key: key, type, default, rule."""
    rows = [f"| `{s.key}` | {s.type} | {s.default} | {s.rule} |" for s in SETTINGS]
    return "\n".join(["| key | type | default | rule |", "|---|---|---|---|", *rows])


def with_settings_table(readme: str) -> str:
    """``readme`` with the table between its markers replaced by :func:`settings_table`."""
    if _TABLE.search(readme) is None:
        raise ValueError("settings table markers missing from README.md")
    return _TABLE.sub(lambda m: m.group(1) + settings_table() + m.group(3), readme, count=1)


def main(argv: list[str]) -> int:
    """Rewrite the settings table of the README named in ``argv`` (``README.md`` by default)."""
    path = Path(argv[0] if argv else "README.md")
    text = path.read_text(encoding="utf-8")
    updated = with_settings_table(text)
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    print(f"{path}: settings table {'rewritten' if updated != text else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
