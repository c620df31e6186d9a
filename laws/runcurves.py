"""The curves shapeshift's own runs write (``curve.jsonl``: ``validate train``, the shape
controller and the Lightning and Hugging Face adapters): found in files or folders, read, and
fitted with no column options.

A run's curve has one JSON line per evaluation (``"event": "eval"``, with ``flops``,
``eval_loss``, ``shape_name`` and the shape's axes under ``shape``) and one per switch. Fitting
reads the evaluations of static runs (an adaptive run's later shapes do not start from scratch,
so their points lie on no law) after zero FLOPs (an untrained model's evaluation at step 0),
every seed's points together, and gives each fitted shape the axes its runs recorded, so the
law file drives the controller, the adapters and ``validate`` as it is. Training logs written
by other tools (``laws.io.logs``: the HF Trainer, Lightning, TensorBoard, W&B) are read as such
runs, one shape per log, with no axes.

>>> import tempfile, json, pathlib
>>> run = pathlib.Path(tempfile.mkdtemp()) / "p14" / "curve.jsonl"
>>> run.parent.mkdir()
>>> _ = run.write_text("".join(json.dumps({"event": "eval", "flops": f, "eval_loss": 2.5 - k / 4,
...     "shape": {"patch": 14}, "shape_name": "patch14"}) + "\\n"
...     for k, f in enumerate((0, 1e9, 1e10, 1e11))))
>>> [path.name for path in run_curve_files([run.parent.parent])], run_axes([read_run(run)])
(['curve.jsonl'], {'patch14': {'patch': 14}})
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from laws.errors import InputError
from laws.io.atomic import file_sha256
from laws.io.jsonfile import parse_json

if TYPE_CHECKING:
    from laws.fit.request import FitOutcome, FitRequest
    from laws.io.curves import ColumnMap
    from laws.io.logs import LogSpec

CURVE = "curve.jsonl"
# The columns of a run's evaluations that a fit reads (shapeshift fit CURVES without options).
_COLUMNS = {"shape": ("shape_name",), "compute": "flops", "loss": "eval_loss"}


def is_run_curve(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file whose first line is a record of a shapeshift run."""
    if not os.path.isfile(path):  # a FIFO would block the sniffing; the reader refuses it
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "")
        record = json.loads(first)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(record, dict) and "event" in record


def run_curve_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Each path as given when it is a file, else every ``curve.jsonl`` under the folder; of
    the TensorBoard event files of one folder, which are one run (``laws.io.logs``), the
    first."""
    from laws.io.logs import one_file_per_run

    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(path.rglob(CURVE))
            if not inside:
                raise InputError(f"{path}: no {CURVE} in this folder or below")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return one_file_per_run(list(dict.fromkeys(found)))


def one_curve_file(paths: tuple[str, ...], columns: ColumnMap) -> str:
    """The one file the column options read; a run's curve read without ``--filter event=eval``
    is refused with the hint (its switch lines hold no loss and no shape name)."""
    if len(paths) != 1:
        raise InputError(f"the column options read one file, got {len(paths)}; without them "
                         "fit reads the curve.jsonl of several runs")
    path = paths[0]
    if is_run_curve(path) and "event" not in dict(columns.filters):
        raise InputError(f"{path} is the curve of a shapeshift run: give no column options "
                         "(fit then reads its evaluations and the shapes' axes), or add "
                         "--filter event=eval")
    return path


def read_run(path: str | os.PathLike) -> list[dict]:
    """The records of one run's ``curve.jsonl``, in order; an ``InputError`` names a line that
    is not a run's record."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            record = parse_json(text, f"{path}: line {line}", "a record")
            if not isinstance(record, dict) or "event" not in record:
                raise InputError(f"{path}: line {line}: not a record of a shapeshift run (no "
                                 "'event'); give its column options to `fit` instead")
            if record["event"] == "eval":
                for key in ("flops", "eval_loss", "shape_name", "shape"):
                    if key not in record:
                        raise InputError(f"{path}: line {line}: an evaluation without {key!r}")
            records.append(record)
    if not any(r["event"] == "eval" for r in records):
        raise InputError(f"{path}: no evaluations")
    return records


