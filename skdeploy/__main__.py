"""``python -m skdeploy``: the same as the ``skdeploy`` console script."""

import sys

from skdeploy.tooling.cli import main

sys.exit(main())
