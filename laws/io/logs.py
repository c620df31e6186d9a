"""Training logs people already have, read as the evaluations of a shapeshift run.

One reader per format, behind ``log_format`` (which format a path holds, from its name or its
content) and ``read_log`` (its evaluations as the records of a run's ``curve.jsonl``:
``event``, ``step``, ``flops``, ``eval_loss``, ``shape_name``, ``shape`` and, where the log
keeps wall time, ``time``), so that ``fit`` and ``measure`` read them beside ``curve.jsonl``:

- ``huggingface``: the Trainer's ``trainer_state.json`` (its ``log_history``);
- ``lightning``: the CSVLogger's ``metrics.csv`` (columns ``step``, ``epoch`` and the metrics);
- ``tensorboard``: event files (``events.out.tfevents.*``), scalars plain or tensor-valued,
  read with the ``tensorboard`` package (the ``tensorboard`` extra); the event files of one
  folder (a restarted run writes another) are one curve;
- ``wandb``: a Weights & Biases history (an offline run's ``wandb-history.jsonl``, or a CSV
  or JSONL with a ``_step`` column, as ``run.history()`` exports it);
- ``wandb-export``: the CSV of a W&B line chart's "Export CSV" (a ``Step`` column and one
  ``RUN - METRIC`` column per run, beside its ``__MIN`` and ``__MAX``), each run a shape.

A log says loss against step; the FLOPs come from the user (``LogSpec``): a column of
cumulative FLOPs, or FLOPs per step or per token, for all shapes or per shape.

>>> import tempfile, json, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "w256" / "trainer_state.json"
>>> path.parent.mkdir()
>>> _ = path.write_text(json.dumps({"log_history": [{"step": 10, "loss": 3.1},
...     {"step": 10, "eval_loss": 3.0}, {"step": 20, "eval_loss": 2.5}]}))
>>> log_format(path)
'huggingface'
>>> [(r["step"], r["flops"], r["eval_loss"]) for r in read_log(path, "w256",
...     LogSpec(flops_per_step=PerShape.parse(["1e9"])))]
[(10, 10000000000.0, 3.0), (20, 20000000000.0, 2.5)]
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laws.errors import BadInputFile, InputError
from laws.io.jsonfile import ENCODING, check_input_file, not_utf8, parse_json
from laws.io.records import finite_number, read_records

# The names evaluation loss goes by, in the order they are looked for: the HF Trainer's (also
# under TensorBoard and W&B), Lightning's conventional ones.
LOSS_NAMES = ("eval_loss", "eval/loss", "val_loss", "val/loss", "validation_loss",
              "valid_loss", "loss/val", "loss/validation")
# The global step where W&B logs it beside its own ``_step`` (which counts log calls):
# Lightning's WandbLogger, the HF Trainer's W&B callback.
_WANDB_STEPS = ("trainer/global_step", "train/global_step", "_step")
# Lightning's loggers write the index of the training batch last run, from 0 (an evaluation
# after 2 optimizer steps is at step 1): the steps trained are one more.
_LIGHTNING_STEPS = {"step", "trainer/global_step"}
_TENSORBOARD_PREFIX = "events.out.tfevents."
# A W&B chart export names its columns "RUN - METRIC", with the band drawn around the line
# (several runs grouped into one) in "RUN - METRIC__MIN" and "__MAX".
_EXPORT_STEP, _EXPORT_SEPARATOR, _EXPORT_BANDS = "Step", " - ", ("__MIN", "__MAX")
# A row of a log: its step, its numbers by name, where it is (for messages) and wall seconds.
Row = tuple[int, dict[str, Any], str, float | None]


@dataclass(frozen=True)
class PerShape:
    """A number for every shape (``X``) or for one (``SHAPE=X``), as ``--flops-per-step``
    takes it.

    >>> rule = PerShape.parse(["2e9", "w512=8e9"])
    >>> rule.get("w256"), rule.get("w512")
    (2000000000.0, 8000000000.0)
    """

    default: float | None = None
    named: tuple[tuple[str, float], ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str], option: str = "--flops-per-step") -> PerShape:
        default, named = None, {}
        for item in items:
            name, _, text = item.rpartition("=")
            try:
                value = float(text)
            except ValueError:
                raise InputError(f"{option} {item!r}: expected X or SHAPE=X, X a number"
                                 ) from None
            if not 0 < value < math.inf:
                raise InputError(f"{option} {item!r}: must be positive and finite")
            if name in named or (not name and default is not None):
                raise InputError(f"{option}: {name or 'the value for all shapes'} given twice")
            if name:
                named[name] = value
            else:
                default = value
        return cls(default, tuple(named.items()))

    def get(self, shape: str) -> float | None:
        return dict(self.named).get(shape, self.default)

    def __bool__(self) -> bool:
        return self.default is not None or bool(self.named)


@dataclass(frozen=True)
class LogSpec:
    """What to read from a log: the loss (``loss``, else the first of ``LOSS_NAMES`` it has)
    and the FLOPs: a column of cumulative FLOPs (``flops``), or the step times
    ``flops_per_step``, or the tokens (column ``tokens``) times ``flops_per_token``."""

    loss: str | None = None
    flops: str | None = None
    tokens: str = "num_input_tokens_seen"  # the HF Trainer's, with include_num_input_tokens_seen
    flops_per_step: PerShape = PerShape()
    flops_per_token: PerShape = PerShape()

    def options(self) -> dict[str, Any]:
        """The options given, as a law file's provenance records them."""
        given = {"log_loss": self.loss, "log_flops": self.flops,
                 "log_tokens": self.tokens if self.flops_per_token else None,
                 "flops_per_step": _shown(self.flops_per_step),
                 "flops_per_token": _shown(self.flops_per_token)}
        return {key: value for key, value in given.items() if value}


