"""Entry point Pulumi runs for ``pulumi preview --policy-pack policy``: constructs the pack.

``PolicyPack(...)`` starts the analyzer's gRPC server and blocks, so nothing else lives here; the
policies are in ``pack.py`` and the rules in ``rules.py`` (both importable by tests).
"""

from pack import PACK_DESCRIPTION, PACK_NAME, POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
    description=PACK_DESCRIPTION,
)
