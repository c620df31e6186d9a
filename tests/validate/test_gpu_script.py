"""bench/gpu_validate.sh in --tiny mode on the CPU: the GPU session runs it once, so it must be
known to start, train every run, and write what comes back before a GPU is spent on it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
SCRIPT = REPO / "bench" / "gpu_validate.sh"
PEAK = 989e12  # the script's default PEAK_FLOPS


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(tmp_path / "out"), "WORK_DIR": str(tmp_path / "work"),
           "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_tiny_lm_context_loop_writes_its_files(tmp_path):
    # A small corpus keeps the run in seconds (the default, the standard library, is 30 MB).
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"".join(p.read_bytes() for p in sorted((REPO / "validate").glob("*.py"))))
    done = _run(tmp_path, "--task", "lm-context", "--tiny", "--corpus", str(corpus))
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "out"
    loop = out / "lm-context"
    for name in ("report.md", "summary.json", "laws.json", "plan.json", "curves.png"):
        assert (loop / name).stat().st_size > 0, name
    # The checkpoints stay in the work folder (a rerun resumes from them) and are not copied.
    assert not list(loop.rglob("checkpoint.pt"))
    assert len(list((tmp_path / "work" / "lm-context").rglob("checkpoint.pt"))) == 8
    laws = json.loads((loop / "laws.json").read_text())
    assert [s["name"] for s in laws["shapes"]] == ["context8", "context16", "context32"]
    summary = json.loads((loop / "summary.json").read_text())
    assert len(summary["seeds"]) == 2
    assert "torch" in (out / "device.txt").read_text()
    assert "loop wall time:" in (out / "summary.txt").read_text()
    # Every static run (3 shapes x 2 seeds) trained on this corpus and has its MFU line, which
    # is its result.json's FLOP/s over the peak.
    results = sorted((loop / "static").rglob("result.json"))
    assert len(results) == 6
    lines = (out / "mfu.txt").read_text().splitlines()
    assert len(lines) == 6
    for path, line in zip(results, lines, strict=True):
        result = json.loads(path.read_text())
        assert result["data"]["source"] == str(corpus)
        name = path.parent.relative_to(loop / "static").as_posix()
        rate = result["flops_per_second"]
        assert line == f"{name}: {rate:.3g} FLOP/s, MFU {rate / PEAK:.1%} of {PEAK:.3g}"
    # The same command again continues the finished loop: nothing is trained twice.
    again = _run(tmp_path, "--task", "lm-context", "--tiny", "--corpus", str(corpus))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "[loop] training" not in (out / "lm-context.log").read_text()
    assert json.loads((loop / "summary.json").read_text()) == summary



def test_unknown_task_is_refused(tmp_path):
    done = _run(tmp_path, "--task", "mlp-width", "--tiny")
    assert done.returncode == 2
    assert "--task must be vit-patch or lm-context" in done.stderr