def read_runs(files: Sequence[Path], logs: LogSpec | None = None) -> list[list[dict]]:
    """The records of each file: a run's ``curve.jsonl``, or a training log read as one
    (``laws.io.logs``, with ``logs`` saying where its loss and FLOPs are), the logs' shapes
    named by ``log_names``."""
    from laws.io.logs import LogSpec, log_format, log_names, read_log

    spec = logs or LogSpec()
    found = [path for path in files if log_format(path)]
    if spec.options() and not found:
        raise InputError("the log options (--log-loss, --flops-per-step, ...) read training "
                         "logs, and none of the files is one")
    names = dict(zip(found, log_names(found), strict=True))
    return [read_log(path, names[path], spec) if path in names else read_run(path)
            for path in files]


def evaluations(run: list[dict]) -> list[dict]:
    """The evaluation records of a run."""
    return [r for r in run if r["event"] == "eval"]


def is_adaptive(run: list[dict]) -> bool:
    """Whether the run switched shape after its first evaluation (a switch before it only
    moves the model to the policy's first shape)."""
    first = next(i for i, r in enumerate(run) if r["event"] == "eval")
    return any(r["event"] == "switch" for r in run[first:])


def run_axes(runs: Iterable[list[dict]]) -> dict[str, dict]:
    """Each shape name's axes, as the runs' evaluations recorded them."""
    axes: dict[str, dict] = {}
    for run in runs:
        for record in evaluations(run):
            known = axes.setdefault(record["shape_name"], record["shape"])
            if known != record["shape"]:
                raise InputError(f"shape {record['shape_name']!r} has two sets of axes in the "
                                 f"runs: {known} and {record['shape']}")
    return axes


def fit_runs(paths: Iterable[str | os.PathLike], request: FitRequest,
             provenance: dict[str, str] | None = None,
             progress: Callable[[int, int], None] | None = None,
             logs: LogSpec | None = None) -> FitOutcome:
    """``laws.fit.request.fit_file`` on the static runs' evaluations under ``paths`` (files or
    folders; training logs read as ``logs`` says): a ``FitOutcome`` whose shapes keep the runs'
    names and axes, and whose provenance lists the run files."""
    from laws.fit.request import fit_file
    from laws.io.curves import ColumnMap

    files = run_curve_files(paths)
    runs = read_runs(files, logs)
    for path, run in zip(files, runs, strict=True):
        if is_adaptive(run):
            raise InputError(f"{path}: an adaptive run (it switches shape); fit static runs: "
                             "a later shape does not start from scratch, so its points lie on "
                             "no law")
    axes = run_axes(runs)
    with tempfile.TemporaryDirectory() as folder:
        merged = Path(folder) / "runs.jsonl"  # fit_file reads files; the runs' points, merged
        merged.write_text("".join(
            json.dumps({key: value for key, value in record.items()
                        if not isinstance(value, (dict, list))}) + "\n"
            for run in runs for record in evaluations(run) if record["flops"] > 0))
        outcome = fit_file(merged, ColumnMap(**_COLUMNS), request, "jsonl", provenance,
                           progress)
    laws = outcome.laws
    shapes = tuple(dataclasses.replace(shape, axes=dict(axes[shape.name]))
                   for shape in laws.shapes)
    record = {**laws.provenance, "source": f"shapeshift runs ({len(files)} curves)",
              "input": [{"file": str(path), "sha256": file_sha256(path)} for path in files],
              "options": {**request.options(), **(logs.options() if logs else {})},
              **(provenance or {})}
    return dataclasses.replace(outcome, laws=dataclasses.replace(laws, shapes=shapes,
                                                                 provenance=record))
