#!/usr/bin/env bash
# The main job, offline, on a fresh Debian/Ubuntu machine:
#   1. installs what is missing (scripts/setup.sh),
#   2. starts the local test bed: Docker engine, a registry standing in for ttl.sh, one standing in for Docker Hub,
#      and the upstream Palette images built offline and mirrored into the local registry
#      (python -m tests.testbed up; writes build/testbed-vars.yml),
#   3. runs playbooks/basic.yml against it (provider images pushed to the local registry, then the installer ISO).
# Until playbooks/basic.yml exists it prepares the build host (playbooks/build_host.yml, if present) and validates the
# build configuration (role edgeforge.artifacts.build_config). Stop the test bed with:
#   .venv/bin/python -m tests.testbed down
# Extra arguments are passed to ansible-playbook (for example -e k8s_version=1.30.4 or -v).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
VARS=build/testbed-vars.yml

.venv/bin/python -m tests.testbed up --vars-file "$VARS"

if [ -f playbooks/basic.yml ]; then
    exec ansible-playbook playbooks/basic.yml -e @"$VARS" "$@"
fi

echo "playbooks/basic.yml is not there yet: preparing the build host and validating the build configuration"
mkdir -p build
cat > build/demo-inventory.yml <<'YAML'
---
build_hosts:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
YAML
if [ -f playbooks/build_host.yml ]; then
    ansible-playbook -i build/demo-inventory.yml playbooks/build_host.yml -e @"$VARS" "$@"
fi
cat > build/demo-build-config.yml <<'YAML'
---
- name: Validate the build configuration and show the build plan
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  roles:
    - edgeforge.artifacts.build_config
  tasks:
    - name: Show the build plan
      ansible.builtin.debug:
        msg:
          provider_images: "{{ build_config_plan.provider_images }}"
          base_image: "{{ build_config_plan.base_image }}"
          sources: "{{ build_config_plan.sources }}"
          installer_image: "{{ build_config_plan.installer_image }}"
YAML
ansible-playbook -i build/demo-inventory.yml build/demo-build-config.yml -e @"$VARS" "$@"
