"""Plans that end with a cool-down (laws.search.cooldown), against brute force over the switch
loss on closed-form power laws: a run that ends on Q reaches Q's stable loss
e_Q = L_Q((1 - F) C^a_Q(target)) and then cools down for F / (1 - F) of what it trained."""

from __future__ import annotations

import numpy as np
import pytest

from laws.errors import InputError, UnreachableTarget
from laws.forms import PowerLaw
from laws.io.lawfile import law_set_from_dict, law_set_to_dict
from laws.io.source import law_set_digest
from laws.lawset import Annealed, LawSet, Shape
from laws.search import plan
from laws.search.cooldown import plan_with_cooldown
from laws.search.request import PlanRequest

SHARE = 0.2
START = 6.0
# A switch into the last shape just above its stable loss costs almost nothing in the continuum
# and a whole grid step on the search's grid: one way keeps the brute force and search alike.
ONE_WAY = (("p", "q"),)
# P learns fast and flattens early; Q starts slow and goes lower. Their anneals differ.
HOT = {"p": PowerLaw(a=20.0, b=0.35, c=2.0), "q": PowerLaw(a=120.0, b=0.45, c=1.5)}
ANNEALED = {"p": PowerLaw(a=17.0, b=0.35, c=1.95), "q": PowerLaw(a=95.0, b=0.45, c=1.45)}


def make_laws(hot=HOT, annealed=ANNEALED, share=SHARE, throughput=None) -> LawSet:
    return LawSet("toy", tuple(
        Shape(name, {"size": i}, hot[name],
              throughput=None if throughput is None else throughput[name],
              annealed=Annealed(annealed[name], share))
        for i, name in enumerate(hot)))


def power_compute(law: PowerLaw, loss):
    return (np.asarray(loss, dtype=float) - law.c) ** (-1 / law.b) * law.a ** (1 / law.b)


def power_loss(law: PowerLaw, compute):
    return law.c + law.a * np.asarray(compute, dtype=float) ** -law.b


def brute_force(target: float, speed: dict[str, float] | None = None) -> dict[str, float]:
    """Each last shape's cheapest total cost (training, then the cool-down on it), from a dense
    grid of switch losses: p alone, q alone, or p then q (the one switch ``ONE_WAY`` allows,
    free and landing at the loss it leaves)."""
    speed = speed or {"p": 1.0, "q": 1.0}
    totals = {}
    budget = power_compute(ANNEALED["p"], target)
    alone = power_compute(HOT["p"], power_loss(HOT["p"], (1 - SHARE) * budget))
    totals["p"] = alone / speed["p"] / (1 - SHARE)
    for last, first in (("q", "p"),):
        budget = power_compute(ANNEALED[last], target)
        stable = power_loss(HOT[last], (1 - SHARE) * budget)
        alone = power_compute(HOT[last], stable)
        switch = np.linspace(stable, START, 2_000_001)[1:]
        before = power_compute(HOT[first], switch)
        after = alone - power_compute(HOT[last], switch)
        # every route: switch at each loss, or the last shape alone; FLOPs and cost
        trained = np.append(before + after, alone)
        costs = np.append(before / speed[first] + after / speed[last], alone / speed[last])
        cheapest = np.argmin(costs)
        totals[last] = costs[cheapest] + SHARE / (1 - SHARE) * trained[cheapest] / speed[last]
    return totals


def test_each_ending_matches_brute_force_over_the_switch_loss():
    laws = make_laws()
    target = 2.0
    result = plan_with_cooldown(laws, PlanRequest.for_laws(laws, target, start_loss=START,
                                                           levels=20_000, allowed=ONE_WAY))
    expected = brute_force(target)
    for ending in result.endings:
        assert ending.cost == pytest.approx(expected[ending.shape], rel=2e-4)
        assert ending.route.schedule[-1].shape == ending.shape
    best = min(expected, key=expected.get)
    assert result.ending.shape == best
    static = {name: power_compute(ANNEALED[name], target) for name in HOT}
    assert result.static == pytest.approx(static, rel=1e-12)
    best_static = min(static, key=static.get)
    assert result.static_best.shape == best_static
    assert result.saving_vs_static == pytest.approx(1 - expected[best] / static[best_static],
                                                    abs=3e-4)
    assert result.saving_vs_static > 0.05  # the toy is built to switch


def test_a_static_ending_costs_its_annealed_budget():
    """A shape alone reaches its stable loss at (1 - F) B and cools down for F B: B in all."""
    only_p = {"p": HOT["p"]}
    laws = make_laws(hot=only_p, annealed={"p": ANNEALED["p"]})
    result = plan_with_cooldown(laws, PlanRequest.for_laws(laws, 2.3, start_loss=START))
    budget = power_compute(ANNEALED["p"], 2.3)
    assert result.ending.compute == pytest.approx(budget, rel=1e-12)
    assert result.ending.cooldown_compute == pytest.approx(SHARE * budget, rel=1e-12)
    assert result.stable_loss == pytest.approx(power_loss(HOT["p"], (1 - SHARE) * budget))
    assert result.saving_vs_static == pytest.approx(0.0, abs=1e-12)


