"""Concurrent writers of one output folder (issue 25): each round starts N copies of the same
command at once, all writing into one folder; exactly one must win (exit 0), the others must
exit 2 with one line before any work, and the folder must be complete after every round.

    python bench/stress_outputs.py [--writers 6] [--rounds 3] [--out out/stress]

``compare -o SAME`` replaces its report folder each round; ``validate train -o SAME`` trains
into a fresh folder per round (a finished run's folder refuses a new run without --resume).
Exit status 1 when any round broke the rule.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
REPORT = ("report.md", "report.html", "summary.json", "runs.csv")
RUN = ("curve.jsonl", "checkpoint.pt", "result.json")
COMMANDS = {
    "compare": (["compare", "--preset", "demo", "--runs", "40", "--policies", "static,planned"],
                REPORT),
    "validate train": (["validate", "train", "mlp-width", "--shape", "width=8,batch=64",
                        "--budget", "3e8", "--evals", "8"], RUN),
}


def round_of(args: list[str], folder: Path, writers: int) -> tuple[Counter, list[str]]:
    """Start ``writers`` copies at once; their exit codes and their error lines."""
    processes = [subprocess.Popen([sys.executable, "-m", "cli", *args, "-o", str(folder)],
                                  cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(writers)]
    codes: Counter = Counter()
    lines = []
    for process in processes:
        _, stderr = process.communicate(timeout=900)
        codes[process.returncode] += 1
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        if process.returncode != 0:
            lines.append(errors[0] if len(errors) == 1 and "Traceback" not in stderr
                         else f"NOT ONE LINE: {stderr[-300:]!r}")
    return codes, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "out" / "stress")
    options = parser.parse_args()
    shutil.rmtree(options.out, ignore_errors=True)
    options.out.mkdir(parents=True)
    broken = False
    for name, (args, files) in COMMANDS.items():
        for number in range(1, options.rounds + 1):
            folder = options.out / (name.replace(" ", "-") + (
                f"-{number}" if name == "validate train" else ""))
            start = time.monotonic()
            codes, lines = round_of(args, folder, options.writers)
            missing = [f for f in files if not (folder / f).is_file()]
            ok = (codes == Counter({0: 1, 2: options.writers - 1}) and not missing
                  and all(line.startswith("error: ") for line in lines))
            broken |= not ok
            print(f"{name:<15} round {number}: exit codes {dict(sorted(codes.items()))}, "
                  f"folder {'complete' if not missing else f'MISSING {missing}'}, "
                  f"{time.monotonic() - start:.0f} s {'ok' if ok else 'BROKEN'}")
            for line in sorted(set(lines)):
                print(f"    {lines.count(line)} x {line}")
    leftovers = [p.name for p in options.out.iterdir() if p.name.startswith(".")]
    print(f"temporary or lock files left beside the folders: {leftovers or 'none'}")
    return 1 if broken or leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
