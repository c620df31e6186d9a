"""What each replication's runs really follow: the truth laws, or one of their bootstrap
samples drawn for the replication (``SimConfig.truth_draw``, ``--truth-draw``).

- ``point`` (the default): every run follows the truth laws themselves.
- ``samples``: replication r follows sample k of the truth laws (sample k of every shape: one
  joint resample), k drawn from ``SeedSequence(seed, spawn_key=(r, TRUTH_STREAM))``, and sample
  k of their measured transitions (fitted on law sample k: ``laws.fit.transitions``).
- ``widened:F``: that sample of the laws moved F times as far from the point laws (in
  log-parameters, ``sim.posterior.widen_law``): a fit whose intervals are F times too narrow;
  the transitions' sample k as it is.

Every run of a replication, whatever its policy, follows the same truth (paired comparisons),
and the draw depends on the seed and the replication only, so the results are the same for any
number of workers or executor.

>>> TruthDraw.parse("widened:3")
TruthDraw(kind='widened', factor=3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from laws.errors import InputError
from laws.lawset import LawSet, Transitions
from laws.transitions import PARAMETERS
from sim.posterior import widen_law

TRUTH_DRAWS = "point, samples or widened:FACTOR"
TRUTH_STREAM = 3  # after the run's own streams 0 (noise), 1 (failures) and 2 (policy)


@dataclass(frozen=True)
class TruthDraw:
    """How a replication's truth is drawn (module docstring)."""

    kind: str = "point"
    factor: float = 1.0

    @classmethod
    def parse(cls, text: str) -> TruthDraw:
        """The draw named by ``text``; an ``InputError`` otherwise."""
        kind, colon, argument = text.partition(":")
        if kind in ("point", "samples") and not colon:
            return cls(kind)
        if kind == "widened" and argument:
            try:
                factor = float(argument)
            except ValueError:
                factor = math.nan
            if math.isfinite(factor) and factor > 0:
                return cls(kind, factor)
            raise InputError(f"--truth-draw {text!r}: the factor must be a positive number")
        raise InputError(f"--truth-draw {text!r}: expected {TRUTH_DRAWS}")

    def check(self, truth: LawSet) -> None:
        """A draw from samples needs a truth law set that has them, and as many samples of
        each measured transition with parameters (sample k of both is one joint draw)."""
        if self.kind == "point":
            return
        count = len(truth.shapes[0].samples)
        if not count:
            raise InputError(f"--truth-draw {self.kind}: law set {truth.name!r} carries no "
                             "bootstrap samples (fit it with `shapeshift fit --bootstrap N`)")
        for measured in truth.transitions.measured:
            if PARAMETERS[measured.model] and len(measured.samples) != count:
                raise InputError(
                    f"--truth-draw {self.kind}: the measured transition {measured.source} -> "
                    f"{measured.destination} of law set {truth.name!r} has "
                    f"{len(measured.samples)} samples, its laws {count}; sample k of both is "
                    "one joint draw (fit both with `shapeshift fit --bootstrap N --switch-runs`)")

    def laws(self, truth: LawSet, seed: int, replication: int) -> LawSet:
        """The laws replication ``replication`` follows."""
        if self.kind == "point":
            return truth
        sequence = np.random.SeedSequence(seed, spawn_key=(replication, TRUTH_STREAM))
        k = int(np.random.default_rng(sequence).integers(len(truth.shapes[0].samples)))
        return replace(truth, name=f"{truth.name} (sample {k})", shapes=tuple(
            replace(s, law=widen_law(s.law, s.samples[k], self.factor), samples=())
            for s in truth.shapes), transitions=sample_of(truth.transitions, k))


def sample_of(transitions: Transitions, k: int) -> Transitions:
    """``transitions`` whose measured pairs have their bootstrap sample ``k`` as parameters
    (and no samples of their own).

    >>> from laws.lawset import MeasuredTransition
    >>> delay = MeasuredTransition("a", "b", "constant-flops", {"flops": 5.0}, ((4.0,), (7.0,)))
    >>> sample_of(Transitions(measured=(delay,)), 1).measured[0].params
    {'flops': 7.0}
    """
    return replace(transitions, measured=tuple(
        replace(m, params=dict(zip(PARAMETERS[m.model], m.samples[k], strict=True)), samples=())
        if PARAMETERS[m.model] else m for m in transitions.measured))
