"""Stack files are untrusted input: odd shapes, YAML tricks, unknown instance types and a prod
stack without its guardrails get one clear refusal, never a traceback, a hang or a silent pick.

Each behaviour is checked through both entry points a stack file reaches: ``load_stack_settings``
(the Pulumi program's mocks, ``serve``, ``smoke``, ``plan``) and ``python -m skdeploy check
--static`` (what CI and users run), on a throwaway copy of the project.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skdeploy.core import settings as settings_module
from skdeploy.core.pickle.inspect import InspectionLimits
from skdeploy.core.settings import SETTINGS, SettingsError, load_stack_settings
from tests.support import REPO, copy_project
from tests.test_settings import documented_defaults

#: A valid, non-prod stack's keys, to which each test adds the one thing it is about.
BASE = "config:\n  aws:region: eu-west-1\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


def write_stack(project: Path, stack: str, text: str) -> None:
    (project / "stacks" / f"Pulumi.{stack}.yaml").write_text(textwrap.dedent(text))


def refusal(project: Path, stack: str) -> str:
    """The SettingsError message ``load_stack_settings`` raises for ``stack``."""
    with pytest.raises(SettingsError) as caught:
        load_stack_settings(project, stack)
    return str(caught.value)


def cap_memory() -> None:
    """In a child process: at most 2 GiB of address space, so that a regression cannot take the
    test machine down with it."""
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))


def check_static(
    project: Path, stack: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m skdeploy check --static -s STACK`` on ``project``."""
    return subprocess.run(
        [sys.executable, "-m", "skdeploy", "check", "--static", "-s", stack],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        preexec_fn=cap_memory,
    )


def assert_cli_refuses(project: Path, stack: str, *fragments: str) -> str:
    """The CLI fails the check (exit 1) with the fragments in its output and no traceback."""
    done = check_static(project, stack)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, output
    return output


# --- Finding 9: the shape of `config:` ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [("[a, b]", "a list"), ("just text", "a string"), ("42", "a number"), ("false", "a boolean")],
)
def test_a_config_section_that_is_not_a_map_is_refused(
    project: Path, value: str, shown: str
) -> None:
    """``config:`` as a list, string, number or boolean is named, not an AttributeError."""
    write_stack(project, "odd", f"config: {value}\n")
    message = refusal(project, "odd")
    assert "config: must be a map of keys to values" in message
    assert shown in message
    assert_cli_refuses(project, "odd", "config: must be a map of keys to values", shown)


def test_a_null_config_section_is_an_empty_one(project: Path) -> None:
    """``config:`` with nothing under it means no settings: only the missing region is named."""
    write_stack(project, "empty", "config:\n")
    message = refusal(project, "empty")
    assert "1 invalid setting(s)" in message
    assert "aws:region" in message
    assert_cli_refuses(project, "empty", "aws:region")


def test_a_project_file_config_that_is_not_a_map_is_refused(project: Path) -> None:
    """Pulumi.yaml's ``config:`` as a list is refused with the file named."""
    pulumi_yaml = project / "Pulumi.yaml"
    pulumi_yaml.write_text(pulumi_yaml.read_text() + "config:\n  - instanceType\n")
    message = refusal(project, "staging")
    assert "Pulumi.yaml" in message
    assert "config: must be a map of keys to values" in message
    assert_cli_refuses(project, "staging", "Pulumi.yaml", "a list")


def test_config_keys_that_are_not_strings_are_refused(project: Path) -> None:
    """``1: x`` under ``config:`` names the key instead of failing on ``str`` methods."""
    write_stack(project, "numkey", BASE + "  1: x\n  null: y\n")
    message = refusal(project, "numkey")
    assert "config key 1 must be a string" in message
    assert "config key None must be a string" in message
    assert_cli_refuses(project, "numkey", "config key 1 must be a string")


