"""One training run as a SimPy process.

The run trains in chunks of ``eval_every`` FLOPs, each followed by an evaluation. Its true loss
follows the truth law of its current shape from its current position on that curve; an
evaluation observes true loss x (1 + noise x N(0, 1)) and costs ``eval_seconds``. After each
evaluation the policy may switch shape: the run pays the transition (FLOPs and/or seconds) and
lands on the new shape's curve at the loss it had (C_Q(loss), plus the penalty, see
``SimConfig``). The run stops when ``confirm`` consecutive evaluations observe the target (the
target counts as reached at the first of them: that is the model one keeps) or when a budget
runs out. Failures, repair and checkpoints follow ``FaultModel``; ``Ledger`` accounts for
every second and FLOP.

Time: FLOPs / (per-accelerator throughput of the shape x accelerators of the run).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from laws.errors import InputError
from laws.graph import allowed_switches
from laws.lawset import LawSet, Transitions
from sim.accounting import CHECKPOINT, EVAL, TRANSITION, USEFUL, Ledger
from sim.config import DEFAULT_BUDGET_FACTOR, DEFAULT_EVALS_PER_RUN, SimConfig, best_static_compute
from sim.policies import Policy
from sim.results import RunRecord

_BLOCK = 256  # losses computed per numpy call: keeps law evaluation off the per-event path


@dataclass(frozen=True)
class RunSetup:
    """What every run of one simulation shares: truth laws, target, resolved settings."""

    truth: LawSet
    target: float
    config: SimConfig
    eval_every: float
    max_compute: float
    max_seconds: float
    throughput: dict[str, float]
    transitions: Transitions
    allowed: frozenset[tuple[str, str]]  # (from, to) shape names a run may switch between


def make_setup(laws: LawSet, truth: LawSet | None, target: float, config: SimConfig) -> RunSetup:
    """Resolve defaults (eval interval, budget) from the planning laws; check the truth laws.

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import LawSet, Shape
    >>> laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),))
    >>> make_setup(laws, None, 2.0, SimConfig()).eval_every  # C_a(2) = 16, / 1000
    0.016
    """
    truth = truth or laws
    missing = [name for name in laws.names if name not in truth.names]
    if missing:
        raise InputError(f"truth law set {truth.name!r} lacks shape(s) {', '.join(missing)} "
                         "of the planning laws")
    best = best_static_compute(laws, target)[1]
    max_hours = config.max_hours
    transitions = config.transitions(truth)
    allowed = allowed_switches(truth, transitions.allowed)
    return RunSetup(
        truth=truth,
        target=target,
        config=config,
        eval_every=config.eval_every or best / DEFAULT_EVALS_PER_RUN,
        max_compute=config.max_compute or DEFAULT_BUDGET_FACTOR * best,
        max_seconds=math.inf if max_hours is None else max_hours * 3600.0,
        throughput=config.throughputs(truth),
        transitions=transitions,
        allowed=frozenset((p, q) for i, p in enumerate(truth.names)
                          for j, q in enumerate(truth.names) if allowed[i, j]),
    )


@dataclass(slots=True)
class _Snapshot:
    """The state a checkpoint restores."""

    shape: str
    position: float
    penalty: float
    penalty_from: float
    policy: Policy
    lowest_observed: float
    switches: int
    history_length: int


class TrainingRun:
    """State and SimPy process of one run; policies read the attributes named in policies.py."""

    def __init__(self, env: simpy.Environment, setup: RunSetup, policy: Policy,
                 accelerators: int, seed: np.random.SeedSequence, labels: dict[str, Any]) -> None:
        self.env = env
        self.setup = setup
        self.accelerators = accelerators
        self.labels = labels
        self.seed = seed
        self.fault_rng: np.random.Generator | None = None
        self.policy = policy.clone()
        self.wants_history = policy.wants_history
        self.ledger = Ledger()
        self.faults = setup.config.faults
        self.mtbf = self.faults.run_mtbf_seconds(accelerators) if self.faults else math.inf
        self.checkpoint_every = (self.faults.checkpoint_interval(accelerators)
                                 if self.faults else math.inf)
        self.observed = self.lowest_observed = math.inf
        self.evaluations = self.switches = self.failures = 0
        self.history: list[tuple[str, float, float]] = []
        self.trajectory: list[tuple[float, float, float, float, str]] = []
        self.events: list[tuple[float, str, str]] = []
        self.penalty = self.penalty_from = 0.0

    # -- what policies read -------------------------------------------------------------------

    @property
    def trained_flops(self) -> float:
        """Useful training FLOPs so far (pending work included)."""
        return self.ledger.kept_f[USEFUL] + self.ledger.pending_f[USEFUL]

    @functools.cached_property
    def policy_rng(self) -> np.random.Generator:
        return self._stream(2)

    @property
    def position(self) -> float:
        """Compute coordinate on the current shape's truth curve."""
        return self.base + self.steps * self.setup.eval_every

    # -- the process --------------------------------------------------------------------------

    def process(self, submitted: float = 0.0):
        """The SimPy process; returns the run's ``RunRecord``.

        Hot path: a chunk that no failure interrupts is two timeouts (train, evaluate) and a
        count in ``unsettled``; ``_settle`` charges the counted chunks to the ledger before
        anything else reads or changes it (policy, failure, switch, checkpoint, end). State the
        loop keeps in locals (``steps``, ``block``) is written back before helpers and read
        again after them.
        """
        env, setup, ledger = self.env, self.setup, self.ledger
        self.granted = env.now
        self.submitted = submitted
        self._enter(self.policy.begin(self), 0.0)
        self.events.append((env.now, "start", self.shape_name))
        self.snapshot = self._snapshot()
        self.fails_at = env.now + self._draw_failure()
        self.checkpoint_due = env.now + self.checkpoint_every
        dx, sigma, target = setup.eval_every, setup.config.noise, setup.target
        confirm, eval_seconds = setup.config.confirm, setup.config.eval_seconds
        keep_trajectory = setup.config.trajectories
        max_compute, deadline = setup.max_compute, self.granted + setup.max_seconds
        timeout, keep_row = env.timeout, self.trajectory.append
        noise_rng = self._stream(0) if sigma else None
        noise: list[float] = []
        streak, reached_at, unsettled, evaluations = 0, None, 0, 0
        wants_history = self.wants_history
        (steps, block, penalty, fails_at, checkpoint_due, stay_above,
         train_seconds, eval_flops, chunk_seconds, chunk_flops) = self._hot_state()
        while True:
            now = env.now
            if now + chunk_seconds < fails_at:
                yield timeout(train_seconds)
                now += train_seconds  # what SimPy computes: env.now is the event's time
                if eval_seconds:
                    yield timeout(eval_seconds)
                    now += eval_seconds
                unsettled += 1
            else:
                unsettled = self._settle(unsettled)
                self.steps = steps
                completed = ((yield from self._work(USEFUL, train_seconds, dx))
                             and (yield from self._work(EVAL, eval_seconds, eval_flops)))
                (steps, block, penalty, fails_at, checkpoint_due, stay_above,
                 train_seconds, eval_flops, chunk_seconds, chunk_flops) = self._hot_state()
                if not completed:
                    streak, reached_at = 0, None
                    continue
                now = env.now
            spent = ledger.spent_f + unsettled * chunk_flops
            steps += 1
            if steps > len(block):
                self.steps = steps
                block = self._rebase()
                steps = 1
            true_loss = block[steps - 1]
            if penalty:
                self.steps = steps
                true_loss += self._transient()
            if not noise:
                noise = noise_rng.standard_normal(_BLOCK).tolist() if sigma else [0.0] * _BLOCK
            observed = true_loss * (1.0 + sigma * noise.pop())
            if observed < self.lowest_observed:
                self.lowest_observed = observed
            evaluations += 1
            if wants_history:
                unsettled = self._settle(unsettled)
                self.history.append((self.shape_name, self.trained_flops, observed))
            if keep_trajectory:
                keep_row((now, spent, true_loss, observed, self.shape_name))
            if observed <= target:
                streak += 1
                if streak == 1:
                    reached_at = (now, spent, true_loss)
                if streak >= confirm:
                    self._settle(unsettled)
                    return self._record(reached_at, true_loss, evaluations)
            else:
                streak, reached_at = 0, None
            if spent >= max_compute or now >= deadline:
                self._settle(unsettled)
                return self._record(None, true_loss, evaluations)
            choice = None
            if observed <= stay_above:
                unsettled = self._settle(unsettled)
                self.steps = steps
                self.observed, self.evaluations = observed, evaluations
                choice = self.policy.decide(self)
                stay_above = self.policy.stay_above
            if choice is not None and choice != self.shape_name and self._allowed(choice):
                unsettled = self._settle(unsettled)
                self.steps = steps
                if not (yield from self._switch(choice, true_loss)):
                    streak, reached_at = 0, None
            elif now >= checkpoint_due:
                unsettled = self._settle(unsettled)
                self.steps = steps
                yield from self._checkpoint()
            else:
                continue
            (steps, block, penalty, fails_at, checkpoint_due, stay_above,
             train_seconds, eval_flops, chunk_seconds, chunk_flops) = self._hot_state()

    def _hot_state(self) -> tuple:
        """What the hot loop keeps in locals, read again after anything that may change it."""
        return (self.steps, self.block, self.penalty, self.fails_at, self.checkpoint_due,
                self.policy.stay_above, *self.chunk_costs)

    def _settle(self, chunks: int) -> int:
        """Charge ``chunks`` whole chunks (training and evaluation) to the ledger; returns 0,
        the count left unsettled."""
        if chunks:
            train_seconds, eval_flops = self.chunk_costs[:2]
            self.ledger.charge(USEFUL, chunks * train_seconds, chunks * self.setup.eval_every)
            self.ledger.charge(EVAL, chunks * self.setup.config.eval_seconds, chunks * eval_flops)
        return 0

    def _work(self, category: int, seconds: float, flops: float):
        """Busy for ``seconds``; False (after failure, repair and restore) if a failure hit."""
        if self.env.now + seconds < self.fails_at:
            if seconds:
                yield self.env.timeout(seconds)
            self.ledger.charge(category, seconds, flops)
            return True
        yield from self._fail(seconds, flops)
        return False

    def _fail(self, seconds: float, flops: float):
        """A failure at ``fails_at``, during an activity of ``seconds``: lose, repair, restore."""
        partial = self.fails_at - self.env.now
        yield self.env.timeout(partial)
        self.ledger.failed(partial, flops * partial / seconds)
        self.failures += 1
        self.events.append((self.env.now, "failure", self.shape_name))
        repair = self.faults.repair_seconds
        if repair:
            yield self.env.timeout(repair)
        self.ledger.repaired(repair)
        self._restore(self.snapshot)
        self.checkpoint_due = self.env.now + self.checkpoint_every
        self.fails_at = self.env.now + self._draw_failure()
        self.events.append((self.env.now, "restart", self.shape_name))

    def _switch(self, shape: str, true_loss: float):
        t = self.setup.transitions
        speed = self.setup.throughput[shape] * self.accelerators
        seconds = t.seconds + t.flops / speed
        if not (yield from self._work(TRANSITION, seconds, t.flops + t.seconds * speed)):
            return False
        old = self.shape_name
        self.switches += 1
        law = self.setup.truth.shape(shape).law
        if self.setup.config.penalty_decay_flops is None:
            self._enter(shape, _compute_at(law, true_loss + t.loss_penalty))
        else:
            carried = self._transient() if self.penalty else 0.0
            self._enter(shape, _compute_at(law, true_loss - carried))
            self.penalty, self.penalty_from = carried + t.loss_penalty, self.base
        self.events.append((self.env.now, "switch", f"{old}->{shape}"))
        return True

    def _checkpoint(self):
        seconds = self.faults.checkpoint_seconds
        if (yield from self._work(CHECKPOINT, seconds, seconds * self.speed)):
            self.ledger.checkpointed()
            self.snapshot = self._snapshot()
            self.checkpoint_due = self.env.now + self.checkpoint_every
            self.events.append((self.env.now, "checkpoint", self.shape_name))

    # -- state ----------------------------------------------------------------------------------

    def _enter(self, shape: str, position: float) -> None:
        self.shape_name = shape
        self.law = self.setup.truth.shape(shape).law
        self.speed = speed = self.setup.throughput[shape] * self.accelerators
        train_seconds = self.setup.eval_every / speed
        eval_seconds = self.setup.config.eval_seconds
        self.chunk_costs = (train_seconds, eval_seconds * speed, train_seconds + eval_seconds,
                            self.setup.eval_every + eval_seconds * speed)
        self.base, self.steps, self.block = position, 0, []
        self.penalty = 0.0

    def _rebase(self) -> list[float]:
        """The next block of true losses along the current curve (one numpy call); the
        position moves to its first entry."""
        self.base += (self.steps - 1) * self.setup.eval_every
        self.steps = 1
        offsets = self.base + self.setup.eval_every * np.arange(1, _BLOCK + 1)
        self.block = np.asarray(self.law.loss(offsets), dtype=float).tolist()
        return self.block

    def _transient(self) -> float:
        """What is left of a decaying switch penalty at the current position."""
        done = (self.position - self.penalty_from) / self.setup.config.penalty_decay_flops
        return self.penalty * max(0.0, 1.0 - done)

    def _allowed(self, shape: str) -> bool:
        return (self.shape_name, shape) in self.setup.allowed

    def _draw_failure(self) -> float:
        if not self.faults:
            return math.inf
        if self.fault_rng is None:
            self.fault_rng = self._stream(1)
        return float(self.fault_rng.exponential(self.mtbf))

    def _stream(self, index: int) -> np.random.Generator:
        """Independent streams of the run's seed: 0 noise, 1 failures, 2 policy (the children
        ``seed.spawn`` would make), so that one kind of draw never shifts another."""
        key = (*self.seed.spawn_key, index)
        return np.random.default_rng(np.random.SeedSequence(self.seed.entropy, spawn_key=key))

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(self.shape_name, self.position, self.penalty, self.penalty_from,
                         self.policy.clone(), self.lowest_observed, self.switches,
                         len(self.history))

    def _restore(self, snap: _Snapshot) -> None:
        self._enter(snap.shape, snap.position)
        self.penalty, self.penalty_from = snap.penalty, snap.penalty_from
        self.policy = snap.policy.clone()
        self.lowest_observed, self.switches = snap.lowest_observed, snap.switches
        del self.history[snap.history_length:]

    def _record(self, reached_at: tuple[float, float, float] | None, final_loss: float,
                evaluations: int) -> RunRecord:
        self.events.append((self.env.now, "target" if reached_at else "budget", self.shape_name))
        time_at, flops_at, loss_at = reached_at or (None, None, None)
        return RunRecord(
            **self.labels,
            accelerators=self.accelerators,
            reached=reached_at is not None,
            compute_to_target=flops_at,
            time_to_target=None if time_at is None else time_at - self.submitted,
            accelerator_hours=(None if time_at is None
                               else self.accelerators * (time_at - self.granted) / 3600.0),
            true_loss_at_target=loss_at,
            final_true_loss=final_loss,
            switches=self.switches,
            failures=self.failures,
            evaluations=evaluations,
            queue_seconds=self.granted - self.submitted,
            ledger=self.ledger.totals(),
            trajectory=self.trajectory,
            events=self.events,
        )


def _compute_at(law: Any, loss: float) -> float:
    """Where a run at ``loss`` lands on ``law``; just above the floor if the loss is below it."""
    floor = law.floor
    return float(law.compute(max(loss, floor + 1e-9 * max(1.0, abs(floor)))))
