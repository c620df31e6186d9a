"""Issue 24's round trip, as a user does it from the public API only: the two scripts of
docs/examples (Lightning + timm ViT, Hugging Face Trainer + tiny GPT-2) run static runs through
the callback, fit laws to their curves with no column options, search, run the plan through the
callback and measure it; here with fewer steps."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from laws.search import read_plan
from tests.components import require, require_module
from validate.data import FASHION_MNIST_DIR
from validate.operators.timm_import import import_timm

ROOT = Path(__file__).resolve().parents[2]


def run_script(name, out, *arguments):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / name), str(out),
                           *map(str, arguments)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def check_round_trip(out, stdout, axis):
    laws = json.loads((out / "laws.json").read_text())
    assert all(set(shape["axes"]) == {axis} for shape in laws["shapes"])  # not shape_name
    assert "fitted:" in stdout and "optimal" in stdout and "compute to eval loss" in stdout
    plan = read_plan(out / "plan.json")
    assert plan.laws.digest  # the adaptive runs followed this plan on these laws
    for seed in (0, 1):
        evals = [json.loads(line) for line in (out / "adaptive" / f"seed{seed}" /
                                               "curve.jsonl").open()]
        seen = tuple(dict.fromkeys(r["shape_name"] for r in evals if r["event"] == "eval"))
        assert seen == plan.optimal.shapes[:len(seen)]
    assert "adaptive vs the best static shape" in stdout
    return laws


def require_lightning_timm_fashion_mnist():
    require_module("lightning.pytorch", "Lightning", "`make test` installs it")
    try:
        import_timm()
    except ModuleNotFoundError as err:
        require("timm", f"not installed ({err})")
    if not FASHION_MNIST_DIR.is_dir():
        require("Fashion-MNIST", f"no {FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)")


@pytest.mark.slow
def test_lightning_timm_round_trip(tmp_path):
    require_lightning_timm_fashion_mnist()
    stdout = run_script("user_lightning_timm.py", tmp_path, 60)
    check_round_trip(tmp_path, stdout, "patch")


@pytest.mark.slow
def test_hf_gpt2_round_trip(tmp_path):
    require_module("transformers", "Hugging Face transformers", "`make test` installs it")
    stdout = run_script("user_hf_gpt2.py", tmp_path, 60)
    check_round_trip(tmp_path, stdout, "context")
    # The HF adapter counts tokens: every step is 8 sequences of the current context.
    for path in (tmp_path / "static").rglob("curve.jsonl"):
        evals = [json.loads(line) for line in path.open() if '"eval"' in line]
        assert all(r["samples"] == r["step"] * 8 * r["shape"]["context"] for r in evals)
