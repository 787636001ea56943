#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run): installs what is missing, then runs every test in order:
#   README variables block check, AWX survey check, ansible-test sanity, ansible-lint (production profile), pytest tests/unit,
#   pytest tests/integration (against the real test bed), molecule test.
# Every step runs even when an earlier one fails; the exit status is non-zero if any step failed.
# Environment: SKIP="sanity molecule" skips steps by name; PYTEST_ARGS adds pytest options.
# The step functions below are called indirectly through step().
# shellcheck disable=SC2317
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
START=$(date +%s)
declare -a RESULTS=()
FAILED=0

step() {  # step NAME COMMAND...
    local name=$1; shift
    if [[ " ${SKIP:-} " == *" $name "* ]]; then
        RESULTS+=("$(printf '%-12s SKIPPED (SKIP)' "$name")")
        return 0
    fi
    echo
    echo "=================================================================== $name"
    local t0 rc
    t0=$(date +%s)
    "$@"
    rc=$?
    local took=$(( $(date +%s) - t0 ))
    if [ "$rc" -eq 0 ]; then
        RESULTS+=("$(printf '%-12s passed   %4ds' "$name" "$took")")
    else
        RESULTS+=("$(printf '%-12s FAILED   %4ds (rc %d)' "$name" "$took" "$rc")")
        FAILED=1
    fi
    return 0
}

summary() {
    echo
    echo "=================================================================== summary"
    printf '%s\n' "${RESULTS[@]}"
    local total=$(( $(date +%s) - START ))
    if [ "$FAILED" -eq 0 ]; then
        echo "ALL PASSED in ${total}s"
    else
        echo "FAILED (see the steps above) after ${total}s"
    fi
}

# ---------------------------------------------------------------------------------------------------- setup
if ! bash scripts/setup.sh; then
    echo "setup failed: cannot run the tests" >&2
    exit 2
fi
PY="$ROOT/.venv/bin/python"
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_NOCOLOR=1 PY_COLORS=0

start_docker() {
    "$PY" -c 'from tests.testbed.services import ensure_docker_engine as e; print("Docker engine:", e().base_url)'
}

readme_vars() {
    "$PY" scripts/gen-vars-doc.py --check
}

awx_surveys() {
    "$PY" scripts/gen-awx-surveys.py --check
}

sanity() {
    # ansible-test wants the collection at .../ansible_collections/<namespace>/<name>: copy the tracked (and new,
    # not ignored) files there. `collections/` is the checkout's link back to itself; leave it out.
    local work dest pipver
    work=$(mktemp -d /tmp/edgeforge-sanity.XXXXXX)
    dest="$work/ansible_collections/edgeforge/artifacts"
    mkdir -p "$dest"
    git ls-files -z --cached --others --exclude-standard | grep -zv '^collections/' |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf - | tar -C "$dest" -xf -
    # Offline: ansible-test downloads a get-pip script for each test venv; a local stand-in does the same job
    # with ensurepip + pip (PyPI itself is reachable).
    pipver=$("$PY" - <<'PYEOF'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
print(re.search(r"pip='([0-9.]+)'", src).group(1).replace(".", "_"))
PYEOF
)
    mkdir -p "$HOME/.ansible/test/cache"
    local getpip="$HOME/.ansible/test/cache/get_pip_${pipver}.py"
    if [ ! -s "$getpip" ]; then
        cat > "$getpip" <<'PYEOF'
# edgeforge offline get-pip stand-in: ansible-test runs `python get-pip.py [options] pip==X ...` in a new venv.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PYEOF
    fi
    local rc=0
    (cd "$dest" && ansible-test sanity --python 3.11 --color no) || rc=$?
    rm -rf "$work"
    return "$rc"
}

lint() {
    # ansible-lint puts ANSIBLE_HOME's collections (default ~/.ansible) before the checkout's: an older copy of this
    # collection installed there would hide new modules. A home of its own for the run keeps the checkout the one
    # source.
    local home rc
    home=$(mktemp -d /tmp/edgeforge-lint-home.XXXXXX)
    ANSIBLE_HOME="$home" ansible-lint --profile production --offline
    rc=$?
    rm -rf "$home"
    return "$rc"
}

unit() {
    # shellcheck disable=SC2086
    "$PY" -m pytest tests/unit -q -p no:cacheprovider ${PYTEST_ARGS:-}
}

integration() {
    # shellcheck disable=SC2086
    "$PY" -m pytest tests/integration -q -p no:cacheprovider --durations=15 ${PYTEST_ARGS:-}
}

molecule_test() {
    if [ ! -d molecule/default ]; then
        echo "molecule/default does not exist yet: nothing to run"
        return 0
    fi
    molecule test
}

step docker start_docker
step readme-vars readme_vars
step awx-surveys awx_surveys
step sanity sanity
step ansible-lint lint
step unit unit
step integration integration
step molecule molecule_test
summary
exit "$FAILED"
