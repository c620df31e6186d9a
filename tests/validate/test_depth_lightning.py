"""Depth growth through the Lightning adapter: a real ``lightning.Trainer`` (CPU) trains a timm
ViT of 2 blocks on Fashion-MNIST in a LightningModule, and ``ShapeCallback`` grows it to 4
(``validate.operators.Depth``) when an evaluation reaches a loss level. At the switch the loss
on a fixed batch is unchanged (zero-init), the optimizer holds the new parameters and its next
step on them is AdamW written out by hand; a checkpoint saved after the growth resumes and ends
bit for bit where the uninterrupted run ends."""

import copy
import math

import pytest
import torch

from sim.policies import Scheduled
from tests.validate.test_adapters_lightning import BETAS, adamw_by_hand, pl
from tests.validate.test_resume_lightning import EPOCHS, fashion, fit, resume_after_switch  # noqa: F401
from validate.adapters.lightning import ShapeCallback
from validate.operators import Depth

# Measured on this data and model, the eval losses fall 2.30, 2.17, 2.10, 2.07, 2.02, 1.98, ...
# every 2 steps: the level is crossed while training, in the second epoch.
LEVEL = 2.0
SHAPES = {"d2": {"depth": 2}, "d4": {"depth": 4}}


def depth_callback(init):
    """A ``ShapeCallback`` factory: depth 2 until an evaluation reaches ``LEVEL``, then 4."""
    return lambda run_dir: ShapeCallback(
        Scheduled("grow", [("d2", LEVEL), ("d4", -math.inf)]), SHAPES,
        lambda module: {"depth": Depth(module.vit, init)}, shape="d2", run_dir=run_dir)


class GrowthProbe(pl.Callback):
    """Placed after ShapeCallback: the loss on a fixed batch on both sides of the growth, and the
    optimizer's state of the new parameters at the switch and after the next step."""

    def __init__(self, batch):
        self.batch, self.switches, self.pending = batch, [], None

    @torch.no_grad()
    def on_validation_start(self, trainer, module):
        self.blocks_before = len(module.vit.blocks)
        self.params_before = {id(p) for p in module.parameters()}
        self.loss_before = module.loss(self.batch).item()

    @torch.no_grad()
    def on_validation_end(self, trainer, module):
        if len(module.vit.blocks) == self.blocks_before:
            return
        optimizer = trainer.optimizers[0]
        new = [p for p in module.parameters() if id(p) not in self.params_before]
        held = [p for group in optimizer.param_groups for p in group["params"]]
        self.switches.append({
            "step": trainer.global_step, "blocks": (self.blocks_before, len(module.vit.blocks)),
            "loss": (self.loss_before, module.loss(self.batch).item()),
            "new": len(new), "held": all(a is b for a, b in zip(held, module.parameters(),
                                                                 strict=True))})
        self.pending = {param: (param.detach().clone(), copy.deepcopy(optimizer.state[param]))
                        for param in new}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        """Lightning zeroes the gradients in the next step: here they are the ones just used."""
        if self.pending is None:
            return
        (beta1, beta2), lr = BETAS, trainer.optimizers[0].param_groups[0]["lr"]
        errors = {"exp_avg": 0.0, "exp_avg_sq": 0.0, "param": 0.0}
        for param, (before, state) in self.pending.items():
            grad, after = param.grad, trainer.optimizers[0].state[param]
            # the moments start at zero, so one step leaves (1 - beta) g and (1 - beta) g^2
            errors["exp_avg"] = max(errors["exp_avg"],
                                    (after["exp_avg"] - (1 - beta1) * grad).abs().max().item())
            errors["exp_avg_sq"] = max(errors["exp_avg_sq"], (
                after["exp_avg_sq"] - (1 - beta2) * grad * grad).abs().max().item())
            errors["param"] = max(errors["param"], (
                param.detach() - adamw_by_hand(before, grad, state, lr)).abs().max().item())
        self.step = {
            "errors": errors,
            "moments_at_switch": max(max(s["exp_avg"].abs().max().item(),
                                         s["exp_avg_sq"].abs().max().item())
                                     for _, s in self.pending.values()),
            "steps": {(int(s["step"]), int(trainer.optimizers[0].state[p]["step"]))
                      for p, (_, s) in self.pending.items()},
            "largest_grad": max(p.grad.abs().max().item() for p in self.pending)}
        self.pending = None


def test_lightning_grows_depth_at_the_loss_level_keeping_loss_and_optimizer(fashion, tmp_path):  # noqa: F811
    probe = GrowthProbe((fashion.test_images[:64], fashion.test_labels[:64]))
    module, trainer, curve = fit(fashion, tmp_path / "run", depth_callback("zero"), EPOCHS,
                                 probes=[probe])

    evals = [r for r in curve if r["event"] == "eval"]
    (switch,) = [r for r in curve if r["event"] == "switch"]
    assert (switch["from"]["depth"], switch["to"]["depth"]) == (2, 4)
    fired = next(i for i, r in enumerate(evals) if r["eval_loss"] <= LEVEL)
    assert fired > 0, "the first evaluation is already below the level: the test shows nothing"
    assert switch["eval_loss"] == evals[fired]["eval_loss"]
    assert switch["step"] == evals[fired]["step"]
    assert {r["shape"]["depth"] for r in evals[: fired + 1]} == {2}
    assert {r["shape"]["depth"] for r in evals[fired + 1 :]} == {4}

    (grown,) = probe.switches
    assert grown["step"] == switch["step"] and grown["blocks"] == (2, 4)
    assert len(module.vit.blocks) == 4
    # two timm blocks of 12 tensors each (2 norms, qkv, proj, fc1, fc2; weights and biases)
    assert grown["new"] == 24 and grown["held"]
    before, after = grown["loss"]
    assert abs(after - before) < 1e-5

    step = probe.step
    assert step["moments_at_switch"] == 0.0  # zero-init copies start with zero moments
    # and with the step count of every other parameter, which then counts the next step
    assert step["steps"] == {(switch["step"], switch["step"] + 1)}
    assert step["largest_grad"] > 1e-4  # the zeroed projections learn: not 0 against 0
    assert max(step["errors"].values()) < 1e-6
    for twin in (module.vit.blocks[1], module.vit.blocks[3]):  # interleaved: 0 0' 1 1'
        assert twin.attn.proj.weight.abs().max() > 0 and twin.mlp.fc2.weight.abs().max() > 0
    print(f"grew 2 -> 4 at step {switch['step']} (eval loss {switch['eval_loss']:.4f} <= "
          f"{LEVEL}); loss on a fixed batch {before:.6f} -> {after:.6f}; next step's largest "
          f"error against AdamW by hand {max(step['errors'].values()):.1e}")


@pytest.mark.parametrize("init", ["zero", "stack"])
def test_a_checkpoint_after_depth_growth_resumes_bit_for_bit(fashion, tmp_path, init):  # noqa: F811
    (whole, _, _), (resumed, _, _) = resume_after_switch(fashion, tmp_path, depth_callback(init))
    keys = torch.load(tmp_path / "part.ckpt", weights_only=False)["state_dict"]
    assert "vit.blocks.3.mlp.fc2.weight" in keys  # saved at depth 4
    assert len(whole.vit.blocks) == len(resumed.vit.blocks) == 4