def _shown(rule: PerShape) -> list[str]:
    return ([] if rule.default is None else [f"{rule.default:g}"]) + [
        f"{name}={value:g}" for name, value in rule.named]


def log_format(path: str | os.PathLike) -> str | None:
    """The format of the log at ``path`` (see the module's list), by its name, else by its
    content; None for any other file (a ``curve.jsonl`` of a shapeshift run, a CSV of points).
    """
    name = Path(path).name
    if name == "trainer_state.json":
        return "huggingface"
    if name.startswith(_TENSORBOARD_PREFIX):
        return "tensorboard"
    if name == "wandb-history.jsonl":
        return "wandb"
    if name == "metrics.csv":
        return "lightning"
    suffix = Path(path).suffix.lower()
    if not os.path.isfile(path):  # a FIFO would block the open
        return None
    try:
        with open(path, encoding=ENCODING) as handle:
            head = handle.readline() if suffix != ".json" else handle.read()
    except (OSError, UnicodeDecodeError):
        return None
    if suffix == ".json":
        try:
            state = parse_json(head, str(path))
        except BadInputFile:
            return None
        return "huggingface" if isinstance(state, dict) and "log_history" in state else None
    if suffix == ".csv":
        try:
            header = next(csv.reader([head]), [])
        except csv.Error:  # a NUL byte, say: no log; the CSV reader says what is wrong
            return None
        if "_step" in header:
            return "wandb"
        if _EXPORT_STEP in header and any(_EXPORT_SEPARATOR in name for name in header):
            return "wandb-export"
        return "lightning" if {"step", "epoch"} <= set(header) else None
    if suffix in (".jsonl", ".ndjson"):
        try:
            first = parse_json(head, str(path))
        except BadInputFile:
            return None
        return "wandb" if isinstance(first, dict) and "_step" in first else None
    return None


def read_log(path: str | os.PathLike, shape_name: str, spec: LogSpec) -> list[dict]:
    """The evaluations in the log at ``path`` as a run's records of the shape ``shape_name``
    (its axes unknown: ``shape`` is empty), in order of step; a ``BadInputFile`` names the
    file and what was missing. A W&B chart export holds several runs: each is the shape its
    run is named, one after another."""
    fmt = log_format(path)
    if fmt is None:
        raise BadInputFile(f"{path}: not a training log shapeshift reads (trainer_state.json, "
                           "metrics.csv, events.out.tfevents.*, a W&B history with _step or "
                           "a W&B chart export)")
    check_input_file(path, "log")
    try:
        runs = (_wandb_export_runs(str(path)) if fmt == "wandb-export"
                else {shape_name: list(_READERS[fmt](str(path)))})
    except UnicodeDecodeError as err:
        raise not_utf8(path, err) from None
    return [record for name, rows in runs.items()
            for record in _evaluations(path, fmt, name, rows, spec)]


def _evaluations(path: str | os.PathLike, fmt: str, shape_name: str, rows: list[Row],
                 spec: LogSpec) -> list[dict]:
    """The records of one run's rows, in order of step."""
    keys = sorted({key for _, row, _, _ in rows for key in row})
    loss = spec.loss or next((name for name in LOSS_NAMES if name in keys), None)
    if loss not in keys:
        wanted = repr(spec.loss) if spec.loss else f"like {', '.join(LOSS_NAMES[:3])}"
        raise BadInputFile(f"{path}: no {_KEY[fmt]} {wanted}; its {_KEY[fmt]}s are "
                           f"{', '.join(map(repr, keys)) or 'none'}; use --log-loss")
    per_unit, units = _flops_rule(path, shape_name, spec, keys)
    records = []
    for step, row, where, seconds in sorted(rows, key=lambda row: row[0]):
        if loss not in row:
            continue
        flops = per_unit * (step if units is None else _value(row, units, path, where))
        record = {"event": "eval", "step": step, "flops": flops,
                  "eval_loss": _value(row, loss, path, where), "shape_name": shape_name,
                  "shape": {}}
        records.append(record if seconds is None else {**record, "time": seconds})
    return records


