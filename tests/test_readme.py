"""The README stays true: its settings table and outputs match the code."""

from __future__ import annotations

import re

from skdeploy.core.constants import STACK_OUTPUTS
from skdeploy.core.settings import SETTINGS
from tests.support import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def settings_table() -> str:
    """The settings table as the README must show it, written from core.settings.SETTINGS."""
    rows = [f"| `{s.key}` | {s.type} | {s.default} | {s.rule} |" for s in SETTINGS]
    return "\n".join(["| key | type | default | rule |", "|---|---|---|---|", *rows])


def test_the_settings_table_matches_the_code() -> None:
    """Every settings key, type, default and rule in the README is the one the code enforces."""
    match = re.search(
        r"<!-- settings-table:[^>]*-->\n(.*?)\n<!-- /settings-table -->", README, re.S
    )
    assert match, "settings table markers missing from README.md"
    assert match.group(1) == settings_table()


def test_every_stack_output_is_documented() -> None:
    """Each exported output key appears in the README's outputs table."""
    for key in STACK_OUTPUTS:
        assert f"| `{key}` |" in README, key
