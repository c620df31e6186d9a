"""The fitting objective: Huber loss on log-loss residuals, summed over points, with gradients.

Every form predicts log-loss as a log-sum-exp of a few terms (Epoch AI's parametrisation of
Chinchilla's fit), so that scales and the floor stay positive without bounds and the gradient
is a softmax-weighted sum of simple derivatives. Parameters are "internal": logarithms of the
scales and floor, plain exponents.

=============  ===============================  =================================
form           internal parameters              predicted loss
=============  ===============================  =================================
power          la, b, e                         e^e + e^la u^-b,  u = C / C_ref
saturating     la, b, e, ld                     e^e + e^la (u + e^ld)^-b
chinchilla     a, b, e, alpha, beta             e^e + e^a N^-alpha + e^b D^-beta
=============  ===============================  =================================

>>> model = PowerModel(np.array([1.0, 10.0]))
>>> np.round(np.exp(model.log_loss(np.array([[[0.0], [0.5], [0.0]]]))), 4)
array([[4.1623, 2.    ]])
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from laws.forms import ChinchillaLaw, Law, PowerLaw, SaturatingLaw

HUBER_DELTA = 1e-3  # Epoch AI's choice for Chinchilla: nearly an L1 fit of log-loss
EXPONENT_BOUNDS = (1e-4, 10.0)  # laws must strictly decrease (exponent > 0)
# Up to this many points a per-shape gradient sums in point order, as bincount adds: the bits
# of every fit so far. Summed another way, ill-determined fits of few points (a floor of 1e-9,
# a saturating offset) end far apart. Beyond (the rows of a per-step curve), and for the points
# of a reduced curve (weights that are no whole counts of rows: no fit before had them), one
# product of the slopes and the Jacobian: a twentieth of the time on 150,000 rows, two thirds
# on 1,300 points, and no less accurate.
ORDERED_SUMS_UP_TO = 10_000


def huber(residuals: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    """Huber penalty of each residual: quadratic within ``delta``, linear beyond.

    >>> huber(np.array([0.0, 0.001, 0.003]), delta=0.002).tolist()
    [0.0, 5e-07, 4e-06]
    """
    a = np.abs(residuals)
    return np.where(a <= delta, 0.5 * residuals**2, delta * (a - 0.5 * delta))


def _log_sum_exp(terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(sum exp) over axis -2 and the softmax weights (the derivative of it per term)."""
    top = terms.max(axis=-2, keepdims=True)
    scaled = np.exp(terms - top)
    total = scaled.sum(axis=-2, keepdims=True)
    return (top + np.log(total))[..., 0, :], scaled / total


