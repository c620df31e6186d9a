"""What one's own runs saved (``shapeshift measure``): the compute at which they reach a
target loss, and what the adaptive runs among them save over the static ones, read as
``shapeshift validate run`` reads its own (``validate.measured``): every run, static or
adaptive, by the same estimator (``crossing``, a local log-log line around the target; the
first evaluation at or below it is shown beside), seed k's adaptive run against seed k's run of
the best static shape, the mean saving with its 90% Student-t interval over the seeds.

Runs are the ``curve.jsonl`` files the shape controller and the adapters write (files, or
folders searched for them): a run that switches shape after its first evaluation is adaptive,
the others are static runs of the shape they evaluated. A run's seed is the number of the last
``seed<k>`` in its path (``runs/patch14/seed1/curve.jsonl``), else its place among the runs of
its kind and shape, in the order given. No torch: this reads files only.

>>> import tempfile, json, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> def write(name, points, switch_at=None):
...     path = root / name / "curve.jsonl"
...     path.parent.mkdir(parents=True)
...     lines = []
...     for k, (flops, loss) in enumerate(points):
...         shape = "b" if switch_at is not None and k > switch_at else "a"
...         lines.append({"event": "eval", "flops": flops, "time": flops / 1e9, "eval_loss": loss,
...                       "shape": {"w": shape}, "shape_name": shape})
...         if k == switch_at:
...             lines.append({"event": "switch", "flops": flops, "from": {"w": "a"},
...                           "to": {"w": "b"}, "eval_loss": loss})
...     path.write_text("".join(json.dumps(line) + "\\n" for line in lines))
>>> write("a", [(1e9, 3.0), (2e9, 2.0), (4e9, 1.5), (8e9, 1.2)])
>>> write("adaptive", [(1e9, 3.0), (2e9, 2.0), (3e9, 1.4), (4e9, 1.1)], switch_at=1)
>>> result = measure([root], 1.5)
>>> [(run["kind"], run["shape"], f"{run['first_crossing']:.3g}") for run in result["runs"]]
[('static', 'a', '4e+09'), ('adaptive', 'a > b', '2.8e+09')]
>>> result["paired"]["best_static"], round(result["paired"]["seeds"][0]["saving"], 2)
('a', 0.34)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from laws.errors import InputError

if TYPE_CHECKING:
    from laws.io.logs import LogSpec

_SEED = re.compile(r"seed(\d+)$")


def measure(paths: Iterable[str | os.PathLike], target: float,
            adaptive: Iterable[str | os.PathLike] = (), logs: LogSpec | None = None) -> dict:
    """Each run's FLOPs (and seconds) to ``target`` by the estimator and at the first crossing;
    with adaptive and static runs, the paired saving per seed over the best static shape
    (``validate.measured.paired_savings``) and its mean with a 90% interval. The runs under
    ``adaptive`` are the adaptive set whether or not they switched (a plan may keep one shape);
    among ``paths``, the runs that switch are. Training logs (``laws.io.logs``) are read as
    ``logs`` says; one that keeps no wall time has no seconds."""
    from laws.runcurves import evaluations, is_adaptive, read_runs, run_curve_files
    from validate.measured import crossing, paired_savings, reach

    if not 0 < target < float("inf"):
        raise InputError(f"--target {target}: must be a positive, finite loss")
    runs = []
    marked = set(run_curve_files(adaptive)) if adaptive else set()
    files = run_curve_files([*paths, *adaptive])
    for path, read in zip(files, read_runs(files, logs), strict=True):
        for records in _runs_in(path, read):
            shapes = list(dict.fromkeys(r["shape_name"] for r in evaluations(records)))
            kind = "adaptive" if path in marked or is_adaptive(records) else "static"
            runs.append({"file": str(path), "kind": kind,
                         "shape": " > ".join(shapes), "seed": _seed_in(path),
                         "records": records})
    _number_seeds(runs)
    rows = [{key: run[key] for key in ("file", "kind", "shape", "seed")}
            | {"flops": crossing(run["records"], target),
               "seconds": crossing(run["records"], target, "time")
               if all("time" in r for r in evaluations(run["records"])) else None,
               "first_crossing": reach(evaluations(run["records"]), target),
               "lowest_loss": min(r["eval_loss"] for r in evaluations(run["records"]))}
            for run in runs]
    adaptive = sorted((run for run in runs if run["kind"] == "adaptive"),
                      key=lambda run: run["seed"])
    static: dict[str, dict[int, list[dict]]] = {}
    for run in runs:
        if run["kind"] == "static":
            static.setdefault(run["shape"], {})[run["seed"]] = run["records"]
    seeds = [run["seed"] for run in adaptive]
    complete = {shape: [by_seed[seed] for seed in seeds] for shape, by_seed in static.items()
                if all(seed in by_seed for seed in seeds)}
    paired = None
    if adaptive and complete:
        found = paired_savings(complete, [run["records"] for run in adaptive], target, None)
        for entry, seed in zip(found["seeds"], seeds, strict=True):
            entry["seed"] = seed
            entry.pop("saving_vs_planned")
        paired = {"best_static": found["best_static"], "seeds": found["seeds"],
                  "saving": found["saving"],
                  "left_out": sorted(set(static) - set(complete))}
    return {"target": target, "estimator": "crossing", "runs": rows, "paired": paired}


def _runs_in(path: os.PathLike, records: list[dict]) -> list[list[dict]]:
    """The runs a file holds: a W&B chart export one per run (each its own shape, in
    ``laws.io.logs``), any other file one."""
    from laws.io.logs import log_format

    if log_format(path) != "wandb-export":
        return [records]
    by_run: dict[str, list[dict]] = {}
    for record in records:
        by_run.setdefault(record["shape_name"], []).append(record)
    return list(by_run.values())


def _seed_in(path: os.PathLike) -> int | None:
    for part in reversed(os.fspath(path).split(os.sep)):
        match = _SEED.search(part)
        if match:
            return int(match.group(1))
    return None


def _number_seeds(runs: list[dict]) -> None:
    """Runs without ``seed<k>`` in their path: the next free seed of their kind and shape, in
    the order given; two runs of one kind and shape with one seed are refused."""
    taken: dict[tuple[str, str], set[int]] = {}
    for run in runs:
        group = (run["kind"], run["shape"] if run["kind"] == "static" else "")
        seeds = taken.setdefault(group, set())
        if run["seed"] is None:
            run["seed"] = next(k for k in range(len(runs) + 1) if k not in seeds)
        elif run["seed"] in seeds:
            raise InputError(f"{run['file']}: a second {run['kind']} run"
                             f"{' of ' + run['shape'] if group[1] else ''} with seed "
                             f"{run['seed']}")
        seeds.add(run["seed"])


def format_measure(result: dict) -> str:
    """The runs as a table, then the paired savings."""
    from laws.tables import format_number, format_percent, format_table

    def number(value: float | None) -> str:
        return "not reached" if value is None else format_number(value)

    lines = [f"compute to eval loss {format_number(result['target'])} (estimator: a local "
             "log-log line through the evaluations around the target; first crossing: the "
             "first evaluation at or below it)", "",
             format_table(["run", "kind", "shape", "seed", "FLOPs", "first crossing",
                           "seconds", "lowest loss"],
                          [[row["file"], row["kind"], row["shape"], row["seed"],
                            number(row["flops"]), number(row["first_crossing"]),
                            # a log without wall time reaches the target with no seconds
                            "n/a" if row["seconds"] is None and row["flops"] is not None
                            else number(row["seconds"]), format_number(row["lowest_loss"])]
                           for row in result["runs"]])]
    paired = result["paired"]
    if paired is None:
        lines += ["", "no paired saving: it needs adaptive runs and static runs of the same "
                      "seeds"]
        return "\n".join(lines)
    saving = paired["saving"]
    best = paired["best_static"] or "none reached the target on every seed"
    lines += ["", f"adaptive vs the best static shape ({best}):"]
    lines += [f"  seed {seed['seed']}: {format_percent(seed['saving'], 'n/a')}"
              for seed in paired["seeds"]]
    interval = ("n/a" if saving["low"] is None else
                f"[{format_percent(saving['low'])}, {format_percent(saving['high'])}]")
    lines.append(f"  mean saving {format_percent(saving['mean'], 'n/a')}, "
                 f"{format_percent(saving['level'])} interval {interval} over {saving['n']} "
                 "seed(s)")
    if paired["left_out"]:
        lines.append(f"  left out (static runs missing an adaptive seed): "
                     f"{', '.join(paired['left_out'])}")
    return "\n".join(lines)