def _flops_rule(path: str | os.PathLike, shape: str, spec: LogSpec,
                keys: Sequence[str]) -> tuple[float, str | None]:
    """For ``shape``: FLOPs per unit, and the column counting the units (None: the step)."""
    rules = [(1.0, spec.flops)] if spec.flops is not None else []
    for rule, column in ((spec.flops_per_step, None), (spec.flops_per_token, spec.tokens)):
        if rule.get(shape) is not None:
            rules.append((rule.get(shape), column))
    if len(rules) != 1:
        problem = "no FLOPs" if not rules else "FLOPs given more than one way"
        raise InputError(f"{path}: {problem} for shape {shape!r}: give one of --log-flops "
                         f"COLUMN, --flops-per-step [{shape}=]X, --flops-per-token "
                         f"[{shape}=]X{_total_flos_hint(path)}")
    per_unit, column = rules[0]
    if column is not None and column not in keys:
        raise BadInputFile(f"{path}: no column {column!r} for the FLOPs; its columns are "
                           f"{', '.join(map(repr, keys))}")
    return per_unit, column


def _total_flos_hint(path: str | os.PathLike) -> str:
    """For a trainer_state.json: the FLOPs per step the Trainer's own count implies."""
    if log_format(path) != "huggingface":
        return ""
    state = _trainer_state(str(path))
    total, steps = state.get("total_flos"), state.get("global_step")
    if not (isinstance(total, (int, float)) and isinstance(steps, int) and total > 0 < steps):
        return ""
    return (f" (its total_flos / global_step is {total / steps:.4g}, the Trainer's 6 x "
            "parameters x tokens estimate)")


def _value(row: dict[str, Any], key: str, path: str | os.PathLike, where: str) -> float:
    value = finite_number(row.get(key), f"{path}: {where}: {key!r}")
    if value < 0:
        raise BadInputFile(f"{path}: {where}: {key!r} is {value:g}, not a number >= 0")
    return value


def _trainer_state(path: str) -> dict:
    with open(path, encoding=ENCODING) as handle:
        state = parse_json(handle.read(), path, "a trainer_state.json")
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise BadInputFile(f"{path}: no 'log_history' list (a Hugging Face trainer_state.json "
                           "holds one)")
    return state


def _huggingface_rows(path: str) -> Iterator[Row]:
    for index, entry in enumerate(_trainer_state(path)["log_history"]):
        where = f"log_history[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            raise BadInputFile(f"{path}: {where}: an entry without an integer 'step'")
        yield entry["step"], entry, where, None


def _records(path: str, steps: Sequence[str], fmt: str) -> Iterator[Row]:
    """Rows of a CSV or JSONL log, cells left empty (a metric not logged at that step) left
    out; the step is the first of ``steps`` the row has, W&B's ``_runtime`` the seconds."""
    for line, record in read_records(path, fmt):
        row = {key: value for key, value in record.items() if value != ""}
        runtime = row.get("_runtime")
        yield _row(row, steps, path, f"line {line}",
                   None if runtime is None else _value(row, "_runtime", path, f"line {line}"))


def _row(row: dict[str, Any], steps: Sequence[str], path: str, where: str,
         seconds: float | None) -> Row:
    key = next((key for key in steps if key in row), None)
    if key is None:
        raise BadInputFile(f"{path}: {where}: no step column ({' or '.join(steps)})")
    step = _value(row, key, path, where)
    if not step.is_integer():
        raise BadInputFile(f"{path}: {where}: step {step:g} is not a whole number")
    return int(step) + (1 if key in _LIGHTNING_STEPS else 0), row, where, seconds


def _lightning_rows(path: str) -> Iterator[Row]:
    return _records(path, ("step",), "csv")


def _wandb_rows(path: str) -> Iterator[Row]:
    return _records(path, _WANDB_STEPS, "csv" if path.lower().endswith(".csv") else "jsonl")


