"""The plain-loop example (docs/examples/plain_loop.py) runs and prints what it should."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from laws.io.curves import ColumnMap, load_curves
from validate.flops import dense_train_flops

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "plain_loop.py"


def crossing(a1, c1, a2, c2, b=0.2):
    """Where |dC/dE| of the laws c + a C^-b cross (the optimum with free switches), by bisection."""
    def slope(e, a, c):  # |dC/dE| for C(E) = ((E - c) / a)^(-1/b)
        return ((e - c) / a) ** (-1 / b - 1) / (a * b)
    low, high = c1 + 1e-9, 0.6  # the narrow law's slope is the smaller one above the crossing
    for _ in range(100):
        middle = (low + high) / 2
        above = slope(middle, a1, c1) > slope(middle, a2, c2)
        low, high = (middle, high) if above else (low, middle)
    return low


def test_plain_loop_example(tmp_path):
    assert len(EXAMPLE.read_text().splitlines()) <= 60
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=300, check=True)
    lines = done.stdout.splitlines()
    level = float(re.fullmatch(r"plan: w16 until loss ([\d.]+), then w64", lines[0]).group(1))
    assert abs(level - crossing(2.0, 0.2, 3.0, 0.1)) < 2e-3  # the plan's grid is that fine
    evals = [(int(m.group(1)), float(m.group(2)), m.group(3)) for m in
             (re.fullmatch(r"step (\d+): eval ([\d.]+) on (w\d+)", line) for line in lines) if m]
    assert [step for step, _, _ in evals] == list(range(5, 61, 5))
    (at,) = [i for i, line in enumerate(lines) if line.startswith("switch")]
    fired = next(i for i, (_, loss, _) in enumerate(evals) if loss <= level)
    assert lines[at - 1] == f"step {evals[fired][0]}: eval {evals[fired][1]:.4f} on w16"
    # Net2Wider keeps the function: the same loss just after the switch; sqrt(64/32) on the lr.
    assert lines[at] == (f"switch to w64 (width 64), eval {evals[fired][1]:.4f} after it, "
                         f"lr {3e-3 * 2**0.5:.2e}")
    assert {shape for _, _, shape in evals[fired + 1 :]} == {"w64"}
    narrow = 32 * (dense_train_flops(1, 16, 16, False) + dense_train_flops(1, 16, 4))
    wide = 64 * (dense_train_flops(1, 16, 64, False) + dense_train_flops(1, 64, 4))
    switch_step = evals[fired][0]
    flops = switch_step * narrow + (60 - switch_step) * wide
    assert lines[-1] == f"done: {flops:.3e} FLOPs, curve in {tmp_path}/curve.jsonl"
    records = [json.loads(line) for line in (tmp_path / "curve.jsonl").open()]
    assert records[-1]["flops"] == flops
    curves = load_curves(tmp_path / "curve.jsonl", ColumnMap(
        shape=("shape_name",), loss="eval_loss", compute="flops", filters=(("event", "eval"),)))
    assert [(c.name, len(c)) for c in curves.curves] == [("w16", fired + 1),
                                                         ("w64", len(evals) - fired - 1)]
