#!/usr/bin/env bash
# The GPU checks in one run, for a machine with CUDA (about 5 minutes on one GPU):
#   1. the gpu-marked tests (tests/gpu): relaxed == exact execution on CUDA, training on CUDA,
#      CUDA and CPU blocks agreeing, and a search whose 4 actors share one GPU (needs ray there);
#   2. benchmarks/interpreter_throughput.py on CUDA (the maze block at R = 1 and R = 64).
# Everything it writes goes under $OUT (default: a new temporary folder):
#   gpu_tests.log, gpu_tests.xml, interpreter_throughput_cuda.json, device.json.
#
#   OUT=/tmp/out bash scripts/device_check.sh
#
# It uses the machine's own python3 with its torch (PYTHON=... to choose another), and installs
# this checkout into it without dependencies (nothing is downloaded). A missing ray or mlflow
# skips only the test that needs it, and the log says so.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PY=${PYTHON:-python3}
export MLFLOW_DISABLE_TELEMETRY=true RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
mkdir -p "$OUT"
status=0

"$PY" - >"$OUT/device.json" <<'EOF' || { echo "torch sees no CUDA device: nothing to check" >&2; exit 2; }
import json, sys, torch
if not torch.cuda.is_available():
    sys.exit(1)
print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                  "cuda": torch.version.cuda, "python": sys.version.split()[0]}))
EOF
cat "$OUT/device.json"

# The package maps its top-level folders to ntpt_dist.* (pyproject.toml): install it in place.
"$PY" -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 \
  || { echo "installing the checkout failed (see install.log)" >&2; tail -5 "$OUT/install.log" >&2; exit 2; }

timeout 300 "$PY" -m pytest tests/gpu -m gpu -p no:cacheprovider -rs -q --junitxml="$OUT/gpu_tests.xml" \
  2>&1 | tee "$OUT/gpu_tests.log" || status=1

timeout 180 "$PY" benchmarks/interpreter_throughput.py --device cuda --restarts 1 64 --steps 7 \
  >"$OUT/interpreter_throughput_cuda.json" || status=1
cat "$OUT/interpreter_throughput_cuda.json"
exit $status