def test_map_settings_with_mixed_key_types_are_refused_not_crashed(project: Path) -> None:
    """Unknown members of mixed key types (int and str) are listed, not sorted into a TypeError."""
    write_stack(project, "mixed", BASE + "  skdeploy:autoscaling: {1: 2, foo: 3, min: 1, max: 2}\n")
    message = refusal(project, "mixed")
    assert "skdeploy:autoscaling.1" in message
    assert "skdeploy:autoscaling.foo" in message
    assert_cli_refuses(project, "mixed", "autoscaling.foo")


# --- Finding 9: YAML aliases (billion laughs) and oversized files ------------------------------

BILLION_LAUGHS = """\
config:
  aws:region: eu-west-1
  skdeploy:tags:
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
  skdeploy:bomb: *i
"""

#: Loads the stack in a child process (with a memory cap); prints the SettingsError's message.
LOAD_BOUNDED = """
import sys
from pathlib import Path
from skdeploy.core.settings import SettingsError, load_stack_settings
try:
    load_stack_settings(Path(sys.argv[1]), sys.argv[2])
except SettingsError as exc:
    print(exc)
"""


def load_in_child(project: Path, stack: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LOAD_BOUNDED, str(project), stack],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        preexec_fn=cap_memory,
    )


def test_a_yaml_alias_bomb_is_refused_quickly(project: Path) -> None:
    """Nine levels of nine aliases (9**9 strings once expanded) are refused by line, at once."""
    write_stack(project, "bomb", BILLION_LAUGHS)
    try:
        done = load_in_child(project, "bomb")
    except subprocess.TimeoutExpired:
        pytest.fail("loading an alias bomb did not finish within 30 s")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "YAML aliases are not accepted" in done.stdout
    assert "line 5" in done.stdout  # the first alias, *a on the b: line
    try:
        assert_cli_refuses(project, "bomb", "YAML aliases are not accepted")
    except subprocess.TimeoutExpired:
        pytest.fail("check --static on an alias bomb did not finish within 60 s")


def test_a_merge_key_through_an_alias_is_refused_too(project: Path) -> None:
    """``<<: *base`` is an alias as well: the file is refused rather than partly merged."""
    write_stack(
        project,
        "merge",
        BASE
        + "  skdeploy:autoscaling:\n    <<: &base {min: 2, max: 4}\n"
        + "  skdeploy:shadowScaling:\n    <<: *base\n",
    )
    assert "YAML aliases are not accepted" in refusal(project, "merge")


def test_an_oversized_stack_file_is_refused_before_parsing(project: Path) -> None:
    """A stack file over the size limit is refused by size, without being parsed."""
    padding = "# " + "x" * 1000 + "\n"
    write_stack(project, "huge", BASE + padding * 1100)
    message = refusal(project, "huge")
    assert "is larger than" in message
    assert "1 MiB" in message
    assert_cli_refuses(project, "huge", "is larger than")


def test_deeply_nested_yaml_is_refused_not_a_recursion_error(project: Path) -> None:
    """Thousands of nested ``[`` are refused by depth, not by a RecursionError traceback."""
    write_stack(project, "deep", BASE + "  skdeploy:tags: " + "[" * 5000 + "]" * 5000 + "\n")
    message = refusal(project, "deep")
    assert "nested deeper than" in message
    assert_cli_refuses(project, "deep", "nested deeper than")


# --- Finding 9: duplicate keys --------------------------------------------------------------


def test_a_duplicate_setting_is_refused_with_both_lines(project: Path) -> None:
    """Two ``skdeploy:instanceType`` lines: neither silently wins; the key and lines are named."""
    write_stack(
        project,
        "dup",
        BASE + "  skdeploy:instanceType: ml.m5.large\n  skdeploy:instanceType: ml.c5.xlarge\n",
    )
    message = refusal(project, "dup")
    assert "duplicate key 'skdeploy:instanceType' on lines 3 and 4" in message
    assert_cli_refuses(project, "dup", "duplicate key 'skdeploy:instanceType' on lines 3 and 4")


