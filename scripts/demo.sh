#!/usr/bin/env bash
# The main job, offline, on a fresh Debian/Ubuntu machine:
#   1. installs what is missing (scripts/setup.sh),
#   2. starts the local test bed: Docker engine, a registry standing in for ttl.sh, one standing in for Docker Hub,
#      and the upstream Palette images built offline and mirrored into the local registry
#      (python -m tests.testbed up; writes build/testbed-vars.yml),
#   3. runs playbooks/basic.yml against it: provider images pushed to the local registry, the installer ISO, and at
#      the end the BYOOS pack manifest and where each artifact is.
# Stop the test bed with:
#   .venv/bin/python -m tests.testbed down
# Extra arguments are passed to ansible-playbook (for example -e k8s_version=1.30.4 or -v).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
VARS=build/testbed-vars.yml

.venv/bin/python -m tests.testbed up --vars-file "$VARS"
exec ansible-playbook playbooks/basic.yml -e @"$VARS" "$@"
