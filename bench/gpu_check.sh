#!/usr/bin/env bash
# GPU checks for sessions that are lent a device: runs every bench/gpu_*.py in one go.
# Each script prints its own table (baseline measured in the same run) and exits non-zero
# on a failed check. Usage (on the device machine): bash bench/gpu_check.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/normsuite-gpu}}
mkdir -p "$out"
python3 -m pip install -q -e . --no-deps 2>/dev/null || true
export PYTHONUNBUFFERED=1
status=0
for script in bench/gpu_*.py; do
    [ -e "$script" ] || continue
    name=$(basename "$script" .py)
    echo "=== $script"
    if ! python3 "$script" 2>&1 | tee "$out/$name.log"; then
        echo "FAILED: $script"
        status=1
    fi
done
exit $status