class Model(ABC):
    """A form's log-loss prediction on fixed points, batched over parameter sets.

    Parameters come as an array (k, p, m): k parameter sets, p parameters, and m = 1 (the same
    values for every point) or m = n (values per point, for joint fits of several shapes).
    """

    names: tuple[str, ...]  # internal parameter names
    exponent_index: tuple[int, ...]  # positions of the exponents (bounded positive)

    @abstractmethod
    def terms(self, theta: np.ndarray) -> np.ndarray:
        """The log-sum-exp terms, shape (k, terms, n)."""

    @abstractmethod
    def terms_jacobian(self, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """d log-loss / d theta, shape (n, p), at one parameter set (p, m) given the softmax
        weights of the terms (terms, n)."""

    @abstractmethod
    def law(self, theta: np.ndarray, scale: float) -> Law:
        """The law of internal parameters ``theta`` (p,) for a shape whose reference compute
        (power, saturating) or model size N (chinchilla) is ``scale``."""

    @property
    def n_params(self) -> int:
        return len(self.names)

    def log_loss(self, theta: np.ndarray) -> np.ndarray:
        """Predicted log-loss for each parameter set: (k, p, m) -> (k, n)."""
        return _log_sum_exp(self.terms(theta))[0]

    def log_loss_and_jacobian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted log-loss (n,) and its Jacobian (n, p) at one parameter set (p, m)."""
        value, weights = _log_sum_exp(self.terms(theta[None]))
        return value[0], self.terms_jacobian(theta, weights[0])

    def bounds(self) -> list[tuple[float | None, float | None]]:
        return [EXPONENT_BOUNDS if i in self.exponent_index else (None, None)
                for i in range(self.n_params)]


def _constant(value: np.ndarray, n: int) -> np.ndarray:
    return np.broadcast_to(value, value.shape[:-1] + (n,))


class PowerModel(Model):
    """loss = e^e + e^la (C / C_ref)^-b; C_ref, the largest compute of the point's shape,
    keeps la near 0 whatever the units."""

    names = ("la", "b", "e")
    exponent_index = (1,)

    def __init__(self, compute: np.ndarray, reference: np.ndarray | float | None = None) -> None:
        compute = np.asarray(compute, dtype=float)
        self.log_u = np.log(compute / (np.max(compute) if reference is None else reference))

    def terms(self, theta: np.ndarray) -> np.ndarray:
        la, b, e = theta[:, 0], theta[:, 1], theta[:, 2]
        return np.stack([la - b * self.log_u, _constant(e, self.log_u.size)], axis=1)

    def terms_jacobian(self, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
        scale, floor = weights
        return np.stack([scale, -self.log_u * scale, floor], axis=1)

    def law(self, theta: np.ndarray, scale: float) -> Law:
        la, b, e = theta
        return PowerLaw(a=float(np.exp(la) * scale**b), b=float(b), c=float(np.exp(e)))


class SaturatingModel(Model):
    """loss = e^e + e^la (C / C_ref + e^ld)^-b: finite loss at zero compute."""

    names = ("la", "b", "e", "ld")
    exponent_index = (1,)

    def __init__(self, compute: np.ndarray, reference: np.ndarray | float | None = None) -> None:
        compute = np.asarray(compute, dtype=float)
        self.u = compute / (np.max(compute) if reference is None else reference)

    def terms(self, theta: np.ndarray) -> np.ndarray:
        la, b, e, ld = theta[:, 0], theta[:, 1], theta[:, 2], theta[:, 3]
        shifted = np.log(self.u + np.exp(ld))
        return np.stack([la - b * shifted, _constant(e, self.u.size)], axis=1)

    def terms_jacobian(self, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
        _, b, _, ld = theta
        scale, floor = weights
        offset = np.exp(ld)
        shifted = np.log(self.u + offset)
        return np.stack([scale, -shifted * scale, floor, -b * offset / (self.u + offset) * scale],
                        axis=1)

    def bounds(self) -> list[tuple[float | None, float | None]]:
        # The offset must stay a positive double once scaled to FLOPs: d > 0 defines the form.
        bounds = super().bounds()
        bounds[self.names.index("ld")] = (-300.0, None)
        return bounds

    def law(self, theta: np.ndarray, scale: float) -> Law:
        la, b, e, ld = theta
        return SaturatingLaw(a=float(np.exp(la) * scale**b), b=float(b), c=float(np.exp(e)),
                             d=float(np.exp(ld) * scale))


class ChinchillaModel(Model):
    """loss = e^e + e^a / N^alpha + e^b / D^beta over points of models of different sizes N."""

    names = ("a", "b", "e", "alpha", "beta")
    exponent_index = (3, 4)

    def __init__(self, n_params: np.ndarray, tokens: np.ndarray) -> None:
        self.log_n = np.log(np.asarray(n_params, dtype=float))
        self.log_d = np.log(np.asarray(tokens, dtype=float))

    def terms(self, theta: np.ndarray) -> np.ndarray:
        a, b, e, alpha, beta = (theta[:, i] for i in range(5))
        return np.stack([a - alpha * self.log_n, b - beta * self.log_d,
                         _constant(e, self.log_n.size)], axis=1)

    def terms_jacobian(self, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
        w_n, w_d, w_e = weights
        return np.stack([w_n, w_d, w_e, -self.log_n * w_n, -self.log_d * w_d], axis=1)

    @staticmethod
    def law_params(theta: np.ndarray) -> dict[str, float]:
        """The law-file parameters E0, A, B, alpha, beta (without N)."""
        a, b, e, alpha, beta = (float(v) for v in theta)
        return {"E0": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)),
                "alpha": alpha, "beta": beta}

    def law(self, theta: np.ndarray, scale: float) -> Law:
        return ChinchillaLaw(**self.law_params(theta), N=scale)


class Objective:
    """Sum over points of weight x Huber(predicted - measured log-loss), with its gradient.

    ``index`` (p,) says where the model's parameters sit in the full parameter vector; an
    ``index`` (p, n) says it per point, which is how shapes share some parameters (a common
    floor or exponent) and keep others of their own in a joint fit: the gradient adds up over
    every point that reads a position. ``weights`` count each point: the rows a point kept from
    a reduced per-step curve stands for (``laws.fit.reduce``); a bootstrap resample multiplies
    them by how often it drew each point, instead of copying points.
    """

    def __init__(self, model: Model, log_loss: np.ndarray, index: np.ndarray | None = None,
                 n_params: int | None = None, delta: float = HUBER_DELTA,
                 weights: np.ndarray | None = None) -> None:
        self.model = model
        self.log_loss = np.asarray(log_loss, dtype=float)
        p = model.n_params
        self.index = (np.arange(p) if index is None else np.asarray(index)).reshape(p, -1)
        self.n_params = int(self.index.max()) + 1 if n_params is None else n_params
        self.delta = delta
        self.weights = np.ones(self.log_loss.size) if weights is None else weights
        positions = self.index[:, 0]
        # Every point reads every parameter, each at a position of its own (a per-shape fit):
        # the gradient is then one sum per parameter. Without bincount's index arrays an
        # evaluation of 4,400 points takes 0.85 (power) to 0.33 (saturating) of the time.
        self._column_sums = self.index.shape[1] == 1 and np.unique(positions).size == p
        self._ordered_sums = (self.log_loss.size <= ORDERED_SUMS_UP_TO
                              and np.array_equal(self.weights, np.round(self.weights)))

    def reweighted(self, counts: np.ndarray) -> Objective:
        """The objective with each point's weight multiplied by ``counts``."""
        return Objective(self.model, self.log_loss, self.index, self.n_params, self.delta,
                         counts * self.weights)

    def values(self, thetas: np.ndarray, chunk: int = 256) -> np.ndarray:
        """The objective for each row of ``thetas`` (k, P), vectorised (the screening step)."""
        out = np.empty(len(thetas))
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, len(thetas), chunk):
                rows = thetas[start:start + chunk][:, self.index]
                residual = self.model.log_loss(rows) - self.log_loss
                out[start:start + chunk] = huber(residual, self.delta) @ self.weights
        return np.where(np.isfinite(out), out, np.inf)

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective and its analytic gradient at one parameter vector (for L-BFGS-B)."""
        predicted, jacobian = self.model.log_loss_and_jacobian(theta[self.index])
        residual = predicted - self.log_loss
        value = float(huber(residual, self.delta) @ self.weights)
        slope = np.clip(residual, -self.delta, self.delta) * self.weights
        if self._column_sums and not self._ordered_sums:
            gradient = np.zeros(self.n_params)
            gradient[self.index[:, 0]] = slope @ jacobian
            return value, gradient
        contributions = slope[:, None] * jacobian  # (n, p)
        if self._column_sums:
            gradient = np.zeros(self.n_params)
            # Summed in point order, as bincount adds (the same bits; np.sum pairs terms).
            gradient[self.index[:, 0]] = np.cumsum(contributions, axis=0)[-1]
            return value, gradient
        index = np.broadcast_to(self.index, (self.index.shape[0], slope.size))
        gradient = np.bincount(index.ravel(), weights=contributions.T.ravel(),
                               minlength=self.n_params)
        return value, gradient

    def bounds(self) -> list[tuple[float | None, float | None]]:
        bounds: list[tuple[float | None, float | None]] = [(None, None)] * self.n_params
        for row, bound in zip(self.index, self.model.bounds(), strict=True):
            for position in np.unique(row):
                bounds[position] = bound
        return bounds
