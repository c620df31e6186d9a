"""Cool-down branches: the annealed loss at several budgets from one constant-rate run.

    train("mlp-width", {"width": 8}, 1e8, config=TrainConfig(keep_at=(1e7, 3e7)),
          run_dir="runs/const")                      # keeps branch-0.pt, branch-1.pt
    rows = cool_down("runs/const", share=0.2)         # runs/const/cooldown-0.2/annealed.jsonl
    rows[0]["annealed_loss"], rows[0]["constant_loss"]

Why a branch is exact. A wsd run of budget B and cool-down share f trains at the peak rate
until its trained FLOPs reach (1 - f) B (``validate/schedule.py``): up to there it is the
constant-rate run with the same settings, step for step, in its weights, optimizer, data order
and generators. So the constant run's state kept at a step boundary with C trained FLOPs,
continued with budget B = C / (1 - f), schedule wsd and cool-down f, IS the wsd run of budget
B from then on, and ends with the weights that run ends with, bit for bit on CPU
(``tests/validate/test_cooldown.py``). Two things of the kept state depend on the budget and
are set again for B: the rate of the next step (the wsd factor at C / B, 1 up to rounding) and
how many of B's evaluation levels lie behind.

A run that switches shape (``--switch-at``, a plan's ``planned`` policy) branches too: its
switches belong to the stable phase, and the anneal ends the run, so a branch cools down at the
shape the run is on at C and never switches again. The branch IS the wsd run of budget B whose
policy is the kept run's schedule up to C and then stays: the segments before the one the run
is on at C, then that shape to the end (``branch_policy``; a static run keeps its policy). A
branch records that policy, so a resumed branch is checked against it and continues it
exactly. Kept after a switch at ``flops=X``, a branch ends bit for bit like the straight wsd
run of budget B with the same switch; kept before X, it cools down at the first shape even
where B lies past X (``tests/validate/test_cooldown_switching.py``). A policy that is neither
static nor a schedule, or one that re-planned its schedule before C (``online``), is refused:
what it would have done from C on without switching is not written down anywhere.

Each branch is a run folder (``OUT/branch-<index>/``: ``curve.jsonl``, ``checkpoint.pt``,
``result.json``) that starts as if resumed from its kept state, so a killed branch resumes like
any run; its curve holds the constant run's evaluations up to C (the last one at C: a keep
point is evaluated), then B's evaluation levels past C and the end. ``annealed.jsonl`` has one
row per branch: ``branch`` (its folder), ``flops`` (C), ``step``, ``budget`` (B), ``share``,
``constant_loss`` (the evaluation at C), ``annealed_loss`` (at the end of the branch),
``annealed_flops`` (the FLOPs trained by then, the last step boundary within B) and ``shape``
(the name of the shape the branch cooled down at).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from laws.errors import InputError
from laws.io.atomic import check_writable, write_text_atomic
from laws.io.lock import holding
from sim.policies import Policy, Scheduled, Static
from validate.checkpoints import (
    CHECKPOINT,
    kept_state_paths,
    policy_record,
    read_state,
    write_state,
)
from validate.config import TrainConfig
from validate.train import RESULT, train

ANNEALED = "annealed.jsonl"
# Each kept state is a whole copy of the run and each branch a run of its own.
MAX_KEPT = 1000
# The settings of a run that are not TrainConfig's: what it trains and its budget.
_RUN_KEYS = ("task", "shape", "budget_flops", "shapes", "policy")
# What a branch does not take from the constant run: its budget, schedule and keep points.
_NOT_INHERITED = (*_RUN_KEYS, "schedule", "cooldown", "keep_at")


def parse_keep_at(text: str, budget: float, first_eval: float) -> tuple[float, ...]:
    """``--keep-at``: FLOP levels ``F1,F2,...``, or ``auto:K`` for K levels spaced
    geometrically from the first evaluation (``first_eval`` of the budget) up to, not at, the
    budget (a state at the budget has nothing left to cool down in).

    >>> parse_keep_at("1e6,3e6", 1e7, 0.01)
    (1000000.0, 3000000.0)
    >>> [round(level) for level in parse_keep_at("auto:2", 1e4, 0.01)]
    [100, 1000]
    """
    if text.startswith("auto:"):
        count = text.removeprefix("auto:")
        if not count.isdecimal() or not 1 <= int(count) <= MAX_KEPT:
            raise InputError(f"--keep-at {text}: auto:K takes a whole number K from 1 to "
                             f"{MAX_KEPT}")
        return tuple(budget * first_eval ** (1 - i / int(count)) for i in range(int(count)))
    try:
        return tuple(float(level) for level in text.split(","))
    except ValueError:
        raise InputError(f"--keep-at {text}: expected FLOP levels F1,F2,... or auto:K") from None


def branch_budget(flops: float, share: float) -> float:
    """The budget of a wsd run with cool-down ``share`` that leaves the peak rate at ``flops``.

    >>> branch_budget(8e6, 0.2)
    10000000.0
    """
    return flops / (1 - share)


def cool_down(run_dir: str | Path, share: float, out_dir: str | Path | None = None, *,
              device: str = "cpu", checkpoint_every: int = 500,
              progress: bool = True) -> list[dict]:
    """Branch a cool-down of ``share`` from each state that ``run_dir`` kept, each into
    ``out_dir/branch-<index>/`` (default ``out_dir``: ``run_dir/cooldown-<share>``), and write
    ``annealed.jsonl`` there; returns its rows (see the module docstring). Branches finished
    before are read, not trained again; a killed one resumes. Every branch is checked before
    any trains."""
    if not (isinstance(share, float | int) and 0 < share < 1):
        raise InputError(f"--share {share}: must be a share of the budget in (0, 1)")
    run_dir = Path(run_dir)
    kept = kept_state_paths(run_dir)
    if not kept:
        raise InputError(f"{run_dir} holds no kept states (branch-<index>.pt); train the "
                         "constant-rate run with --keep-at")
    out = Path(out_dir) if out_dir is not None else run_dir / f"cooldown-{share:g}"
    check_writable(out / ANNEALED)
    with holding(out):
        config = TrainConfig(schedule="wsd", cooldown=share, device=device,
                             checkpoint_every=checkpoint_every)
        branches = [_Branch.of(path, out / path.stem, config) for path in kept]
        rows = []
        for number, branch in enumerate(branches, 1):
            if progress:
                print(f"branch {number}/{len(branches)}: {branch.source.name}, step "
                      f"{branch.step}, {branch.flops:.4g} FLOPs -> {branch.budget:.4g}",
                      file=sys.stderr, flush=True)
            rows.append(branch.run(progress))
        write_text_atomic(out / ANNEALED, "".join(json.dumps(row) + "\n" for row in rows))
    return rows


@dataclass(frozen=True)
class _Branch:
    """The branch of the state kept in ``source``, trained in ``folder``: its config and
    recorded settings, and what its row reads from the kept state."""

    source: Path
    folder: Path
    step: int
    flops: float
    budget: float
    shape: str
    policy: Policy
    config: TrainConfig
    recorded: dict
    constant_loss: float

    @classmethod
    def of(cls, source: Path, folder: Path, wsd: TrainConfig) -> _Branch:
        """The branch of ``source`` with ``wsd``'s cool-down and device; refused (before any
        branch trains) when it cannot be one: a state of a run that decays, of a policy that
        is neither static nor a schedule fixed up to C, a cool-down with no whole step in it,
        or ``folder`` holding a branch with other settings."""
        state = torch.load(source, weights_only=False)
        parent, controller = state["config"], state["controller"]
        if parent.get("schedule", "constant") != "constant":
            raise InputError(f"{source}: only a constant-rate run's state branches")
        shape = controller["shape_name"]
        policy = branch_policy(parent["policy"], controller["policy"], shape, source)
        step, flops = controller["steps"], controller["trained_flops"]
        budget = branch_budget(flops, wsd.cooldown)
        step_flops = controller["step_flops"][shape]
        if flops + step_flops > budget:
            raise InputError(f"{source}: a cool-down of {wsd.cooldown:g} from {flops:.4g} FLOPs "
                             f"holds no step of {step_flops:.4g}; keep later points or give "
                             "a larger --share")
        config = replace(wsd, **{key: value for key, value in parent.items()
                                 if key not in _NOT_INHERITED})
        recorded = {**{key: parent[key] for key in _RUN_KEYS}, "budget_flops": budget,
                    "policy": policy_record(policy), **config.recorded()}
        constant = [record["eval_loss"] for record in controller["records"]
                    if record["event"] == "eval" and record["step"] == step]
        if not constant:
            raise InputError(f"{source}: the kept state holds no evaluation at its step")
        branch = cls(source, folder, step, flops, budget, shape, policy, config, recorded,
                     constant[-1])
        branch.check_folder()
        return branch

    def check_folder(self) -> None:
        """Refuse a folder that holds a branch begun with other settings (another share)."""
        if (self.folder / RESULT).is_file():
            saved = json.loads((self.folder / RESULT).read_text())["config"]
            if saved != json.loads(json.dumps(self.recorded)):
                raise InputError(f"{self.folder} holds a branch made with other settings; "
                                 "choose another output folder")
        elif (self.folder / CHECKPOINT).is_file():
            read_state(self.folder / CHECKPOINT, self.recorded)

    def run(self, progress: bool) -> dict:
        """Train the branch, or continue it, or read it when finished; its row."""
        if (self.folder / RESULT).is_file():
            final = json.loads((self.folder / RESULT).read_text())["final"]
        else:
            if not (self.folder / CHECKPOINT).is_file():
                self.folder.mkdir(parents=True, exist_ok=True)
                write_state(self.folder / CHECKPOINT, self.retargeted(
                    torch.load(self.source, weights_only=False)))
            parent = self.recorded
            final = train(parent["task"], parent["shape"], self.budget, self.policy,
                          self.config, shapes=parent["shapes"], run_dir=self.folder,
                          resume=True, progress=progress).final
        return {"branch": self.folder.name, "flops": self.flops, "step": self.step,
                "budget": self.budget, "share": self.config.cooldown, "shape": self.shape,
                "constant_loss": self.constant_loss, "annealed_loss": final["eval_loss"],
                "annealed_flops": final["flops"]}

    def retargeted(self, state: dict) -> dict:
        """The kept state as the checkpoint of the wsd run of this budget at the same step:
        its settings, its policy's state, the evaluation levels behind it, and the rate of the
        next step as that run's scheduler sets it (base rate times the factor at the FLOPs
        spent)."""
        scheduler, optimizer = state["scheduler"], state["optimizer"]
        factor = self.config.lr_factor(scheduler["last_epoch"], self.flops / self.budget)
        rates = [base * factor for base in scheduler["base_lrs"]]
        for group, rate in zip(optimizer["param_groups"], rates, strict=True):
            group["lr"] = rate
        behind = sum(level <= self.flops for level in self.config.eval_levels(self.budget))
        controller = {**state["controller"], "policy": _state_on_last_shape(self.policy)}
        return {**state, "config": self.recorded, "controller": controller,
                "scheduler": {**scheduler, "_last_lr": rates},
                "loop": {**state["loop"], "next_eval": behind}}


def branch_policy(record: dict, live: dict, shape: str, source: Path) -> Policy:
    """The policy of a branch from a state kept on ``shape``: the kept run's policy (its
    ``record``, its per-run state ``live``) up to C, then ``shape`` to the end. A static run's
    is its own; a schedule's is its segments up to the one it is on, which becomes its last
    (never left). A policy of another kind, or a schedule re-planned before C (``online``),
    does not say what the run would have done without its switches ahead: refused.

    >>> live = {"schedule": [("a", -math.inf, 5e6), ("b", -math.inf, math.inf)], "segment": 1}
    >>> record = {"name": "s", "schedule": [["a", None, 5e6], ["b", None, None]]}
    >>> branch_policy(record, live, "b", Path("branch-1.pt")).schedule
    [('a', -inf, 5000000.0), ('b', -inf, inf)]
    >>> branch_policy(record, {**live, "segment": 0}, "a", Path("branch-0.pt")).schedule
    [('a', -inf, inf)]
    """
    if record["name"] == f"static:{shape}":
        return Static(shape)
    if "schedule" not in record or policy_record(
            Scheduled(record["name"], live["schedule"])) != record:
        raise InputError(f"{source}: its policy {record['name']!r} is neither static nor a "
                         "schedule followed as given up to the kept state; a branch cannot "
                         "tell which shapes it trains")
    return Scheduled(record["name"], [*live["schedule"][:live["segment"]], (shape, -math.inf)])


def _state_on_last_shape(policy: Policy) -> dict:
    """The per-run state of a branch's policy from C on, as the controller saves it: a
    schedule on its last segment, with the hints ``Scheduled`` sets there (ask nothing: the
    segment is never left), which the kept run's state does not hold while it had switches
    ahead."""
    state = dict(vars(policy))
    if isinstance(policy, Scheduled):
        state.update(segment=len(policy.schedule) - 1, stay_above=-math.inf,
                     stay_level_above=math.inf, ask_at_flops=math.inf)
    return state
