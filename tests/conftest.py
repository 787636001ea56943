"""Session fixtures: the test bed of real services (see tests/testbed/__init__.py)."""

import os
import sys

# Tests import the collection by its one name, ansible_collections.edgeforge.artifacts, through the checkout's
# collections/ link (collections/ansible_collections/edgeforge/artifacts -> the checkout), and the test bed as tests.*.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (REPO_ROOT, os.path.join(REPO_ROOT, "collections")):
    if path not in sys.path:
        sys.path.insert(0, path)

pytest_plugins = [
    "tests.testbed.docker_bed",
    "tests.testbed.aws_bed",
    "tests.testbed.palette_bed",
]
