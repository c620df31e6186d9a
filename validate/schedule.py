"""Learning-rate schedules: the factor that multiplies ``--lr`` at each step of a run.

    >>> lr_factor("wsd", step=900, progress=0.875, warmup_steps=50, cooldown=0.25)
    0.5
    >>> lr_factor("cosine", step=900, progress=0.5, warmup_steps=50, cooldown=0.25)
    0.5

Each schedule is a linear warm-up times a decay. The warm-up counts optimizer steps, as it did
before schedules existed: (step + 1) / ``warmup_steps``, capped at 1. The decay reads the run's
``progress``, the share of its training-FLOP budget spent before the step:

- ``constant``: 1. Every static curve is then a law at every compute (what ``shapeshift fit``
  reads); the default, and what every run recorded before schedules existed trained with.
- ``wsd`` (warm-up, stable, decay): 1 until the last ``cooldown`` share of the budget, then
  linear to 0 at the end of the budget: (1 - progress) / cooldown.
- ``cosine``: half a cosine over the whole budget, from 1 at its start to 0 at its end:
  (1 + cos(pi progress)) / 2. The floor is 0, as wsd's, so that the two schedules end at the
  same rate and differ only in the shape of the decay (and no floor setting is needed). The
  cosine starts with the run, not after the warm-up, so that the decay needs no warm-up
  boundary in FLOPs; over a 50-step warm-up of a 1000-step run it has fallen by 0.6%.

Progress in FLOPs. A static run's step budget is its FLOP budget over its FLOPs per step, and
its progress is step / that budget. A shape switch changes the FLOPs per step, so the number of
steps left changes with it; measuring progress in FLOPs spent keeps the learning rate a
function of the FLOPs spent, continuous across a switch: no jump, no restart of the decay, and
the cool-down starts where the budget has ``cooldown`` of itself left whatever shapes trained
before. A batch-size switch still multiplies the peak rate by its rule (``--batch-lr-rule``);
the schedule multiplies the rescaled rate from then on. The run stops before the step that
would exceed the budget, so every step trains at a rate above 0.

Resume: the factor is a pure function of the steps done, the FLOPs spent, the budget and the
settings, all saved with a checkpoint, so a resumed run sets the rate of every step exactly as
an uninterrupted run does.
"""

from __future__ import annotations

import math

from laws.errors import InputError

# Each decay takes (progress, cooldown), so that all three share one call.
_DECAYS = {
    "constant": lambda progress, cooldown: 1.0,
    "wsd": lambda progress, cooldown: min(1.0, (1.0 - progress) / cooldown),
    "cosine": lambda progress, cooldown: (1.0 + math.cos(math.pi * progress)) / 2,
}
SCHEDULES = tuple(_DECAYS)


def lr_factor(schedule: str, step: int, progress: float, *, warmup_steps: int,
              cooldown: float) -> float:
    """The factor of the peak learning rate at optimizer step ``step`` (0 for the first),
    ``progress`` the share of the FLOP budget spent before it (see the module docstring).

    >>> [lr_factor("constant", step, 0.0, warmup_steps=4, cooldown=0.2) for step in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """
    check_schedule(schedule, cooldown)
    warmup = min(1.0, (step + 1) / max(1, warmup_steps))
    return warmup * _DECAYS[schedule](progress, cooldown)


def check_schedule(schedule: str, cooldown: float) -> None:
    """Refuse an unknown schedule or a cool-down share outside (0, 1], naming the options.

    >>> check_schedule("wsd", 0.0)
    Traceback (most recent call last):
    ...
    laws.errors.InputError: --cooldown 0.0: must be a share of the budget in (0, 1]
    """
    if schedule not in _DECAYS:
        raise InputError(f"--schedule {schedule!r}: must be one of {', '.join(SCHEDULES)}")
    finite = isinstance(cooldown, (int, float)) and math.isfinite(cooldown)
    if not finite or not 0 < cooldown <= 1:
        raise InputError(f"--cooldown {cooldown}: must be a share of the budget in (0, 1]")
