"""What a switch of shape costs, measured on curves that contain switches: models of the
evaluations after a switch, fitted per switch pair A -> B on the new shape's law, bootstrapped
over switches and compared out of sample.

A switch fires at eval loss ``l0``; from there the run trains ``since`` FLOPs on shape B, whose
law reaches ``l0`` after ``C_B(l0)`` FLOPs from scratch. The models of the loss it then shows:

- ``free``: ``L_B(C_B(l0) + since)``, the search's assumption when switches cost nothing;
- ``constant-flops``: ``L_B(C_B(l0) + max(since - c, 0))``, a delay of ``c`` FLOPs per switch,
  what ``--switch-flops`` models;
- ``transient-penalty``: ``L_B(C_B(l0) + since) + delta * l0 * exp(-since / tau)``, a loss jump
  in proportion to the level where the switch happens, that fades along B's compute;
- ``slowdown``: ``L_B(C_B(l0) + since / (1 + s))``, B learning ``1 + s`` times slower from the
  switch on;
- ``penalty-slowdown``: both, the fading jump on a shape that learns ``1 + s`` times slower.

Each is scored by the RMSE of log-loss over the evaluations after each switch (until the next
switch or the end of the run), leaving one run out at a time: the parameters come from the other
runs' switches (``leave_one_run_out``). docs/DESIGN.md ("What a switch costs, modelled from
curves") gives the measured comparison on the committed loops (``bench/bench_transitions.py``);
``with_measured_transitions`` keeps, per pair, the model with parameters that scored best there
(``KEPT`` for a pair made in one run only, which leaves nothing out), in a law set, which the
search then charges (``laws.search.charges``).

The models' arithmetic (``predict``, ``extra_compute``) is in ``laws.transitions``, which the
search and the simulator use without the fitting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np
from scipy.optimize import least_squares

from laws.errors import InputError
from laws.lawset import LawSet, MeasuredTransition
from laws.stats import percentile_interval
from laws.transitions import MODELS, PARAMETERS, predict

FITTED = tuple(model for model in MODELS if PARAMETERS[model])
# The model a law file keeps for a pair that cannot be scored: on the committed loops' switches
# it predicted the loss after the switch best out of sample, or as well as the others
# (docs/DESIGN.md, "What a switch costs, modelled from curves").
KEPT = "transient-penalty"
# Out-of-sample RMSEs within this share of each other are one fit: the simpler model is kept.
TIE = 1e-4
# A jump of more than five times the loss where a switch happened would be a broken run, not a
# transition; the bound keeps the fit away from the flat direction delta -> inf, tau -> 0.
_MAX_DELTA = 5.0
# Twenty times slower after a switch would be a broken run, not a transition.
_MAX_SLOWDOWN = 20.0


@dataclass(frozen=True)
class Switch:
    """One switch of one run, with the evaluations on the new shape until the next switch or
    the end: FLOPs trained since the switch and the eval losses there."""

    run: str
    source: str
    destination: str
    loss: float
    since: np.ndarray
    observed: np.ndarray

    @property
    def pair(self) -> tuple[str, str]:
        return self.source, self.destination


def switches_in_run(run: str, records: Sequence[dict]) -> list[Switch]:
    """The switches of one run's records (``laws.runcurves.read_run``): each switch event that
    an evaluation follows, named by the shapes of the evaluations around it.

    >>> records = [{"event": "eval", "flops": 0.0, "eval_loss": 3.0, "shape_name": "a"},
    ...            {"event": "eval", "flops": 10.0, "eval_loss": 2.0, "shape_name": "a"},
    ...            {"event": "switch", "flops": 10.0, "eval_loss": 2.0},
    ...            {"event": "eval", "flops": 14.0, "eval_loss": 2.4, "shape_name": "b"},
    ...            {"event": "eval", "flops": 20.0, "eval_loss": 1.9, "shape_name": "b"}]
    >>> [(s.pair, s.loss, s.since.tolist()) for s in switches_in_run("seed0", records)]
    [(('a', 'b'), 2.0, [4.0, 10.0])]
    """
    fired = [i for i, record in enumerate(records) if record["event"] == "switch"]
    found = []
    for start, end in pairwise([*fired, len(records)]):
        before = [r for r in records[:start] if r["event"] == "eval"]
        after = [r for r in records[start + 1:end] if r["event"] == "eval"]
        if not before or not after:
            continue  # the switch into the first shape, or one the run ended on
        event = records[start]
        found.append(Switch(run, before[-1]["shape_name"], after[0]["shape_name"],
                            float(event["eval_loss"]),
                            np.array([r["flops"] - event["flops"] for r in after], dtype=float),
                            np.array([r["eval_loss"] for r in after], dtype=float)))
    return found


def switches_in_files(paths: Sequence[str]) -> list[Switch]:
    """The switches of every run's ``curve.jsonl`` under ``paths`` (files or folders), each
    run named by its file."""
    from laws.runcurves import read_run, run_curve_files

    return [switch for path in run_curve_files(paths)
            for switch in switches_in_run(str(path), read_run(path))]


def log_residuals(model: str, laws: LawSet, switches: Sequence[Switch],
                  params: Sequence[float]) -> np.ndarray:
    """log(predicted) - log(observed) over every evaluation after ``switches``."""
    parts = [np.log(predict(model, laws.shape(s.destination).law, s.loss, s.since, params))
             - np.log(s.observed) for s in switches]
    return np.concatenate(parts) if parts else np.empty(0)


def fit_models(laws: LawSet, switches: Sequence[Switch]) -> dict[str, tuple[float, ...]]:
    """Every model of ``MODELS`` fitted to ``switches`` (all of one pair) by ``fit_model``,
    ``penalty-slowdown`` started from the optima of the two models it joins."""
    fitted: dict[str, tuple[float, ...]] = {}
    for model in MODELS:
        fitted[model] = fit_model(model, laws, switches, fitted)
    return fitted


def fit_model(model: str, laws: LawSet, switches: Sequence[Switch],
              joined: dict[str, tuple[float, ...]] | None = None) -> tuple[float, ...]:
    """The parameters of ``model`` that minimise the squared log residuals over ``switches``
    (all of one pair), from several starts; () for ``free``. ``penalty-slowdown`` starts from
    the parameters of ``transient-penalty`` and ``slowdown`` in ``joined`` (fitted here where
    ``joined`` lacks them).

    FLOPs parameters are fitted in units of the median FLOPs after a switch, and ``tau`` in
    its logarithm, so that every direction has a comparable scale."""
    if model == "free":
        return ()
    scale = float(np.median(np.concatenate([s.since for s in switches])))
    reach = float(max(s.since.max() for s in switches)) / scale
    if model == "constant-flops":
        starts = [[0.0], [0.1], [0.5], [min(1.0, reach)]]
        bounds = ([0.0], [reach])

        def unpack(x: np.ndarray) -> tuple[float, ...]:
            return (float(x[0]) * scale,)
    elif model == "slowdown":
        starts = [[0.0], [0.1], [0.5], [2.0]]
        bounds = ([0.0], [_MAX_SLOWDOWN])

        def unpack(x: np.ndarray) -> tuple[float, ...]:
            return (float(x[0]),)
    elif model == "transient-penalty":
        starts = [[delta, np.log(tau)] for delta in (0.0, 0.1, 1.0)
                  for tau in (0.1, 1.0, 10.0)]
        bounds = ([0.0, np.log(1e-3)], [_MAX_DELTA, np.log(1e3 * reach)])

        def unpack(x: np.ndarray) -> tuple[float, ...]:
            return float(x[0]), float(np.exp(x[1])) * scale
    else:
        # Started from the optima of the two models it joins (and both together), so that it
        # fits at least as well as either in sample.
        joined = joined or {}
        delta, tau = joined.get("transient-penalty") or fit_model("transient-penalty", laws,
                                                                  switches)
        (factor,) = joined.get("slowdown") or fit_model("slowdown", laws, switches)
        log_tau = float(np.clip(np.log(tau / scale), np.log(1e-3), np.log(1e3 * reach)))
        starts = [[delta, log_tau, 0.0], [0.0, 0.0, factor], [delta, log_tau, factor]]
        bounds = ([0.0, np.log(1e-3), 0.0], [_MAX_DELTA, np.log(1e3 * reach), _MAX_SLOWDOWN])

        def unpack(x: np.ndarray) -> tuple[float, ...]:
            return float(x[0]), float(np.exp(x[1])) * scale, float(x[2])

    def residuals(x: np.ndarray) -> np.ndarray:
        return log_residuals(model, laws, switches, unpack(x))

    best = min((least_squares(residuals, start, bounds=bounds, x_scale=1.0)
                for start in starts), key=lambda result: result.cost)
    return unpack(best.x)


def usable(laws: LawSet, switches: Sequence[Switch]) -> list[Switch]:
    """The switches whose new shape's law reaches the loss that fired them (above its floor):
    only there does "continue on the law" mean anything."""
    return [s for s in switches if np.isfinite(laws.shape(s.destination).law.compute(s.loss))]


def by_pair(switches: Sequence[Switch]) -> dict[tuple[str, str], list[Switch]]:
    """The switches grouped by pair, in order of first appearance."""
    groups: dict[tuple[str, str], list[Switch]] = {}
    for switch in switches:
        groups.setdefault(switch.pair, []).append(switch)
    return groups


@dataclass(frozen=True)
class PairTransition:
    """The fitted models of one switch pair: point parameters per model of ``FITTED``, from all its
    switches on the point laws, and bootstrap samples (switches resampled, each sample on the
    law set's sample of the same index when the laws carry samples)."""

    source: str
    destination: str
    switches: int
    params: dict[str, tuple[float, ...]]
    samples: dict[str, tuple[tuple[float, ...], ...]]

    def interval(self, model: str) -> list[tuple[float, float]]:
        """The 90% percentile interval of each parameter of ``model`` over the samples."""
        drawn = np.array(self.samples[model], dtype=float).reshape(-1, len(PARAMETERS[model]))
        return [percentile_interval(column) for column in drawn.T]


def fit_transitions(laws: LawSet, switches: Sequence[Switch], resamples: int = 0,
                    seed: int = 0) -> list[PairTransition]:
    """Each pair's parametric models fitted to its switches, with ``resamples`` bootstrap
    samples (0: none). Sample k resamples each pair's switches with replacement and, where the
    law set has bootstrap samples, fits on its sample k mod their number: the parameters then
    carry the laws' uncertainty as well as the switches' spread. Sample k stays sample k (the
    search charges law sample k what transition sample k costs): a resample whose switches all
    lie below its law sample's floor is drawn again among the switches above it, and where
    there are none that sample keeps the point parameters."""
    rng = np.random.default_rng(seed)
    law_samples = laws.samples() or [laws]
    fitted = []
    for (source, destination), group in by_pair(usable(laws, switches)).items():
        params = {model: fitted for model, fitted in fit_models(laws, group).items()
                  if model in FITTED}
        drawn: dict[str, list[tuple[float, ...]]] = {model: [] for model in FITTED}
        for k in range(resamples):
            sample_laws = law_samples[k % len(law_samples)]
            picked = usable(sample_laws, [group[i] for i in rng.integers(len(group),
                                                                         size=len(group))])
            if not picked:
                above = usable(sample_laws, group)
                picked = [above[i] for i in rng.integers(len(above), size=len(group))
                          ] if above else []
            sample = fit_models(sample_laws, picked) if picked else params
            for model in FITTED:
                drawn[model].append(sample[model])
        fitted.append(PairTransition(source, destination, len(group), params,
                                     {model: tuple(values) for model, values in drawn.items()}))
    return fitted


@dataclass(frozen=True)
class Comparison:
    """Out-of-sample log residuals per model and run (every evaluation after the run's scored
    switches, the pairs pooled), and the RMSE per pair.

    The runs are the independent units (a run's evaluations share its noise and its switches'
    landing points), so intervals resample runs."""

    residuals: dict[str, dict[str, np.ndarray]]
    pair_rmse: dict[tuple[str, str], dict[str, float]]
    switches: int

    @property
    def evaluations(self) -> int:
        return int(sum(part.size for part in self.residuals[MODELS[0]].values()))

    def rmse(self, model: str, runs: Sequence[str] | None = None) -> float:
        """RMSE of log-loss of ``model`` over ``runs`` (default all; repeats count twice)."""
        chosen = sorted(self.residuals[model]) if runs is None else runs
        values = np.concatenate([self.residuals[model][run] for run in chosen])
        return float(np.sqrt(np.mean(values ** 2)))

    def interval(self, model: str, baseline: str | None = None, resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
        """The 90% bootstrap interval, runs resampled with replacement, of the RMSE of
        ``model``, or, with ``baseline``, of RMSE(model) - RMSE(baseline) on the same resample
        (negative: ``model`` predicts better)."""
        rng = np.random.default_rng(seed)
        runs = sorted(self.residuals[model])
        values = []
        for _ in range(resamples):
            picked = [runs[i] for i in rng.integers(len(runs), size=len(runs))]
            values.append(self.rmse(model, picked)
                          - (self.rmse(baseline, picked) if baseline else 0.0))
        return percentile_interval(values)


def leave_one_run_out(laws: LawSet, switches: Sequence[Switch]) -> Comparison:
    """Each model scored on every run's switches with parameters fitted to the other runs'
    switches of the same pair (a pair seen in one run only cannot be scored and is left out).

    ``free`` has no parameters, so its score is the same in and out of sample."""
    kept = usable(laws, switches)
    residuals: dict[str, dict[str, np.ndarray]] = {model: {} for model in MODELS}
    per_pair: dict[tuple[str, str], dict[str, list[np.ndarray]]] = {}
    scored = 0
    for run in sorted({s.run for s in kept}):
        others = by_pair([s for s in kept if s.run != run])
        parts: dict[str, list[np.ndarray]] = {model: [] for model in MODELS}
        for pair, held_out in by_pair([s for s in kept if s.run == run]).items():
            if pair not in others:
                continue
            scored += len(held_out)
            fitted = fit_models(laws, others[pair])
            for model in MODELS:
                part = log_residuals(model, laws, held_out, fitted[model])
                parts[model].append(part)
                per_pair.setdefault(pair, {m: [] for m in MODELS})[model].append(part)
        for model in MODELS:
            if parts[model]:
                residuals[model][run] = np.concatenate(parts[model])
    if not per_pair:
        raise InputError("no switch pair appears in two runs: leaving one run out scores "
                         "nothing")
    pair_rmse = {pair: {model: float(np.sqrt(np.mean(np.concatenate(values) ** 2)))
                        for model, values in by_model.items()}
                 for pair, by_model in per_pair.items()}
    return Comparison(residuals, pair_rmse, scored)


def as_measured(fitted: Sequence[PairTransition],
                scores: dict[tuple[str, str], dict[str, float]],
                model: str | None = None) -> tuple[MeasuredTransition, ...]:
    """The fitted pairs as a law file keeps them: ``model`` (None: per pair, ``best_model``)
    with its parameters and samples, and the pair's out-of-sample RMSE per model from
    ``scores`` (``Comparison.pair_rmse``; none for a pair not scored)."""
    kept = []
    for pair in fitted:
        rmse = scores.get((pair.source, pair.destination), {})
        chosen = model or best_model(rmse)
        kept.append(MeasuredTransition(
            pair.source, pair.destination, chosen,
            dict(zip(PARAMETERS[chosen], pair.params[chosen], strict=True)),
            pair.samples[chosen], pair.switches, rmse))
    return tuple(kept)


def best_model(rmse: dict[str, float]) -> str:
    """Of the models with parameters, the one of least out-of-sample RMSE, and of those within
    ``TIE`` of it the one with fewest parameters (a model that adds a parameter fitted to
    nothing scores the same up to rounding); ``KEPT`` when the pair was not scored.

    >>> best_model({"free": 0.09, "constant-flops": 0.05, "transient-penalty": 0.04,
    ...             "slowdown": 0.03}), best_model({})
    ('slowdown', 'transient-penalty')
    >>> best_model({"transient-penalty": 0.0522361773, "penalty-slowdown": 0.0522361361})
    'transient-penalty'
    """
    scored = {name: error for name, error in rmse.items() if name in FITTED}
    if not scored:
        return KEPT
    least = min(scored.values())
    tied = [name for name, error in scored.items() if error <= least * (1.0 + TIE)]
    return min(tied, key=lambda name: (len(PARAMETERS[name]), FITTED.index(name)))


def with_measured_transitions(laws: LawSet, switches: Sequence[Switch], resamples: int = 0,
                              seed: int = 0) -> LawSet:
    """``laws`` whose transitions carry, per pair seen in ``switches``, its ``best_model``
    fitted with ``resamples`` bootstrap samples and every model's out-of-sample RMSE (where
    two runs or more made the switch)."""
    kept = usable(laws, switches)
    if not kept:
        raise InputError("no switch in the runs lands where the new shape's law is above its "
                         "floor (or the runs made no switch): no transition to measure")
    runs_per_pair = [{s.run for s in group} for group in by_pair(kept).values()]
    scores = (leave_one_run_out(laws, kept).pair_rmse
              if any(len(runs) > 1 for runs in runs_per_pair) else {})
    measured = as_measured(fit_transitions(laws, kept, resamples, seed), scores)
    return replace(laws, transitions=replace(laws.transitions, measured=measured))
