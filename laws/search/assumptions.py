"""What a plan takes for granted about its switches: the free-switch warning.

A switch the search prices at nothing (no FLOPs, no loss penalty and, where the objective
counts time, no seconds) is an assumption, not a measurement: measured switches cost compute
(docs/DESIGN.md, "What a switch costs"). A plan lists each such switch once, so that a reader,
or ``search --strict``, sees what the saving rests on.

>>> from laws.lawset import Transitions
>>> shapes = ["p32", "p16", "p8"]
>>> free_switches(shapes, Transitions(), "flops")
['assumes a free switch p32 -> p16', 'assumes a free switch p16 -> p8']
>>> free_switches(shapes, Transitions(flops=1e17), "flops")
[]
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import pairwise

from laws.errors import InputError
from laws.lawset import Transitions


class FreeSwitchAssumed(InputError):
    """``search --strict`` on a plan whose switches the search priced at nothing."""


def is_free(transitions: Transitions, objective: str) -> bool:
    """Whether a switch costs nothing in ``objective``: the FLOPs objective has no clock, so
    switch seconds do not make a switch cost anything there."""
    seconds = 0.0 if objective == "flops" else transitions.seconds
    return transitions.flops == 0 and transitions.loss_penalty == 0 and seconds == 0


def free_switches(shapes: Sequence[str], transitions: Transitions,
                  objective: str, measured: Collection[tuple[str, str]] = ()) -> list[str]:
    """One line per distinct switch ``A -> B`` of ``shapes`` (a route's, in order)
    that ``transitions`` (the law set's, with the request's overrides) price at nothing,
    leaving out the ``measured`` pairs, which the search charged by their measured transition
    (even where that came to nothing: it was measured)."""
    if not is_free(transitions, objective):
        return []
    seen = dict.fromkeys(pairwise(shapes))
    return [f"assumes a free switch {source} -> {destination}" for source, destination in seen
            if (source, destination) not in measured]


def refuse_free_switches(assumptions: Sequence[str]) -> None:
    """``--strict``: raise ``FreeSwitchAssumed`` naming every free switch of the plan."""
    if assumptions:
        raise FreeSwitchAssumed(
            f"--strict: the plan {'; '.join(assumptions)} (no measured transition and no "
            "--switch-flops, --switch-seconds or --switch-penalty); give the switch cost")
