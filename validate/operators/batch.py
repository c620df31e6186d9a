"""Batch size: the model is untouched, the learning rate follows a rule.

The rule is ``validate.reshape.batch_lr_scale`` (``sqrt``, ``linear`` or ``none``), the one
``shapeshift validate train`` uses; the controller applies the factor to the optimizer and to
a learning-rate scheduler's base rates, so that a schedule (warm-up, decay) keeps its shape at
the new scale. Drawing batches of the new size is the training loop's job: it reads the
current size from ``controller.axes["batch"]``.
"""

from __future__ import annotations

from validate.operators.base import Operator
from validate.reshape import batch_lr_scale


class BatchSize(Operator):
    """The ``batch`` axis.

    >>> BatchSize("sqrt").lr_factor(64, 256), BatchSize("linear").lr_factor(256, 64)
    (2.0, 0.25)
    """

    def __init__(self, rule: str = "sqrt") -> None:
        batch_lr_scale(1, 1, rule)  # rejects an unknown rule now, not at the first switch
        self.rule = rule

    def lr_factor(self, old: int, new: int) -> float:
        return batch_lr_scale(new, old, self.rule)
