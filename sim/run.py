"""One training run as a SimPy process.

The run trains in chunks of ``eval_every`` FLOPs, each followed by an evaluation. Its true loss
follows the truth law of its current shape from its current position on that curve; an
evaluation observes true loss x (1 + noise x N(0, 1)) and costs ``eval_seconds``. After each
evaluation the policy may switch shape: the run pays the transition (FLOPs and/or seconds) and
lands on the new shape's curve at the loss it had (C_Q(loss), plus the penalty: ``SimConfig``),
to follow the pair's measured transition where the truth has one (``sim.landing``). The run
stops when ``confirm`` consecutive evaluations observe the target (the target counts as reached
at the first of them: that is the model one keeps) or when a budget runs out; budgets are
checked after everything that spends time or compute, failures and repairs included. Failures
interrupt the process (``FaultModel.failures``), checkpoints follow ``FaultModel``, and
``Ledger`` accounts for every second and FLOP.

A ``TrainingRun`` is the run's state (every attribute set in ``__init__``); ``_complete`` is the
step function that applies a completed stretch of work to it, and short SimPy process methods
(``process``, ``_step``, ``_switch``, ``_checkpoint``, ``_fail``) drive it. What it keeps for
its ``RunRecord`` is a ``Recording`` (``sim.recording``), its checkpoint schedule and last
snapshot are ``Checkpoints`` (``sim.snapshot``), and what it observed (the last and lowest
losses, its level, its history) is ``Observations`` (``sim.observations``). The run does not
wait for each evaluation but for stretches of them: its look-ahead (``sim.lookahead``) holds the
true and observed losses of the next evaluations on its shape, computed at once, and finds the
first at which anything can happen (the observed loss reaches the policy's ``stay_above``, or
the run's level, the median of its recent evaluations, reaches its ``stay_level_above``:
``Observations.evaluations_to_level``; the target is confirmed; the budget or time limit is
spent); the run waits one timeout for the whole stretch. Checkpoints that fall due inside a
stretch are part of it (legs of evaluations, a checkpoint after each leg but the last): they
change nothing the stretch depends on, and would be 19 of the 26 stops of the bench's run. A
failure inside a stretch keeps what completed before it (evaluations stay in the trajectory,
checkpoints are restored from) and discards the rest; a switch discards the rest of the
look-ahead, a restart looks ahead again from the checkpoint (the same true losses, new noise).

Time: FLOPs / (per-accelerator throughput of the shape x accelerators of the run).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from sim.accounting import CHECKPOINT, EVAL, TRANSITION, USEFUL, Ledger
from sim.landing import landing
from sim.lookahead import Leg, LookAhead, completed_legs, penalty_left, plan_legs
from sim.observations import Observations
from sim.policies import Policy
from sim.recording import Recording, true_crossing
from sim.results import RunRecord
from sim.setup import RunSetup
from sim.snapshot import Checkpoints, Snapshot


class TrainingRun:
    """One run: its state, the SimPy process that drives it, and what policies read of it."""

    __slots__ = ("_env", "_setup", "_accelerators", "_seed", "_policy", "_ledger", "_faults",
                 "_checkpoints", "_recording", "_ahead", "_observations", "_policy_rng",
                 "_shape", "_law", "_speed", "_train_seconds", "_eval_flops", "_chunk_seconds",
                 "_chunk_flops", "_base", "_done", "_penalty", "_penalty_from", "_true_loss",
                 "_evaluations", "_switches", "_failures", "_streak", "_deadline", "_outcome",
                 "_busy_since", "_busy_rate", "_busy_legs")

    def __init__(self, env: simpy.Environment, setup: RunSetup, policy: Policy,
                 accelerators: int, seed: np.random.SeedSequence, labels: dict[str, Any]) -> None:
        faults = setup.config.faults
        self._env, self._setup, self._accelerators, self._seed = env, setup, accelerators, seed
        self._policy, self._ledger, self._faults = policy.clone(), Ledger(), faults
        self._checkpoints = Checkpoints(faults, accelerators)
        self._recording = Recording(labels, accelerators)
        # The next evaluations on the current shape, from ``_base`` on.
        self._ahead = LookAhead(setup.config, setup.eval_every, setup.target,
                                self._stream(0) if setup.config.noise else None)
        self._observations = Observations(self._ahead, setup.eval_every, setup.target)
        self._policy_rng: np.random.Generator | None = None
        # The shape trained now and the costs of one chunk on it (set by ``_enter``).
        self._shape = ""
        self._law: Any = None
        self._speed = self._train_seconds = self._eval_flops = 0.0
        self._chunk_seconds = self._chunk_flops = 0.0
        # Position: ``_done`` evaluations past ``_base``, where the look-ahead starts; a
        # decaying penalty fades from ``_penalty_from``.
        self._base, self._done = 0.0, 0
        self._penalty = self._penalty_from = 0.0
        self._true_loss = math.inf
        self._evaluations = self._switches = self._failures = self._streak = 0
        self._deadline = 0.0
        self._outcome: str | None = None  # "target" or "budget" once the run stops
        # The activity under way, for what a failure loses: since when, at which FLOP/s, and
        # for a stretch the evaluations of its legs (none for a switch or a checkpoint).
        self._busy_since = self._busy_rate = 0.0
        self._busy_legs: list[Leg] = []

    # -- what policies read (``RunView``) -----------------------------------------------------

    @property
    def shape_name(self) -> str:
        return self._shape

    @property
    def observed(self) -> float:
        return self._observations.last

    @property
    def lowest_observed(self) -> float:
        return self._observations.lowest

    @property
    def trained_flops(self) -> float:
        """Useful training FLOPs so far (pending work included)."""
        return self._ledger.kept_f[USEFUL] + self._ledger.pending_f[USEFUL]

    @property
    def evaluations(self) -> int:
        return self._evaluations

    @property
    def history(self) -> list[tuple[str, float, float]]:
        return self._observations.history

    @property
    def level(self) -> float:
        return self._observations.level

    @property
    def policy_rng(self) -> np.random.Generator:
        if self._policy_rng is None:
            self._policy_rng = self._stream(2)
        return self._policy_rng

    def note(self, event: str, fields: dict[str, float | str]) -> None:
        """A policy's finding, kept among the run's events: ``key=value`` pairs."""
        self._recording.note(self._env.now, event, fields)

    # -- the SimPy process --------------------------------------------------------------------

    def process(self, submitted: float = 0.0) -> Generator[simpy.Event, Any, RunRecord]:
        """The SimPy process; returns the run's ``RunRecord``."""
        self._start(submitted)
        env, faults = self._env, self._faults
        clock = None if faults is None else env.process(faults.failures(
            env, env.active_process, self._stream(1), self._accelerators))
        while self._outcome is None:
            try:
                yield from self._step()
            except simpy.Interrupt:
                yield from self._fail()
        if clock is not None:
            clock.interrupt()
        return self._record()

    def _step(self) -> Generator[simpy.Event, Any, None]:
        """One stretch of evaluations, then the switch or checkpoint its last one calls for."""
        legs, end = self._plan()
        now = self._env.now
        self._busy_since, self._busy_rate, self._busy_legs = now, self._speed, legs
        yield self._env.timeout(end - now)
        shape = self._complete(legs)
        if shape is not None:
            yield from self._switch(shape)
        elif self._outcome is None and self._env.now >= self._checkpoints.due:
            yield from self._checkpoint()

    def _switch(self, shape: str) -> Generator[simpy.Event, Any, None]:
        t = self._setup.transitions
        speed = self._setup.throughput[shape] * self._accelerators
        seconds = t.seconds + t.flops / speed
        if seconds:
            self._busy(speed)
            yield self._env.timeout(seconds)
        self._ledger.charge(TRANSITION, seconds, t.flops + t.seconds * speed)
        self._land(shape)
        self._out_of_budget()

    def _checkpoint(self) -> Generator[simpy.Event, Any, None]:
        if self._checkpoints.seconds:
            self._busy(self._speed)
            yield self._env.timeout(self._checkpoints.seconds)
        self._saved([self._env.now])
        self._out_of_budget()

    def _fail(self) -> Generator[simpy.Event, Any, None]:
        """A failure interrupted the activity under way: lose, repair, restore."""
        env, events = self._env, self._recording.events
        self._lose()
        self._failures += 1
        events.append((env.now, "failure", self._shape))
        repair = self._faults.repair_seconds
        if repair:
            yield env.timeout(repair)  # the failure clock waits as long: no interrupt here
        self._ledger.repaired(repair)
        self._restore(self._checkpoints.last)
        self._checkpoints.restarted(env.now)
        events.append((env.now, "restart", self._shape))
        self._out_of_budget()

    # -- planning a stretch -------------------------------------------------------------------

    def _plan(self) -> tuple[list[Leg], float]:
        """The next stretch, up to the first evaluation at which anything but a checkpoint can
        happen: its legs (a checkpoint after each but the last) and when it ends."""
        ahead, done = self._ahead, self._done
        if done == len(ahead.true):
            self._base, self._done = self._position(), 0
            ahead.fill(self._law, self._base, self._penalty, self._penalty_from,
                       self._evaluations)
            self._observations.look_ahead_from(self.trained_flops)
            done = 0
        now, spent, policy = self._env.now, self._ledger.spent_f, self._policy
        level, loss = policy.stay_above, policy.stay_level_above
        if loss < math.inf and self._observations.level_reachable(done, loss):
            # Up to where the run's level reaches the policy's (or the target is confirmed).
            left = min(ahead.stop(done, -math.inf, self._streak),
                       self._observations.evaluations_to_level(loss))
        elif ahead.observed[done] <= level:
            # The policy is consulted after the next evaluation (after every one, if its level
            # is inf): a stretch of one.
            return [(1, now, spent)], now + self._chunk_seconds
        else:
            left = ahead.stop(done, level, self._streak)
        checkpoints = self._checkpoints
        save = checkpoints.seconds
        return plan_legs(left, now, spent, self._chunk_seconds, self._chunk_flops, save,
                         save * self._speed, checkpoints.due, checkpoints.every,
                         self._setup.max_compute, self._deadline)

    # -- the step function: what completed work changes ---------------------------------------

    def _complete(self, legs: list[Leg]) -> str | None:
        """The stretch completed; its last evaluation may stop the run or consult the policy.
        Returns the shape to switch to, if any."""
        if len(legs) == 1:
            self._evaluated(legs)
        else:
            self._advance(legs)
        setup = self._setup
        if self._streak >= setup.config.confirm:
            self._outcome = "target"
            return None
        policy = self._policy
        # A stretch planned by the run's level ends where that level reaches the policy's,
        # possibly at an evaluation observed above it.
        observations = self._observations
        by_level = observations.lowest <= policy.stay_level_above < math.inf
        if self._out_of_budget() or (observations.last > policy.stay_above and not by_level):
            return None
        choice = policy.decide(self)
        if choice is None or choice == self._shape or (self._shape, choice) not in setup.allowed:
            return None
        return choice

    def _advance(self, legs: list[Leg]) -> None:
        """Legs of a stretch completed, each but the last followed by a checkpoint."""
        if len(legs) > 1:
            self._evaluated(legs[:-1])
            self._saved([start for _, start, _ in legs[1:]])
            legs = legs[-1:]
        if legs[0][0]:
            self._evaluated(legs)

    def _evaluated(self, legs: list[Leg]) -> None:
        """The evaluations of ``legs`` completed: keep them for the trajectory, observe them,
        follow the target streak and charge them."""
        setup, seconds, flops = self._setup, self._chunk_seconds, self._chunk_flops
        first = self._done
        total = legs[0][0] if len(legs) == 1 else sum([count for count, _, _ in legs])
        stop = first + total
        ahead = self._ahead
        if setup.config.trajectories:
            self._recording.legs(legs, first, seconds, flops, self._shape, ahead.true,
                                 ahead.observed)
        streak = self._observations.observe(first, stop, self._streak, self._shape,
                                            self._policy)
        self._true_loss = float(ahead.true[stop - 1])
        if streak and streak <= total:  # the streak starts in this stretch
            self._recording.reached(legs, total - streak, seconds, flops,
                                    float(ahead.true[stop - streak]))
        elif not streak:
            self._recording.reached_at = None
        self._streak = streak
        self._ledger.charge(USEFUL, total * self._train_seconds, total * setup.eval_every)
        if setup.config.eval_seconds:
            self._ledger.charge(EVAL, total * setup.config.eval_seconds, total * self._eval_flops)
        self._done = stop
        self._evaluations += total

    def _saved(self, ends: list[float]) -> None:
        """Checkpoints completed at times ``ends``: work so far is safe, and restored after a
        failure."""
        seconds = len(ends) * self._checkpoints.seconds
        self._ledger.charge(CHECKPOINT, seconds, seconds * self._speed)
        self._ledger.checkpointed()
        self._checkpoints.saved(self._snapshot(), ends[-1])
        self._recording.events.extend([(end, "checkpoint", self._shape) for end in ends])

    def _lose(self) -> None:
        """Charge as lost what a failure now undid; what completed before it counts: the legs
        and checkpoints of a stretch, and the evaluations of the leg under way (but the last
        of a stretch, where something happens: it would come with the failure)."""
        partial = self._env.now - self._busy_since
        if self._busy_legs:
            legs, partial = completed_legs(self._busy_legs, self._env.now, self._chunk_seconds)
            self._advance(legs)
        partial = max(0.0, partial)
        self._ledger.failed(partial, partial * self._busy_rate)

    def _out_of_budget(self) -> bool:
        """Stops the run (target not reached) once its compute or time is spent."""
        spent = (self._ledger.spent_f >= self._setup.max_compute
                 or self._env.now >= self._deadline)
        if spent:
            self._outcome = "budget"
        return spent

    def _busy(self, flops_per_second: float) -> None:
        """A switch or a checkpoint starts (``_step`` notes a stretch)."""
        self._busy_since, self._busy_rate, self._busy_legs = self._env.now, flops_per_second, []

    # -- where the run is ---------------------------------------------------------------------

    def _start(self, submitted: float) -> None:
        now = self._env.now
        self._recording.start(now, submitted)
        self._deadline = now + self._setup.max_seconds
        first = self._policy.begin(self)
        if self._policy.stay_above == -math.inf and self._policy.stay_level_above == math.inf:
            self._observations.keep_nothing()  # never consulted (``_complete``): reads nothing
        self._enter(first, self._setup.truth.shape(first).law, 0.0)
        self._true_loss = self._law.ceiling  # the untrained model's, until evaluated
        self._recording.events.append((now, "start", self._shape))
        self._checkpoints.saved(self._snapshot(), now)

    def _land(self, shape: str) -> None:
        """Continue on ``shape`` from the last evaluation's loss (penalty added; ``landing``)."""
        old, t, truth = self._shape, self._setup.transitions, self._setup.truth
        self._switches += 1
        decay = self._setup.config.penalty_decay_flops
        if decay is None:
            self._enter(shape, *landing(truth, old, shape, self._true_loss + t.loss_penalty))
        else:
            carried = (float(penalty_left(self._penalty, self._penalty_from, decay,
                                          self._position())) if self._penalty else 0.0)
            self._enter(shape, *landing(truth, old, shape, self._true_loss - carried))
            self._penalty, self._penalty_from = carried + t.loss_penalty, self._base
        self._recording.events.append((self._env.now, "switch", f"{old}->{shape}"))

    def _enter(self, shape: str, law: Any, position: float) -> None:
        setup = self._setup
        self._shape, self._law = shape, law
        self._speed = speed = setup.throughput[shape] * self._accelerators
        self._train_seconds = setup.eval_every / speed
        self._eval_flops = setup.config.eval_seconds * speed
        self._chunk_seconds = self._train_seconds + setup.config.eval_seconds
        self._chunk_flops = setup.eval_every + self._eval_flops
        self._base, self._done, self._penalty = position, 0, 0.0
        self._ahead.clear()

    def _position(self) -> float:
        """Compute coordinate on the current shape's truth curve."""
        return self._base + self._done * self._setup.eval_every

    def _stream(self, index: int) -> np.random.Generator:
        """Independent streams of the run's seed: 0 noise, 1 failures, 2 policy (the children
        ``seed.spawn`` would make), so that one kind of draw never shifts another."""
        key = (*self._seed.spawn_key, index)
        return np.random.default_rng(np.random.SeedSequence(self._seed.entropy, spawn_key=key))

    def _snapshot(self) -> Snapshot:
        return Snapshot(self._shape, self._law, self._position(), self._penalty,
                        self._penalty_from, self._ahead.true[self._done:], self._policy.clone(),
                        self._observations.lowest, self._true_loss, self._switches,
                        self._observations.logged)

    def _restore(self, snap: Snapshot) -> None:
        self._enter(snap.shape, snap.law, snap.position)
        self._penalty, self._penalty_from = snap.penalty, snap.penalty_from
        self._observations.restore(snap.lowest_observed, snap.logged)
        if len(snap.true_ahead):  # the losses from there on are known: only the noise is new
            self._ahead.observe(snap.true_ahead, self._evaluations)
            self._observations.look_ahead_from(self.trained_flops)
        self._policy = snap.policy.clone()
        self._true_loss, self._switches = snap.true_loss, snap.switches
        self._streak, self._recording.reached_at = 0, None

    # -- the record ---------------------------------------------------------------------------

    def _record(self) -> RunRecord:
        self._recording.events.append((self._env.now, self._outcome, self._shape))
        reached = self._outcome == "target"
        at = self._recording.reached_at if reached else None
        setup = self._setup
        return self._recording.record(
            reached=reached, true_compute=None if at is None else true_crossing(
                self._law, setup.target, *at[1:], self._chunk_flops, setup.eval_every),
            final_true_loss=self._true_loss if math.isfinite(self._true_loss) else None,
            switches=self._switches, failures=self._failures, evaluations=self._evaluations,
            ledger=self._ledger.totals())