def _wandb_export_runs(path: str) -> dict[str, list[Row]]:
    """The rows of each run of a W&B chart export, by run name: a row per line where the run
    has a value, its metrics by name (the bands around a grouped line left out)."""
    runs: dict[str, list[Row]] = {}
    for line, record in read_records(path, "csv"):
        by_run: dict[str, dict[str, Any]] = {}
        for column, value in record.items():
            run, separator, metric = column.rpartition(_EXPORT_SEPARATOR)
            if separator and value != "" and not metric.endswith(_EXPORT_BANDS):
                by_run.setdefault(run, {_EXPORT_STEP: record.get(_EXPORT_STEP, "")})[
                    metric] = value
        for run, row in by_run.items():
            runs.setdefault(run, []).append(
                _row(row, (_EXPORT_STEP,), path, f"line {line}", None))
    return runs


def _tensorboard_rows(path: str) -> Iterator[Row]:
    """One row per step, with every scalar tag logged at it, plain (``simple_value``) or
    tensor-valued, from every event file in the folder of ``path`` (a restarted run writes
    another) in the order of their names, as TensorBoard reads them: where a later file logs
    a step again, its values win. Seconds since the first event."""
    try:
        from tensorboard.backend.event_processing.plugin_event_accumulator import (
            EventAccumulator,
        )
        from tensorboard.util.tensor_util import make_ndarray
    except ImportError:
        raise InputError(f"{path}: reading TensorBoard event files needs the tensorboard "
                         "package: pip install 'shapeshift[tensorboard]'") from None
    rows: dict[int, dict[str, Any]] = {}
    wall: dict[int, float] = {}
    for file in sorted(Path(path).parent.glob(_TENSORBOARD_PREFIX + "*")):
        events = EventAccumulator(str(file), size_guidance={"tensors": 0})
        try:
            events.Reload()
        except Exception as err:  # the reader raises types of its own (and protobuf's)
            raise BadInputFile(f"{file}: not a readable TensorBoard event file ({err})"
                               ) from None
        steps: dict[int, dict[str, Any]] = {}
        for tag in events.Tags()["tensors"]:
            if events.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
                continue  # text, histograms, hyperparameters: no loss
            for event in events.Tensors(tag):
                value = float(make_ndarray(event.tensor_proto))
                steps.setdefault(event.step, {"step": event.step})[tag] = value
                wall[event.step] = max(wall.get(event.step, event.wall_time), event.wall_time)
        rows.update(steps)
    start = min(wall.values(), default=0.0)
    for step, row in rows.items():
        yield step, row, f"step {step}", wall[step] - start


_READERS = {"huggingface": _huggingface_rows, "lightning": _lightning_rows,
            "tensorboard": _tensorboard_rows, "wandb": _wandb_rows}
_KEY = {"huggingface": "key", "lightning": "column", "tensorboard": "tag", "wandb": "column",
        "wandb-export": "metric"}


def one_file_per_run(paths: Sequence[Path]) -> list[Path]:
    """``paths`` without the TensorBoard event files after the first of each folder: any of
    them reads the folder's whole run (``_tensorboard_rows``), so a shell's
    ``runs/w8/events.*`` is one run, not one per file.

    >>> files = ["w8/events.out.tfevents.1", "w8/events.out.tfevents.2",
    ...          "w16/events.out.tfevents.1", "w8/metrics.csv"]
    >>> [str(path) for path in one_file_per_run(list(map(Path, files)))]
    ['w8/events.out.tfevents.1', 'w16/events.out.tfevents.1', 'w8/metrics.csv']
    """
    kept, folders = [], set()
    for path in paths:
        if path.name.startswith(_TENSORBOARD_PREFIX):
            folder = os.path.abspath(path.parent)
            if folder in folders:
                continue
            folders.add(folder)
        kept.append(path)
    return kept


def log_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """A shape name for each log: the first folder (or file stem) in which the paths differ,
    so ``runs/w256/lightning_logs/version_0/metrics.csv`` is ``w256`` beside ``runs/w512/...``;
    a single log takes its folder's name. Logs of one shape (several seeds) share a name.

    >>> log_names(["runs/w256/seed0/metrics.csv", "runs/w512/seed0/metrics.csv"])
    ['w256', 'w512']
    >>> log_names(["exports/small.csv", "exports/large.csv"]), log_names(["w1/metrics.csv"])
    (['small', 'large'], ['w1'])
    """
    parts = [Path(os.path.abspath(path)).parts for path in paths]
    if len(parts) <= 1:
        return [Path(os.path.abspath(path)).parent.name or Path(path).stem for path in paths]
    depth = next((k for k in range(min(map(len, parts)))
                  if len({p[k] for p in parts}) > 1), min(map(len, parts)) - 1)
    return [Path(p[depth]).stem if depth == len(p) - 1 else p[depth] for p in parts]