def test_duplicates_are_found_at_every_level_and_all_reported(project: Path) -> None:
    """A duplicate inside a map setting and one at the top of the file are both listed."""
    write_stack(
        project,
        "dups",
        """\
        config:
          aws:region: eu-west-1
          skdeploy:autoscaling:
            min: 2
            max: 4
            min: 1
        config:
          aws:region: us-east-1
        """,
    )
    message = refusal(project, "dups")
    assert "duplicate key 'min' on lines 4 and 6" in message
    assert "duplicate key 'config' on lines 1 and 7" in message
    assert "2 invalid setting(s)" in message


def test_a_duplicate_in_the_project_files_config_is_refused(project: Path) -> None:
    """Pulumi.yaml's ``config:`` defaults are held to the same rule, with the file named."""
    pulumi_yaml = project / "Pulumi.yaml"
    lines = pulumi_yaml.read_text().count("\n")
    pulumi_yaml.write_text(
        pulumi_yaml.read_text()
        + "config:\n  skdeploy:instanceCount: 2\n  skdeploy:instanceCount: 3\n"
    )
    message = refusal(project, "staging")
    assert "Pulumi.yaml" in message
    assert f"duplicate key 'skdeploy:instanceCount' on lines {lines + 2} and {lines + 3}" in message
    assert_cli_refuses(project, "staging", "duplicate key 'skdeploy:instanceCount'")


# --- Finding 9: instance types --------------------------------------------------------------


def test_an_unknown_instance_type_is_refused_by_name(project: Path) -> None:
    """``ml.bogus.nonexistent`` looks like an instance type but is none: refused, named."""
    write_stack(project, "bogus", BASE + "  skdeploy:instanceType: ml.bogus.nonexistent\n")
    message = refusal(project, "bogus")
    assert "skdeploy:instanceType = ml.bogus.nonexistent" in message
    assert "not a SageMaker real-time instance type" in message
    assert_cli_refuses(project, "bogus", "ml.bogus.nonexistent")


@pytest.mark.parametrize(
    ("typo", "suggested"),
    [("ml.m5.larg", "ml.m5.large"), ("ml.c5.xxlarge", "ml.c5.xlarge"), ("ml.g5x.xlarge", "ml.g5")],
)
def test_a_near_miss_suggests_close_matches(project: Path, typo: str, suggested: str) -> None:
    """The refusal suggests the nearest real types."""
    write_stack(project, "typo", BASE + f"  skdeploy:instanceType: {typo}\n")
    message = refusal(project, "typo")
    assert typo in message
    (suggestions,) = re.findall(r"did you mean ([^?]*)\?", message)
    assert suggested in suggestions


@pytest.mark.parametrize("key", ["variants", "shadow"])
def test_variant_and_shadow_instance_types_are_checked_too(project: Path, key: str) -> None:
    """Every place an instance type can be written is held to the same table."""
    value = (
        "\n    - name: blue\n      instanceType: ml.m5.bogus"
        if key == "variants"
        else "\n    name: shadow1\n    instanceType: ml.m5.bogus"
    )
    write_stack(project, "variant", BASE + f"  skdeploy:{key}:{value}\n")
    message = refusal(project, "variant")
    path = "variants[0].instanceType" if key == "variants" else "shadow.instanceType"
    assert f"skdeploy:{path} = ml.m5.bogus" in message
    assert "did you mean" in message
    assert_cli_refuses(project, "variant", path)


def test_real_instance_types_outside_the_old_pattern_are_accepted(project: Path) -> None:
    """A real type with a hyphen in its family (``ml.p6-b200.48xlarge``) is accepted."""
    write_stack(project, "gpu", BASE + "  skdeploy:instanceType: ml.p6-b200.48xlarge\n")
    assert load_stack_settings(project, "gpu").instance_type == "ml.p6-b200.48xlarge"


