"""What a measured switch transition predicts (the models that ``laws.fit.transitions`` fits
from curves with switches, kept per pair in a law file): the loss ``since`` FLOPs after a
switch fired at loss ``l0`` onto a shape whose law is ``L_B`` (reaching ``l0`` after
``C_B(l0)`` FLOPs from scratch), and what the switch adds to the compute to a target.

- ``free``: ``L_B(C_B(l0) + since)``, the search's assumption when switches cost nothing;
- ``constant-flops``: ``L_B(C_B(l0) + max(since - c, 0))``, a delay of ``c`` FLOPs per switch;
- ``transient-penalty``: ``L_B(C_B(l0) + since) + delta * l0 * exp(-since / tau)``, a loss jump
  in proportion to the level where the switch happens, that fades along B's compute;
- ``slowdown``: ``L_B(C_B(l0) + since / (1 + s))``, B learning ``1 + s`` times slower for the
  rest of the run (a switch early in a Lightning user's run, from patch 28 to 14, left patch 14
  about a tenth slower at every loss down to the target: docs/examples/README.md);
- ``penalty-slowdown``: ``L_B(C_B(l0) + since / (1 + s)) + delta * l0 * exp(-since / tau)``,
  both: a jump that fades on a shape that then learns ``1 + s`` times slower (that user's
  switch shows the jump first, then the lasting lag).

The search (``laws.search.charges``) and the simulator (``sim.landing``) read these without
the fitting.

>>> from laws.forms import PowerLaw
>>> law = PowerLaw(a=10.0, b=0.5, c=1.0)
>>> since = np.array([1.0, 50.0, 400.0])
>>> predict("free", law, 2.0, since, ()).round(4).tolist()   # on the law from C_B(2) = 100
[1.995, 1.8165, 1.4472]
>>> # plus 0.5 * 2.0 * exp(-since / 100): +0.99, +0.607, +0.018
>>> predict("transient-penalty", law, 2.0, since, (0.5, 100.0)).round(4).tolist()
[2.9851, 2.423, 1.4655]
>>> # the same jump on a shape twice as slow: 1 + 10 / sqrt(100 + since / 2) plus the jump
>>> predict("penalty-slowdown", law, 2.0, since, (0.5, 100.0, 1.0)).round(4).tolist()
[2.9876, 2.501, 1.5957]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from laws.errors import InputError
from laws.forms import Law

MODELS = ("free", "constant-flops", "transient-penalty", "slowdown", "penalty-slowdown")
PARAMETERS = {"free": (), "constant-flops": ("flops",),
              "transient-penalty": ("delta", "tau_flops"), "slowdown": ("factor",),
              "penalty-slowdown": ("delta", "tau_flops", "factor")}


def ordered_params(model: str, params: dict[str, float]) -> tuple[float, ...]:
    """``params`` by name (a law file's) in the order ``predict`` takes them.

    >>> ordered_params("transient-penalty", {"tau_flops": 3e11, "delta": 0.6})
    (0.6, 300000000000.0)
    """
    if model not in PARAMETERS:
        raise InputError(f"unknown transition model {model!r}; known: {', '.join(MODELS)}")
    if set(params) != set(PARAMETERS[model]):
        raise InputError(f"transition model {model} takes the parameters "
                         f"{', '.join(PARAMETERS[model])}; got {', '.join(params) or 'none'}")
    return tuple(params[name] for name in PARAMETERS[model])


def predict(model: str, law: Law, loss: float, since: np.ndarray,
            params: Sequence[float]) -> np.ndarray:
    """The loss ``model`` with ``params`` (``PARAMETERS[model]``) expects ``since`` FLOPs after
    a switch at ``loss`` onto the shape whose law is ``law``."""
    return _after_landing(model, law, float(law.compute(loss)), loss, since, params)


def _after_landing(model: str, law: Law, landing: float, loss: float, since: np.ndarray,
                   params: Sequence[float]) -> np.ndarray:
    """``predict`` with the switch's landing, C_B(loss), given: a root search asks for many
    ``since`` of one switch, and the law's inverse is most of the work."""
    if model == "free":
        return np.asarray(law.loss(landing + since), dtype=float)
    if model == "constant-flops":
        return np.asarray(law.loss(landing + np.maximum(since - params[0], 0.0)), dtype=float)
    if model == "transient-penalty":
        delta, tau = params
        return np.asarray(law.loss(landing + since), dtype=float) + delta * loss * np.exp(
            -since / tau)
    if model == "slowdown":
        return np.asarray(law.loss(landing + since / (1.0 + params[0])), dtype=float)
    if model == "penalty-slowdown":
        delta, tau, factor = params
        return np.asarray(law.loss(landing + since / (1.0 + factor)), dtype=float) + (
            delta * loss * np.exp(-since / tau))
    raise InputError(f"unknown transition model {model!r}; known: {', '.join(MODELS)}")


def extra_compute(model: str, law: Law, loss: float, target: float,
                  params: Sequence[float]) -> float:
    """The FLOPs that a switch at ``loss`` onto ``law`` adds, under ``model``, to reaching
    ``target`` (below ``loss``) on that law: FLOPs to the target after the switch minus the
    free switch's, C(target) - C(loss); +inf when the law never reaches the target.

    >>> from laws.forms import PowerLaw
    >>> law = PowerLaw(a=10.0, b=0.5, c=1.0)
    >>> extra_compute("constant-flops", law, 2.0, 1.5, (30.0,))
    30.0
    >>> round(extra_compute("transient-penalty", law, 2.0, 1.5, (0.5, 1e-9)), 6)
    0.0
    >>> round(extra_compute("slowdown", law, 2.0, 1.5, (0.1,)), 9)  # C(1.5) - C(2) = 300
    30.0
    """
    landing = float(law.compute(loss))
    free = float(law.compute(target)) - landing
    if not np.isfinite(free) or model == "free":
        return 0.0 if np.isfinite(free) else float("inf")
    if model == "constant-flops":
        return float(params[0])
    if model == "slowdown":
        return params[0] * free

    def above(since: float) -> float:
        after = _after_landing(model, law, landing, loss, np.array([since]), params)
        return float(after[0]) - target

    # The loss after the switch falls monotonically (the law falls, the penalty fades): double
    # the horizon until it is below the target, then bracket the crossing.
    horizon = max(free, 1.0)
    while above(horizon) > 0:
        horizon *= 2.0
    from scipy.optimize import brentq  # here: `shapeshift search` starts without scipy

    return float(brentq(above, 0.0, horizon, xtol=1e-12 * horizon)) - free
