"""Session fixtures: the test bed of real services (see tests/testbed/__init__.py)."""

import os
import sys

# Unit tests import plugins.module_utils.* as plain Python, from the checkout.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

pytest_plugins = [
    "tests.testbed.docker_bed",
    "tests.testbed.aws_bed",
    "tests.testbed.palette_bed",
]