def test_the_instance_table_is_botocores_production_variant_enum() -> None:
    """The table is exactly the installed botocore's ``ProductionVariantInstanceType`` enum."""
    import botocore
    from botocore.loaders import Loader

    table_file = settings_module.INSTANCE_TYPES_FILE
    data = json.loads(table_file.read_text(encoding="utf-8"))
    model = Loader().load_service_model("sagemaker", "service-2", data["source"]["apiVersion"])
    enum = model["shapes"]["ProductionVariantInstanceType"]["enum"]
    table = settings_module.instance_types()
    assert set(table) == set(enum), (
        f"the table disagrees with botocore {botocore.__version__}: regenerate "
        f"{table_file.name} (see its source) and update its recorded version and date"
    )
    assert data["source"]["botocore"] == botocore.__version__
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["source"]["retrieved"])
    assert "ProductionVariantInstanceType" in data["source"]["shape"]
    assert len(table) == len(set(table))
    assert "ml.m5.large" in table  # the documented default


# --- Finding 10: a production stack needs its guardrails, or a named override -----------------

#: A prod stack file that is valid in every other respect: two instances, no guardrails.
BARE_PROD = BASE + (
    "  skdeploy:instanceType: ml.c5.xlarge\n"
    "  skdeploy:instanceCount: 2\n"
    "  skdeploy:protect: false\n"
)
GUARDRAILS = (
    "  skdeploy:protect: true\n"
    "  skdeploy:deployment: {strategy: canary}\n"
    "  skdeploy:autoscaling: {min: 2, max: 4}\n"
)


def test_a_prod_stack_without_guardrails_is_refused_naming_each_and_the_override(
    project: Path,
) -> None:
    """protect false, no deployment and no autoscaling: one problem lists all three."""
    write_stack(project, "prod", BARE_PROD)
    with pytest.raises(SettingsError) as caught:
        load_stack_settings(project, "prod")
    (problem,) = caught.value.problems
    for requirement in ("protect", "deployment", "autoscaling"):
        assert f"skdeploy:{requirement}" in problem
    assert "skdeploy:productionOverrides" in problem
    assert "stack name 'prod'" in problem
    output = assert_cli_refuses(project, "prod", "skdeploy:productionOverrides")
    assert output.count("skdeploy:productionOverrides") == 1


def test_a_stack_tagged_environment_prod_is_prod_too(project: Path) -> None:
    """Whatever its name, a stack tagged ``environment: prod`` is held to the prod rule."""
    write_stack(project, "eu-live", BARE_PROD + "  skdeploy:tags: {environment: Production}\n")
    message = refusal(project, "eu-live")
    assert "tag environment: Production" in message
    assert "skdeploy:productionOverrides" in message


@pytest.mark.parametrize("stack", ["prod-eu", "production", "PROD"])
def test_prod_named_stacks_match_the_policy_pack(project: Path, stack: str) -> None:
    """Names the policy pack's prod rule covers (``prod*``) are prod here as well."""
    write_stack(project, stack, BARE_PROD)
    assert "skdeploy:productionOverrides" in refusal(project, stack)


def test_each_override_waives_only_its_requirement(project: Path) -> None:
    """Overriding protect and autoscaling leaves deployment, alone, in the refusal."""
    write_stack(
        project, "prod", BARE_PROD + "  skdeploy:productionOverrides: [protect, autoscaling]\n"
    )
    with pytest.raises(SettingsError) as caught:
        load_stack_settings(project, "prod")
    (problem,) = caught.value.problems
    assert "skdeploy:deployment" in problem
    assert "skdeploy:protect" not in problem
    assert "skdeploy:autoscaling" not in problem


