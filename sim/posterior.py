"""The posterior of a law set given a run's own evaluations: the law file's joint bootstrap
samples (the prior) weighted by the likelihood of what the run observed.

An evaluation observes y = L(x) (1 + sigma z) at position x on the curve of the shape trained,
so log y - log L(x) is sigma z to first order. Under sample k, with r_ik = log y_i - log L_k(x_ik),
the weight is w_k ~ exp(-sum_i r_ik^2 / (2 sigma^2)), for all samples and evaluations in one
numpy expression per stretch of the run on one shape. Log residuals: no Jacobian term that
differs between samples.

Positions are what sample k says they are: the first shape is trained from scratch (x = the
trained FLOPs); a switch from P to Q lands where loss is preserved under sample k, at
C_kQ(L_kP(x at the switch) + penalty), and trained FLOPs add from there. So each sample is judged
on its own account of the run, not on one law's guess of where the run landed.

sigma is the run's own evaluation noise, from successive differences of log y on one shape
(1.4826 MAD / sqrt 2: between two evaluations the law moves far less than the noise).

When the effective sample size falls below ``ess_floor`` and the prior cannot explain the data
(the best sample's mean squared standardised residual above ``MISFIT``), the prior is widened:
every sample's deviation from the point laws is scaled by lambda in log-parameters (``widened``),
lambda chosen among ``WIDENINGS`` by the evidence (the prior's mean likelihood), and the
likelihood is tempered (raised to tau < 1, the noise taken as sigma / sqrt tau) until the
effective sample size reaches the floor. A collapse the best sample explains (misfit within
``MISFIT``) is left as it is: the data then pin the laws down. ``Posterior`` records lambda
and tau.

>>> weights = np.exp(np.array([0.0, -0.5, -2.0]))
>>> round(effective_sample_size(weights), 4)
2.1888
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from laws.forms import Law, offset_power_compute
from laws.lawset import LawSet
from laws.search.uncertainty import SampleLaws

WIDENINGS = tuple(2.0 ** (k / 4) for k in range(13))  # 1 to 8 in steps of 2^(1/4)
# The floor of the effective sample size a prior that cannot explain the run is tempered to:
# a few samples' spread to weigh a route's gain against.
ESS_SHARE, MIN_ESS = 0.05, 5.0
MISFIT = 1.5  # mean squared standardised residual of the best sample that it cannot explain
MIN_NOISE = 1e-4  # relative: a run with (nearly) exact evaluations still has rounding
History = Sequence[tuple[str, float, float]]


class SampleCurves(SampleLaws):
    """``SampleLaws`` with the other direction: every sample's loss at its own positions."""

    def __init__(self, laws: LawSet) -> None:
        super().__init__(laws)
        self.names = laws.names

    def loss(self, shape: int, positions: np.ndarray) -> np.ndarray:
        """(samples, n): sample k's loss at ``positions[k]`` on ``shape``."""
        params = self._offset_power[shape]
        if params is not None:
            floor, a, b, d = params
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                return floor + a * np.power(positions + d, -b)
        return np.array([law.loss(row) for law, row in zip(self._laws[shape], positions,
                                                            strict=True)])

    def compute_each(self, shape: int, losses: np.ndarray) -> np.ndarray:
        """(samples,): sample k's compute to ``losses[k]`` on ``shape``."""
        params = self._offset_power[shape]
        if params is not None:
            return offset_power_compute(losses[:, None], *params)[:, 0]
        return np.array([float(law.compute(loss)) for law, loss in zip(self._laws[shape], losses,
                                                                      strict=True)])


def with_prior(laws: LawSet) -> LawSet:
    """``laws`` with samples: its own, or the point laws as the one sample of a law set
    fitted without ``--bootstrap`` (the posterior is then the point laws)."""
    return laws if laws.shapes[0].samples else sure_of(laws, laws)


def sure_of(laws: LawSet, truth: LawSet) -> LawSet:
    """``laws`` whose one sample of each shape is ``truth``'s law of it: a prior certain of
    ``truth`` (what a posterior that knew a run's true laws would say).

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import Shape
    >>> laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),))
    >>> truth = LawSet("u", (Shape("a", {}, PowerLaw(5.0, 0.5, 1.0)),))
    >>> sure_of(laws, truth).shapes[0].samples
    (PowerLaw(a=5.0, b=0.5, c=1.0),)
    """
    return replace(laws, shapes=tuple(replace(s, samples=(truth.shape(s.name).law,))
                                      for s in laws.shapes))


