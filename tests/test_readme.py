"""The README stays true: its settings table and outputs match the code."""

from __future__ import annotations

import pytest

from skdeploy.core.constants import STACK_OUTPUTS
from skdeploy.core.settings.readme import REGENERATE, settings_table, with_settings_table
from tests.support import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_settings_table_matches_the_code() -> None:
    """Every settings key, type, default and rule in the README is the one the schema declares."""
    assert with_settings_table(README) == README, (
        f"README.md's settings table differs from skdeploy/core/settings/schema.py: "
        f"regenerate it with `{REGENERATE}`"
    )


def test_the_table_is_written_from_the_schema() -> None:
    """A stale table is found: the check does not pass whatever the README says."""
    stale = README.replace(
        "| `instanceCount` | integer | `1` |", "| `instanceCount` | integer | `2` |"
    )
    assert stale != README
    assert with_settings_table(stale) == README
    assert "| `instanceCount` | integer | `1` | 1 to 100 instances |" in settings_table()


def test_a_readme_without_markers_is_refused() -> None:
    """Without its markers the table cannot be found, and saying so beats passing silently."""
    with pytest.raises(ValueError, match="markers missing"):
        with_settings_table("# a README\n")


def test_every_stack_output_is_documented() -> None:
    """Each exported output key appears in the README's outputs table."""
    for key in STACK_OUTPUTS:
        assert f"| `{key}` |" in README, key