def test_overriding_every_requirement_is_accepted(project: Path) -> None:
    """Every requirement waived by name: the stack loads and the static check passes."""
    requirements = settings_module.PRODUCTION_REQUIREMENTS
    overrides = "[" + ", ".join(requirements) + "]"
    write_stack(project, "prod", BARE_PROD + f"  skdeploy:productionOverrides: {overrides}\n")
    settings = load_stack_settings(project, "prod")
    assert settings.production_overrides == frozenset(requirements)
    done = check_static(project, "prod")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_prod_stack_with_its_guardrails_passes(project: Path) -> None:
    """protect, deployment and autoscaling set: no override needed."""
    write_stack(project, "prod", BARE_PROD.replace("  skdeploy:protect: false\n", "") + GUARDRAILS)
    assert load_stack_settings(project, "prod").protect is True
    done = check_static(project, "prod")
    assert done.returncode == 0, done.stdout + done.stderr


def test_non_prod_stacks_need_no_guardrails(project: Path) -> None:
    """The same bare stack named staging, tagged staging, is fine."""
    write_stack(project, "staging", BARE_PROD + "  skdeploy:tags: {environment: staging}\n")
    assert load_stack_settings(project, "staging").protect is False


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("[protect, backups]", "unknown requirement 'backups'"),
        ("protect", "must be a list"),
        ("[protect, protect]", "lists protect twice"),
    ],
)
def test_bad_overrides_are_refused(project: Path, value: str, fragment: str) -> None:
    """An override names known requirements, once each, as a list."""
    write_stack(project, "prod", BASE + GUARDRAILS + f"  skdeploy:productionOverrides: {value}\n")
    message = refusal(project, "prod")
    assert "skdeploy:productionOverrides" in message
    assert fragment in message


def test_the_committed_prod_stack_needs_no_override() -> None:
    """The repository's own prod stack meets every requirement by itself."""
    settings = load_stack_settings(REPO, "prod")
    assert settings.production_overrides == frozenset()


# --- pickleLimits ---------------------------------------------------------------------------


def test_pickle_limits_default_to_the_inspectors_defaults(project: Path) -> None:
    """No ``pickleLimits``: exactly ``InspectionLimits()``."""
    write_stack(project, "plain", BASE)
    assert load_stack_settings(project, "plain").pickle_limits == InspectionLimits()


def test_pickle_limits_are_parsed_member_by_member(project: Path) -> None:
    """Each member given replaces its default; the others keep theirs."""
    write_stack(
        project, "raised", BASE + "  skdeploy:pickleLimits: {maxStreamMb: 4096, maxNesting: 50}\n"
    )
    limits = load_stack_settings(project, "raised").pickle_limits
    assert limits == InspectionLimits(max_stream_mb=4096, max_nesting=50)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("{maxStreamMb: 0}", "pickleLimits.maxStreamMb"),
        ("{maxOpcodes: -5}", "pickleLimits.maxOpcodes"),
        ("{maxValues: many}", "pickleLimits.maxValues"),
        ("{maxNesting: 1.5}", "pickleLimits.maxNesting"),
        ("{maxNesting: true}", "pickleLimits.maxNesting"),
        ("{maxStreamMb: 100000000}", "pickleLimits.maxStreamMb"),
        ("{maxBytes: 10}", "pickleLimits.maxBytes"),
        ("[1, 2]", "pickleLimits"),
    ],
)
def test_bad_pickle_limits_are_refused(project: Path, value: str, fragment: str) -> None:
    """Zero, negative, non-integer, absurd or unknown members are refused by name."""
    write_stack(project, "limits", BASE + f"  skdeploy:pickleLimits: {value}\n")
    message = refusal(project, "limits")
    assert f"skdeploy:{fragment}" in message
    assert_cli_refuses(project, "limits", fragment)


def test_the_documented_pickle_limits_are_the_inspectors_defaults() -> None:
    """The settings table's ``pickleLimits`` row names every member with its real default."""
    (spec,) = [s for s in SETTINGS if s.key == "pickleLimits"]
    documented = documented_defaults(spec.rule)
    defaults = InspectionLimits()
    assert {key: int(text) for key, text in documented.items()} == {
        key: getattr(defaults, name) for name, key in InspectionLimits.SETTING_KEYS.items()
    }
