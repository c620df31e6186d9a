"""One policy object for both sides: the plan's `planned` policy fires at the same evaluations and
loss levels in the simulator and in a real training run fed the simulator's noiseless
observations."""

import torch
import torch.nn.functional as F

from laws.presets import load_preset
from laws.search import plan
from laws.search.request import PlanRequest
from sim import SimConfig, simulate
from sim.policies import planned
from tests.components import require
from validate.controller import ShapeController
from validate.operators import VitPatch

try:
    from validate.operators.timm_import import import_timm

    timm = import_timm()
except ModuleNotFoundError as err:
    require("timm", f"not installed ({err})")


def test_planned_fires_alike_in_the_simulator_and_in_real_training():
    laws = load_preset("vit-patch-fmnist")
    # From an untrained model's loss (2.4-2.6 at step 0), above the laws' measured start: the
    # plan begins at patch 28 and switches twice.
    request = PlanRequest.for_laws(laws, laws.extra["default_target"], start_loss=2.5)
    the_plan = plan(laws, request)
    policy = planned(the_plan, laws)  # the one object both sides are given

    config = SimConfig(noise=0.0, eval_every=1e11, confirm=1, trajectories=True)
    run = simulate(laws, request, [policy], config, runs=1, plan=the_plan).runs_of("planned")[0]
    observed = [row[3] for row in run.trajectory]  # (time, spent, true, observed, shape)
    shapes = [row[4] for row in run.trajectory]
    simulated = [(shapes[i], shapes[i + 1], observed[i]) for i in range(len(shapes) - 1)
                 if shapes[i] != shapes[i + 1]]
    assert [(a, b) for a, b, _ in simulated] == [("patch28", "patch14"), ("patch14", "patch7")]

    torch.manual_seed(0)
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=16, depth=1,
        num_heads=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    controller = ShapeController(optimizer, policy, laws, {"patch": VitPatch(model, "merge")},
                                 shape="patch7")
    generator = torch.Generator().manual_seed(1)
    for loss in observed:
        images, labels = torch.randn(4, 1, 28, 28, generator=generator), torch.arange(4)
        with controller.step(samples=4):
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
            optimizer.zero_grad()
        controller.observe(loss)
    names = {laws.shape(s).axes["patch"]: s for s in laws.names}
    real = [(names[r["from"]["patch"]], names[r["to"]["patch"]], r["eval_loss"])
            for r in controller.records if r["event"] == "switch" and r["eval_loss"] is not None]
    assert real == simulated
    # Each fired at the first evaluation of its shape at or below the plan's level: ten
    # evaluations to the second switch, the run's level reads the last one or two of them.
    levels = [step.loss_to for step in the_plan.optimal.schedule[:2]]
    for (old, _, loss), level in zip(real, levels, strict=True):
        on_old = [value for value, shape in zip(observed, shapes, strict=True) if shape == old]
        assert on_old[-1] == loss <= level < min(on_old[:-1], default=float("inf"))
    assert len([s for s in shapes if s == "patch14"]) > 2  # a segment, not a single step
    assert model.patch_embed.patch_size == (7, 7)
    assert policy.__dict__.get("segment") is None  # both sides worked on clones