def widened(laws: LawSet, factor: float) -> LawSet:
    """``laws`` with every sample's deviation from the point law scaled by ``factor``: in
    log-parameters where both are positive (a law's parameters stay positive and the samples'
    correlations keep their direction), linearly otherwise.

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import Shape
    >>> toy = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0),
    ...                          samples=(PowerLaw(8.0, 0.5, 0.0),)),))
    >>> widened(toy, 2.0).shapes[0].samples[0]
    PowerLaw(a=16.0, b=0.5, c=-1.0)
    """
    return replace(laws, shapes=tuple(
        replace(s, samples=tuple(widen_law(s.law, sample, factor) for sample in s.samples))
        for s in laws.shapes))


def widen_law(point: Law, sample: Law, factor: float) -> Law:
    """``sample`` moved ``factor`` times as far from ``point`` (see ``widened``)."""
    if factor == 1.0:
        return sample
    centre, values = point.params(), sample.params()
    moved = {key: (centre[key] * (values[key] / centre[key]) ** factor
                   if centre[key] > 0 and values[key] > 0
                   else centre[key] + factor * (values[key] - centre[key]))
             for key in values}
    return type(sample)(**moved)


def noise_estimate(history: History) -> float:
    """The relative evaluation noise: 1.4826 MAD / sqrt 2 of successive differences of log
    observed loss on one shape (at least ``MIN_NOISE``, which is also the answer without two
    evaluations in a row on one shape)."""
    steps = [math.log(b[2] / a[2]) for a, b in zip(history, history[1:], strict=False)
             if a[0] == b[0]]
    if not steps:
        return MIN_NOISE
    spread = 1.4826 * float(np.median(np.abs(np.asarray(steps) - np.median(steps))))
    return max(spread / math.sqrt(2.0), MIN_NOISE)


def log_likelihood(curves: SampleCurves, history: History, sigma: float,
                   penalty: float = 0.0) -> np.ndarray:
    """(samples,): -sum_i r_ik^2 / (2 sigma^2) over the run's evaluations (see the module
    docstring); -inf for a sample under which the run could not be where it was. An
    evaluation before any training (a real run's first) lies on no law: left out."""
    history = [row for row in history if row[1] > 0]
    total = np.zeros(curves.count)
    landing = np.zeros(curves.count)
    previous: tuple[int, np.ndarray] | None = None  # (shape, positions at the last evaluation)
    for shape, trained, observed in _stretches(history):
        index = curves.names.index(shape)
        if previous is not None:
            left = curves.loss(previous[0], previous[1][:, None])[:, 0] + penalty
            landing = curves.compute_each(index, left)
        positions = landing[:, None] + trained[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            residuals = np.log(observed)[None, :] - np.log(curves.loss(index, positions))
        total -= np.sum(residuals**2, axis=1) / (2.0 * sigma**2)
        previous = (index, positions[:, -1])
    return np.where(np.isnan(total), -np.inf, total)


def _stretches(history: History) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The run's stretches on one shape: (shape, FLOPs trained since the stretch began, observed
    losses); a stretch begins at the last evaluation before it, where the run switched."""
    stretches, begun, since = [], 0, 0.0
    for i in range(1, len(history) + 1):
        if i == len(history) or history[i][0] != history[begun][0]:
            rows = history[begun:i]
            stretches.append((rows[0][0], np.array([row[1] for row in rows]) - since,
                              np.array([row[2] for row in rows])))
            begun, since = i, rows[-1][1]
    return stretches


def effective_sample_size(weights: np.ndarray) -> float:
    """(sum w)^2 / sum w^2: how many equally weighted samples the weights are worth."""
    return float(weights.sum() ** 2 / np.sum(weights**2))


def normalised(log_weights: np.ndarray) -> np.ndarray:
    """Weights summing to 1 from log-weights (shifted by their maximum: no underflow); NaN
    counts as -inf, and when no log-weight is finite the weights are equal (the prior)."""
    log_weights = np.where(np.isnan(log_weights), -np.inf, log_weights)
    top = np.max(log_weights)
    if not np.isfinite(top):
        return np.full(log_weights.shape, 1.0 / log_weights.size)
    weights = np.exp(log_weights - top)
    return weights / weights.sum()


def tempered(log_likelihood_: np.ndarray, floor: float) -> tuple[np.ndarray, float]:
    """The weights of the likelihood raised to the largest tau in (0, 1] whose effective sample
    size reaches ``floor`` (bisection: the size falls as tau grows), and tau."""
    if effective_sample_size(normalised(log_likelihood_)) >= floor:
        return normalised(log_likelihood_), 1.0
    low, high = 0.0, 1.0
    for _ in range(40):
        middle = 0.5 * (low + high)
        if effective_sample_size(normalised(middle * log_likelihood_)) >= floor:
            low = middle
        else:
            high = middle
    return normalised(low * log_likelihood_), low


@dataclass(frozen=True)
class Posterior:
    """Weights over the samples of ``curves`` (the prior, widened by ``widening``), with what
    the update found: the noise, the best sample's mean squared standardised residual
    (``misfit``), the effective sample size before and after tempering, and tau."""

    curves: SampleCurves
    weights: np.ndarray
    sigma: float
    misfit: float
    ess_raw: float
    ess: float
    widening: float
    tau: float

    def record(self) -> dict[str, float]:
        """What a run's log keeps of an update."""
        return {"sigma": self.sigma, "misfit": self.misfit, "ess_raw": self.ess_raw,
                "ess": self.ess, "widening": self.widening, "tau": self.tau}

    def heaviest(self, mass: float, most: int) -> np.ndarray:
        """Indices of the fewest heaviest samples that hold ``mass`` of the weight (at most
        ``most``)."""
        order = np.argsort(-self.weights, kind="stable")
        count = int(np.searchsorted(np.cumsum(self.weights[order]), mass)) + 1
        return order[:min(count, most, order.size)]