def test_the_cool_down_trains_at_the_last_shape_speed():
    """Objective seconds: the cool-down's FLOPs are charged at the last shape's throughput."""
    speed = {"p": 3.0, "q": 1.0}
    laws = make_laws(throughput=speed)
    request = PlanRequest.for_laws(laws, 2.0, start_loss=START, levels=20_000,
                                   objective="seconds", allowed=ONE_WAY)
    result = plan_with_cooldown(laws, request)
    expected = brute_force(2.0, speed)
    for ending in result.endings:
        assert ending.cost == pytest.approx(expected[ending.shape], rel=2e-4)


def test_the_anneal_can_change_the_best_static_shape():
    """Equal constant-rate laws: only the anneal tells the shapes apart."""
    hot = {"p": HOT["p"], "q": HOT["p"]}
    annealed = {"p": PowerLaw(a=19.0, b=0.35, c=2.0), "q": PowerLaw(a=15.0, b=0.35, c=1.9)}
    laws = make_laws(hot=hot, annealed=annealed)
    result = plan_with_cooldown(laws, PlanRequest.for_laws(laws, 2.5, start_loss=START))
    assert result.static_best.shape == "q"
    assert result.ending.shape == "q"


def test_end_on_restricts_the_route_not_the_static_shapes():
    laws = make_laws()
    free = plan(laws, PlanRequest.for_laws(laws, 2.3, start_loss=START))
    ending_on_p = plan(laws, PlanRequest.for_laws(laws, 2.3, start_loss=START, end_on="p"))
    assert free.optimal.shapes[-1] == "q"
    assert ending_on_p.optimal.shapes[-1] == "p"
    assert ending_on_p.static == free.static
    with pytest.raises(InputError, match="unknown shape 'r'"):
        plan(laws, PlanRequest.for_laws(laws, 2.3, start_loss=START, end_on="r"))


def test_a_request_without_end_on_reads_and_writes_as_before():
    laws = make_laws()
    request = PlanRequest.for_laws(laws, 2.3)
    assert "end_on" not in request.to_dict()
    assert PlanRequest.from_dict(request.to_dict()) == request
    ending = PlanRequest.for_laws(laws, 2.3, end_on="q")
    assert ending.to_dict()["end_on"] == "q"
    assert PlanRequest.from_dict(ending.to_dict()) == ending


def test_a_shape_without_an_annealed_law_is_trained_but_never_ends_the_run():
    """q has no annealed law: the run must end on p, and q has no static budget after the
    anneal (it may still be trained on the way)."""
    laws = make_laws()
    partial = LawSet("toy", (laws.shapes[0], Shape("q", {"size": 1}, HOT["q"])))
    result = plan_with_cooldown(partial, PlanRequest.for_laws(partial, 2.1, start_loss=START))
    assert [ending.shape for ending in result.endings] == ["p"]
    assert result.static == {"p": pytest.approx(power_compute(ANNEALED["p"], 2.1)), "q": None}
    assert result.static_best.shape == "p"
    assert result.ending.route.schedule[-1].shape == "p"


def test_refusals():
    laws = make_laws()
    bare = LawSet("toy", tuple(Shape(s.name, s.axes, s.law) for s in laws.shapes))
    with pytest.raises(InputError, match="needs annealed laws; law set 'toy' has none"):
        plan_with_cooldown(bare, PlanRequest.for_laws(bare, 2.0, start_loss=START))
    mixed = LawSet("toy", (laws.shapes[0], Shape("q", {"size": 1}, HOT["q"],
                                                 annealed=Annealed(ANNEALED["q"], 0.1))))
    with pytest.raises(InputError, match=r"different cool-down shares \(0.1, 0.2\)"):
        plan_with_cooldown(mixed, PlanRequest.for_laws(mixed, 2.0, start_loss=START))
    with pytest.raises(UnreachableTarget, match="annealed floor"):
        plan_with_cooldown(laws, PlanRequest.for_laws(laws, 1.4, start_loss=START))
    with pytest.raises(InputError, match="cooldown 1.0 must be a share"):
        Annealed(ANNEALED["p"], 1.0)


def test_law_files_keep_annealed_laws_and_old_digests():
    laws = make_laws()
    assert law_set_from_dict(law_set_to_dict(laws), "toy.json") == laws
    entry = law_set_to_dict(laws)["shapes"][0]["annealed"]
    assert entry == {"cooldown": SHARE, "form": "power",
                     "params": {"a": 17.0, "b": 0.35, "c": 1.95}}
    plain = LawSet("toy", tuple(Shape(s.name, s.axes, s.law) for s in laws.shapes))
    data = law_set_to_dict(plain)
    assert all("annealed" not in shape for shape in data["shapes"])
    assert law_set_digest(law_set_from_dict(data, "toy.json")) == law_set_digest(plain)


def test_the_stable_phase_is_the_plan_of_its_request():
    """What a loop trains before the cool-down: ``plan`` of the ending's request has its route."""
    laws = make_laws()
    result = plan_with_cooldown(laws, PlanRequest.for_laws(laws, 2.0, start_loss=START))
    stable = plan(laws, result.ending.request)
    assert stable.optimal == result.ending.route
    assert stable.target_loss == result.stable_loss
