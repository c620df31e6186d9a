"""The shape controller on its own: the curve format of `validate train`, FLOPs per shape
against the closed forms, exact resume, learning rate at a batch switch."""

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from laws.search import plan
from laws.search.request import PlanRequest
from sim.level import window_size
from sim.policies import Scheduled, Static, planned
from tests.components import require
from validate import data
from validate.config import TrainConfig
from validate.controller import ShapeController
from validate.flops import dense_train_flops, transformer_train_flops
from validate.operators import BatchSize, MlpWidth, VitPatch

# A width-16 MLP is cheaper at high loss, width 64 at low loss: the plan switches near 0.45.
MLP_LAWS = LawSet("mlp", (
    Shape("w16", {"width": 16, "batch": 32}, PowerLaw(2.0, 0.2, 0.2)),
    Shape("w64", {"width": 64, "batch": 64}, PowerLaw(3.0, 0.2, 0.1))))
MLP_PLAN = plan(MLP_LAWS, PlanRequest.for_laws(MLP_LAWS, 0.25, start_loss=0.6))
TEACHER = data.Teacher()  # 16 inputs, 4 outputs


def mlp_run(run_dir=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    operators = {"width": MlpWidth([(model[0], model[2])], noise=0.01), "batch": BatchSize()}
    controller = ShapeController(optimizer, planned(MLP_PLAN, MLP_LAWS), MLP_LAWS, operators,
                                 shape="w16", run_dir=run_dir)
    return model, optimizer, controller


def train_mlp(model, optimizer, controller, until_step):
    """Steps until ``until_step``, an evaluation every 5; batches follow the sample position."""
    probe = TEACHER.sample(512, torch.Generator().manual_seed(99))
    while controller.steps < until_step:
        batch = controller.axes["batch"]
        inputs, targets = TEACHER.sample(batch, data.batch_generator(0, controller.samples))
        with controller.step(samples=batch):
            loss = F.mse_loss(model(inputs), targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        if controller.steps % 5 == 0:
            with torch.no_grad():
                controller.observe(F.mse_loss(model(probe[0]), probe[1]).item(), loss.item())


def test_records_have_the_format_of_validate_train(tmp_path):
    """Every key `validate train` writes (the shape name included), with values of the same
    types."""
    from validate.config import TrainConfig
    from validate.switches import Switch, switch_schedule
    from validate.tasks import make_task
    from validate.train import train

    task = make_task("mlp-width")
    policy, shapes = switch_schedule(task, {"width": 8, "batch": 16},
                                     [Switch({"width": 16}, at_loss=1e9)])
    train(task, {"width": 8, "batch": 16}, 2e7, policy, TrainConfig(evals=3), shapes=shapes,
          run_dir=tmp_path / "train", progress=False)
    theirs = [json.loads(line) for line in (tmp_path / "train" / "curve.jsonl").open()]
    model, optimizer, controller = mlp_run(tmp_path / "ours")
    train_mlp(model, optimizer, controller, 60)
    ours = [json.loads(line) for line in (tmp_path / "ours" / "curve.jsonl").open()]
    assert ours == controller.records
    for event in ("eval", "switch"):
        (their,) = {json.dumps(_types(r)) for r in theirs if r["event"] == event}
        (our,) = {json.dumps(_types(r)) for r in ours if r["event"] == event}
        assert json.loads(our) == json.loads(their)
    assert [r["shape_name"] for r in theirs if r["event"] == "eval"][-1] == "width16-batch16"


def _types(record):
    """Each key's JSON type; numbers are one type (json writes 2.0 and 2 alike for fit)."""
    def kind(value):
        if isinstance(value, bool) or value is None:
            return type(value).__name__
        if isinstance(value, (int, float)):
            return "number"
        if isinstance(value, dict):
            return {key: kind(item) for key, item in value.items()}
        return type(value).__name__
    return {key: kind(value) for key, value in record.items() if key != "train_loss"}


def test_a_switch_fires_at_the_plan_level_and_rescales_the_learning_rate():
    model, optimizer, controller = mlp_run()
    train_mlp(model, optimizer, controller, 60)
    level = MLP_PLAN.optimal.schedule[0].loss_to
    evals = [r for r in controller.records if r["event"] == "eval"]
    (switch,) = [r for r in controller.records if r["event"] == "switch"]
    fired = next(i for i, r in enumerate(evals) if r["eval_loss"] <= level)
    assert 0 < fired < len(evals) - 1
    assert switch["eval_loss"] == evals[fired]["eval_loss"] and switch["to"]["width"] == 64
    assert [r["lr"] for r in evals] == [3e-3] * (fired + 1) + [3e-3 * 2**0.5] * (
        len(evals) - fired - 1)  # sqrt(64 / 32)
    assert model[0].out_features == 64
    assert controller.samples == 32 * switch["step"] + 64 * (60 - switch["step"])


def test_resume_continues_exactly(tmp_path):
    model, optimizer, controller = mlp_run()
    train_mlp(model, optimizer, controller, 60)

    first = mlp_run(tmp_path / "resumed")
    train_mlp(*first, 25)
    saved = copy.deepcopy({"model": first[0].state_dict(), "optimizer": first[1].state_dict(),
                           "controller": first[2].state_dict()})
    train_mlp(*first, 35)  # work after the save, lost when the run is killed
    model2, optimizer2, controller2 = mlp_run(tmp_path / "resumed")
    controller2.load_state_dict(saved["controller"])
    model2.load_state_dict(saved["model"])
    optimizer2.load_state_dict(saved["optimizer"])
    train_mlp(model2, optimizer2, controller2, 60)

    for ours, theirs in zip(model2.parameters(), model.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    def untimed(records):
        return [{k: v for k, v in r.items() if k != "time"} for r in records]
    assert untimed(controller2.records) == untimed(controller.records)
    written = [json.loads(line) for line in (tmp_path / "resumed" / "curve.jsonl").open()]
    assert untimed(written) == untimed(controller.records)
    assert controller2.trained_flops == controller.trained_flops


def test_step_flops_of_a_timm_vit_match_the_closed_form():
    try:
        from validate.operators.timm_import import import_timm

        timm = import_timm()
    except ModuleNotFoundError as err:
        require("timm", f"not installed ({err})")
    torch.manual_seed(0)
    dim, depth, batch = 32, 2, 8
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=dim, depth=depth,
        num_heads=2)
    laws = LawSet("vit", tuple(Shape(f"p{p}", {"patch": p}, PowerLaw(1.0, 0.1, 0.0))
                               for p in (28, 14, 7)))
    optimizer = torch.optim.AdamW(model.parameters())
    controller = ShapeController(optimizer, Static("p7"), laws,
                                 {"patch": VitPatch(model, "merge")}, shape="p7")
    images, labels = torch.randn(batch, 1, 28, 28), torch.arange(batch) % 10
    for patch in (7, 14, 28):
        if patch != 7:
            controller.switch_to(f"p{patch}")
        with controller.step(samples=batch):
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
        tokens = (28 // patch) ** 2
        # The patch embedding (input is data: no input gradient), the blocks on the patch tokens
        # and the class token, the head on the class token; merging tiles weights: no products.
        by_hand = batch * (dense_train_flops(tokens, patch**2, dim, input_needs_grad=False)
                           + transformer_train_flops(tokens + 1, dim, depth, 4 * dim)
                           + dense_train_flops(1, dim, 10))
        assert controller.step_flops[f"p{patch}"] == by_hand
    assert controller.trained_flops == sum(controller.step_flops.values())


def test_an_axis_without_operator_is_refused():
    with pytest.raises(ValueError, match="differ in 'width'"):
        ShapeController(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1),
                        Static("w16"), MLP_LAWS, {"batch": BatchSize()}, shape="w16")


def test_the_policy_is_asked_only_at_or_below_stay_above():
    asked = []

    class Spy(Static):
        stay_above = 1.0

        def decide(self, run):
            asked.append(run.observed)
            return None

    laws = LawSet("one", (MLP_LAWS.shapes[0],))
    controller = ShapeController(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1),
                                 Spy("w16"), laws, {}, shape="w16")
    for loss in (2.0, 1.5, 1.0, 0.5, 3.0):
        controller.observe(loss)
    controller.observe(0.2, final=True)  # the run's last evaluation: recorded, nothing asked
    assert asked == [1.0, 0.5]
    assert controller.lowest_observed == 0.2 and controller.evaluations == 6
    assert math.isinf(controller.policy_rng.random() * math.inf)


def test_a_flop_level_switches_after_the_step_that_reaches_it():
    """A schedule that leaves w16 at a FLOP level (shapes given by their axes, no law set):
    the switch comes right after the step that reaches the level, between evaluations."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    narrow = 32 * (dense_train_flops(1, 16, 16, False) + dense_train_flops(1, 16, 4))
    shapes = {"w16": {"width": 16, "batch": 32}, "w64": {"width": 64, "batch": 64}}
    policy = Scheduled("at-flops", [("w16", -math.inf, 7.5 * narrow), ("w64", -math.inf)])
    operators = {"width": MlpWidth([(model[0], model[2])]), "batch": BatchSize()}
    controller = ShapeController(optimizer, policy, shapes, operators, shape="w16")
    assert controller.next_step_flops() is None  # counted on the first step
    train_mlp(model, optimizer, controller, 12)  # evaluations after steps 5 and 10 only
    (switch,) = [r for r in controller.records if r["event"] == "switch"]
    assert (switch["step"], switch["flops"], switch["eval_loss"]) == (8, 8 * narrow, None)
    assert switch["to"] == shapes["w64"] and model[0].out_features == 64
    assert controller.samples == 8 * 32 + 4 * 64
    assert [r["shape_name"] for r in controller.records if r["event"] == "eval"] == ["w16", "w64"]


def test_a_loss_level_ends_where_the_runs_level_reaches_it_not_at_one_low_evaluation():
    """One FLOP a step, an evaluation after each. Level 1.0; evaluation k's window holds those
    from 0.9 k FLOPs on. At 19 (18, 19: 1.1, 0.95) one evaluation is below the level, the
    median 1.025 is not: no switch. At 20 (1.1, 0.95, 1.05) 1.05. At 21 (0.95, 1.05, 0.98)
    0.98: the switch, right after that evaluation."""
    parameter = torch.zeros(1, requires_grad=True)
    policy = Scheduled("by-loss", [("a", 1.0), ("b", -math.inf)])
    controller = ShapeController(torch.optim.SGD([parameter], lr=0.1), policy,
                                 {"a": {}, "b": {}}, {}, shape="a", flops=lambda shape: 1.0)
    for loss in [1.2] * 17 + [1.1, 0.95, 1.05, 0.98, 0.9]:
        with controller.step():
            pass
        controller.observe(loss)
    (switch,) = [r for r in controller.records if r["event"] == "switch"]
    assert (switch["flops"], switch["eval_loss"]) == (21.0, 0.98)
    assert controller.level == 0.98  # at 22 FLOPs the window is 20 to 22: 1.05, 0.98, 0.9


@pytest.mark.parametrize(("evals", "widest"), [(30, 1), (44, 1), (45, 2), (96, 3)])
def test_how_many_evaluations_a_real_runs_level_reads(evals, widest):
    """A run's evaluations lie at 1% of its budget times r^k, r = 100^(1 / (evals - 1)); the
    level reads those from 0.9 of the last one's FLOPs on: 1 + floor(ln(1 / 0.9) / ln r) of
    them, once the run has that many. So up to 44 evaluations (r > 1 / 0.9) it reads the last
    one alone, with 96 (r = 1.0497) the last three."""
    assert widest == 1 + math.floor(math.log(1 / 0.9) / math.log(100 ** (1 / (evals - 1))))
    history = [("a", flops, 1.0) for flops in TrainConfig(evals=evals).eval_levels(1e12)]
    assert max(window_size(history[:k]) for k in range(1, len(history) + 1)) == widest
