"""Where a switch lands a simulated run, and the truth it follows from there.

A run that switches from shape A to shape B at loss ``level`` lands on B's truth law where that
law reaches the level (``compute_at``). Without a measured transition for A -> B it continues
on B's law from there, as the search assumes of a free switch. Where the truth laws carry one
(``Transitions.measured``, fitted by ``laws.fit.transitions``), it follows that transition's
model of the loss ``x`` FLOPs after the switch instead (``laws.transitions.predict``: B's law
delayed, or slowed, or with a jump that fades, as ``laws.transitions`` lists), for example
``transient-penalty``, L_B(C_B(level) + x) + delta level exp(-x / tau):

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, MeasuredTransition, Shape, Transitions
>>> jump = MeasuredTransition("a", "b", "transient-penalty", {"delta": 0.5, "tau_flops": 100.0})
>>> laws = LawSet("t", (Shape("a", {}, PowerLaw(a=20.0, b=0.5, c=1.0)),
...                     Shape("b", {}, PowerLaw(a=10.0, b=0.5, c=1.0))),
...               transitions=Transitions(measured=(jump,)))
>>> law, position = landing(laws, "a", "b", 2.0)   # C_b(2) = (10 / (2 - 1))^2
>>> round(position, 6)
100.0
>>> # 1 + 10 / sqrt(100 + 100) plus 0.5 x 2 x exp(-100 / 100)
>>> law.loss(np.array([200.0])).round(4).tolist()
[2.075]
>>> landing(laws, "b", "a", 2.0)[0] is laws.shape("a").law   # no measured transition: B's law
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from laws.forms import Law
from laws.lawset import LawSet
from laws.transitions import extra_compute, ordered_params, predict
from sim.lookahead import compute_at


class AfterSwitch:
    """The truth loss of a run on a shape after a measured switch onto it: ``model`` with
    ``params`` (``laws.transitions.PARAMETERS``) from the switch at ``level``, where the
    run landed at compute ``landing`` on ``law``. Positions are compute coordinates on ``law``
    from ``landing`` on, as the run counts them (``sim.run``), so the run reads it as a law."""

    __slots__ = ("law", "model", "level", "params", "landing", "floor")

    def __init__(self, law: Law, model: str, level: float, params: tuple[float, ...],
                 landing: float) -> None:
        self.law, self.model, self.level, self.params = law, model, level, params
        self.landing, self.floor = landing, law.floor

    def loss(self, position: Any) -> np.ndarray:
        """The true loss at compute ``position`` (at or after the landing)."""
        since = np.asarray(position, dtype=float) - self.landing
        return predict(self.model, self.law, self.level, since, self.params)

    def compute(self, loss: float) -> float:
        """Where the loss falls to ``loss`` for good: the last position, from the landing on,
        at which it is at or above ``loss`` (the landing if it is below it there already;
        +inf at or below the floor). Above a transient penalty's jump the position is unique;
        on a delay's flat stretch at ``level`` it is the end of the stretch."""
        start = float(self.loss(self.landing))
        if loss > start:
            return self.landing
        # FLOPs after the switch to ``loss``: those of the free switch plus what the model adds.
        free = float(self.law.compute(loss)) - self.landing
        return self.landing + max(free + extra_compute(self.model, self.law, self.level, loss,
                                                       self.params), 0.0)


def landing(truth: LawSet, source: str, destination: str, level: float) -> tuple[Any, float]:
    """The law a run follows after switching from ``source`` to ``destination`` at loss
    ``level`` (``destination``'s truth law, or an ``AfterSwitch`` where ``truth`` measured the
    pair's transition), and the compute it lands at on that law. A level at or below the
    destination's floor lands just above it (``compute_at``), and the transition starts there."""
    law = truth.shape(destination).law
    position = compute_at(law, level)
    measured = truth.transitions.measured_pairs.get((source, destination))
    if measured is None or measured.model == "free":
        return law, position
    return AfterSwitch(law, measured.model, float(law.loss(position)),
                       ordered_params(measured.model, measured.params), position), position