class Prior:
    """A law set's samples and their widened versions (built once, shared by every run)."""

    def __init__(self, laws: LawSet, ess_floor: float | None = None) -> None:
        self.laws = with_prior(laws)
        self._curves: dict[float, SampleCurves] = {}
        count = len(self.laws.shapes[0].samples)
        self.ess_floor = (ess_floor if ess_floor is not None
                          else min(count, max(MIN_ESS, ESS_SHARE * count)))

    def curves(self, widening: float) -> SampleCurves:
        if widening not in self._curves:
            self._curves[widening] = SampleCurves(widened(self.laws, widening))
        return self._curves[widening]

    def update(self, history: History, penalty: float = 0.0) -> Posterior:
        """The posterior given the run's ``history`` (see the module docstring)."""
        sigma = noise_estimate(history)
        evaluations = sum(row[1] > 0 for row in history)
        likelihood = log_likelihood(self.curves(1.0), history, sigma, penalty)
        raw = effective_sample_size(normalised(likelihood))
        misfit = -2.0 * float(np.max(likelihood)) / evaluations
        widening = 1.0
        if raw < self.ess_floor and misfit > MISFIT:
            widening, likelihood = self._widest_evidence(likelihood, history, sigma, penalty)
        weights, tau = (tempered(likelihood, self.ess_floor) if misfit > MISFIT
                        else (normalised(likelihood), 1.0))
        return Posterior(self.curves(widening), weights, sigma, misfit, raw,
                         effective_sample_size(weights), widening, tau)

    def _widest_evidence(self, likelihood: np.ndarray, history: History, sigma: float,
                         penalty: float) -> tuple[float, np.ndarray]:
        """Among ``WIDENINGS``, the one of highest evidence (log mean likelihood)."""
        best = (_log_mean_exp(likelihood), 1.0, likelihood)
        for factor in WIDENINGS[1:]:
            candidate = log_likelihood(self.curves(factor), history, sigma, penalty)
            best = max(best, (_log_mean_exp(candidate), factor, candidate), key=lambda t: t[0])
        return best[1], best[2]


def _log_mean_exp(values: np.ndarray) -> float:
    top = float(np.max(values))
    if not math.isfinite(top):
        return top
    return top + math.log(float(np.mean(np.exp(values - top))))
