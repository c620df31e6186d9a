"""A run's saved states: ``checkpoint.pt``, from which a killed run resumes, and the kept states
``branch-<index>.pt`` of ``TrainConfig.keep_at``, from which cool-down branches start
(``validate/cooldown.py``).

    write_state(run_dir / CHECKPOINT, state)          # atomically: the old file or the new
    saved = read_state(run_dir / CHECKPOINT, recorded) # refused if made with other settings
    kept_state_paths(run_dir)                          # [run_dir / "branch-0.pt", ...]

Each is one torch file holding everything a run continues from: its recorded settings
(``config``), the evaluation progress (``loop``), the controller's, model's, optimizer's and
scheduler's states, the batch-order generator, torch's global generator and the weights'
average. A kept state is the same thing at another step, so a branch continues from it exactly
as a resumed run continues from its checkpoint.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import torch

from laws.errors import InputError
from laws.io.atomic import write_bytes_atomic
from sim.policies import Policy, Scheduled

CHECKPOINT = "checkpoint.pt"
_KEPT = re.compile(r"branch-(\d+)\.pt")


def write_state(path: Path, state: dict) -> None:
    """Save ``state`` to ``path`` in one rename, so that a kill leaves the old file or the new."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def read_state(path: Path, recorded: dict) -> dict:
    """The state saved at ``path``, refused unless its settings are ``recorded``."""
    saved = torch.load(path, weights_only=False)
    if saved["config"] != recorded:
        differs = next(key for key in recorded if saved["config"].get(key) != recorded[key])
        raise InputError(f"{path} was made with another {differs!r}; resume it with the "
                         "options it was started with")
    return saved


def policy_record(policy: Policy) -> dict:
    """The policy as checkpoints and ``result.json`` record it: its name and, for a schedule,
    its segments [shape, loss level, FLOP level] (None: no such level)."""
    record: dict = {"name": policy.name}
    if isinstance(policy, Scheduled):
        record["schedule"] = [[shape, loss if loss > -math.inf else None,
                               flops if flops < math.inf else None]
                              for shape, loss, flops in policy.schedule]
    return record


def kept_state_path(run_dir: Path, index: int) -> Path:
    """Where a run keeps its state for its ``index``-th keep point (0 for the first).

    >>> kept_state_path(Path("runs/a"), 2).as_posix()
    'runs/a/branch-2.pt'
    """
    return run_dir / f"branch-{index}.pt"


def kept_state_paths(run_dir: Path) -> list[Path]:
    """The kept states in ``run_dir``, in the order of their keep points."""
    found = [(int(match[1]), path) for path in (run_dir.glob("branch-*.pt"))
             if (match := _KEPT.fullmatch(path.name))]
    return [path for _, path in sorted(found)]


def check_keep_points(keep_at: tuple[float, ...], budget: float,
                      run_dir: str | Path | None) -> None:
    """Refuse keep points a run cannot keep: without a run folder to keep them in, or at or
    past the budget (the state at the end has no budget left to cool down in). A run that
    switches shape keeps states too: a keep point is evaluated, and its policy sees that
    evaluation, unless the keep level is one of the run's evaluation levels (one evaluation
    for both: ``validate/train.py``)."""
    if not keep_at:
        return
    if run_dir is None:
        raise InputError("--keep-at: a run keeps its states in its run folder; give one")
    if not math.isfinite(budget) or keep_at[-1] >= budget:
        raise InputError(f"--keep-at {keep_at[-1]:g}: must lie below the budget {budget:g}")
