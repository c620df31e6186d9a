#!/usr/bin/env bash
# The confirmation loop (measure -> fit -> search -> train -> compare) on one GPU, at a larger
# scale than the CPU runs of docs/examples/validate-vit-patch and validate-lm-context, in one call.
#
#   bench/gpu_validate.sh [--task vit-patch|lm-context] [--data-dir DIR] [--corpus FILE]
#                         [--budget FLOPS] [--tiny]
#
# vit-patch (the default): patches 14/7/4 of a ViT (dim 192, depth 6) on Fashion-MNIST from
# --data-dir (default .data/fashion-mnist), one seed. lm-context: contexts 64/128/256 of a byte
# LM (dim 256, depth 4, 4 heads, batch 64 sequences), two seeds, on --corpus (default: the
# standard library's source of the python3 that runs; nothing is downloaded).
# Needs: python3 with torch, numpy, scipy, click, matplotlib (the device image has them) and
# simpy (not there: carry it, e.g. copy .venv/lib/python3*/site-packages/simpy to
# .data/pylib/simpy; this script puts .data/pylib on PYTHONPATH). The repository runs from its
# working tree (PYTHONPATH=.), nothing is installed. The loop folder goes to $OUT/TASK (default
# OUT=./out/gpu; checkpoints left out), with device.txt (nvidia-smi, torch), summary.txt and
# mfu.txt (each static run's FLOP/s over the GPU's bf16 peak) beside it. --tiny runs a
# few-second CPU version of the same commands (to test the script). A loop killed by its
# timeout (LOOP_TIMEOUT seconds, default 420, leaving room for a rerun in a 15-minute session)
# keeps what it did in WORK_DIR (default ./out/gpu-work): rerun the same command to continue.
set -euo pipefail
cd "$(dirname "$0")/.."

TASK=vit-patch
DATA_DIR=.data/fashion-mnist
CORPUS=
BUDGET=
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --task) TASK=$2; shift 2 ;;
    --data-dir) DATA_DIR=$2; shift 2 ;;
    --corpus) CORPUS=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    *) echo "usage: $0 [--task vit-patch|lm-context] [--data-dir DIR] [--corpus FILE]" \
         "[--budget FLOPS] [--tiny]" >&2; exit 2 ;;
  esac
done
OUT_DIR=${OUT:-./out/gpu}
mkdir -p "$OUT_DIR"
export PYTHONPATH=".:.data/pylib${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
# bf16 dense peak of one H200 (SXM), the denominator of MFU.
PEAK=${PEAK_FLOPS:-989e12}

case "$TASK:$TINY" in
  vit-patch:1)
    DEVICE=cpu; BUDGET=${BUDGET:-3e9}; SHAPES="patch=14;patch=7;patch=4"
    COMMON=dim=16,depth=1,heads=2,batch=32; LR=1e-3; SEEDS=1; EVALS=12
    EXTRA=(--threads 1 --warmup-steps 5 --eval-size 200 --data-dir "$DATA_DIR") ;;
  vit-patch:0)
    DEVICE=cuda; BUDGET=${BUDGET:-1e14}; SHAPES="patch=14;patch=7;patch=4"
    COMMON=dim=192,depth=6,heads=3,batch=256; LR=1e-3; SEEDS=1; EVALS=30
    EXTRA=(--warmup-steps 50 --workers 3 --eval-size 10000 --data-dir "$DATA_DIR") ;;
  lm-context:1)
    DEVICE=cpu; BUDGET=${BUDGET:-1e9}; SHAPES="context=8;context=16;context=32"
    COMMON=dim=16,depth=1,heads=2,mlp=32,batch=8; LR=2e-3; SEEDS=2; EVALS=6
    EXTRA=(--threads 1 --warmup-steps 5 --bootstrap 10) ;;
  lm-context:0)
    # Settings and their arithmetic: validate/README.md, "The confirmation loop on a GPU".
    DEVICE=cuda; BUDGET=${BUDGET:-1.5e15}; SHAPES="context=64;context=128;context=256"
    COMMON=dim=256,depth=4,heads=4,mlp=1024,batch=64; LR=1e-3; SEEDS=2; EVALS=24
    EXTRA=(--warmup-steps 100 --workers 3) ;;
  *) echo "$0: --task must be vit-patch or lm-context, not '$TASK'" >&2; exit 2 ;;
esac
if [ -n "$CORPUS" ]; then EXTRA+=(--corpus "$CORPUS"); fi
if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    | tee "$OUT_DIR/device.txt" || true
fi
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.cuda.is_available())" | tee -a "$OUT_DIR/device.txt"

# The loop lives in WORK_DIR, inside the repository (ignored, so it stays on a warm device
# between calls, where $OUT starts empty): a rerun resumes it, checkpoints included. However the
# loop ends, its files but the large checkpoints are copied to $OUT.
WORK_DIR=${WORK_DIR:-./out/gpu-work}
LOOP_DIR=$WORK_DIR/$TASK
mkdir -p "$LOOP_DIR"
copy_out() {
  (cd "$WORK_DIR" && tar --exclude=checkpoint.pt -cf - "$TASK") | (cd "$OUT_DIR" && tar -xf -)
}
trap copy_out EXIT
start=$(date +%s)
timeout "${LOOP_TIMEOUT:-420}" "$PY" cli.py validate run "$TASK" --shapes "$SHAPES" \
  --common "$COMMON" --budget "$BUDGET" --seeds "$SEEDS" --device "$DEVICE" --lr "$LR" \
  --evals "$EVALS" "${EXTRA[@]}" -o "$LOOP_DIR" \
  2> "$OUT_DIR/$TASK.log" | tee "$OUT_DIR/summary.txt" \
  || { status=$?; tail -n 5 "$OUT_DIR/$TASK.log" >&2; exit "$status"; }
echo "loop wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT_DIR/summary.txt"

# MFU per static run: its measured training FLOP/s (result.json) over the peak.
"$PY" - "$LOOP_DIR" "$PEAK" <<'EOF' | tee "$OUT_DIR/mfu.txt"
import json, pathlib, sys
root, peak = pathlib.Path(sys.argv[1]), float(sys.argv[2])
for path in sorted((root / "static").rglob("result.json")):  # SHAPE/ or SHAPE/seedK/
    rate = json.loads(path.read_text())["flops_per_second"]
    name = path.parent.relative_to(root / "static").as_posix()
    print(f"{name}: {rate:.3g} FLOP/s, MFU {rate / peak:.1%} of {peak:.3g}")
EOF
