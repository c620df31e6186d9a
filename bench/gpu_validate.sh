#!/usr/bin/env bash
# The confirmation loop (measure -> fit -> search -> train -> compare) for vit-patch on one GPU,
# at a larger scale than the CPU run of docs/examples/validate-vit-patch, in one call.
#
#   bench/gpu_validate.sh --data-dir .data/fashion-mnist [--budget FLOPS] [--tiny]
#
# Needs: python3 with torch, numpy, scipy, click, matplotlib (the device image has them) and
# simpy (not there: carry it, e.g. copy .venv/lib/python3*/site-packages/simpy to
# .data/pylib/simpy; this script puts .data/pylib on PYTHONPATH). The repository runs from its
# working tree (PYTHONPATH=.), nothing is installed. The report goes to $OUT/vit-patch (default
# OUT=./out/gpu). --tiny runs a few-second CPU version of the same commands (to test the script).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=.data/fashion-mnist
BUDGET=1e14
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA_DIR=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    *) echo "usage: $0 --data-dir DIR [--budget FLOPS] [--tiny]" >&2; exit 2 ;;
  esac
done
OUT_DIR=${OUT:-./out/gpu}
mkdir -p "$OUT_DIR"
export PYTHONPATH=".:.data/pylib${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}

if [ "$TINY" = 1 ]; then
  DEVICE=cpu; BUDGET=3e9; COMMON=dim=16,depth=1,heads=2,batch=32; EVAL_SIZE=200; EVALS=12
  EXTRA=(--threads 1 --warmup-steps 5)
else
  DEVICE=cuda; COMMON=dim=192,depth=6,heads=3,batch=256; EVAL_SIZE=10000; EVALS=30
  EXTRA=(--warmup-steps 50 --workers 3)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    | tee "$OUT_DIR/device.txt" || true
fi
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.cuda.is_available())" | tee -a "$OUT_DIR/device.txt"

# Checkpoints are large and not needed to read the report; drop them however the loop ends.
trap 'find "$OUT_DIR/vit-patch" -name checkpoint.pt -delete 2>/dev/null || true' EXIT
start=$(date +%s)
# A loop killed by the time limit keeps what it finished (rerun the same command to continue).
timeout "${LOOP_TIMEOUT:-420}" "$PY" cli.py validate run vit-patch --shapes "patch=14;patch=7;patch=4" --common "$COMMON" \
  --budget "$BUDGET" --device "$DEVICE" --lr 1e-3 --evals "$EVALS" \
  --eval-size "$EVAL_SIZE" --data-dir "$DATA_DIR" "${EXTRA[@]}" -o "$OUT_DIR/vit-patch" \
  2> "$OUT_DIR/vit-patch.log" | tee "$OUT_DIR/summary.txt" \
  || { status=$?; tail -n 5 "$OUT_DIR/vit-patch.log" >&2; exit "$status"; }
echo "loop wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT_DIR/summary.txt"
