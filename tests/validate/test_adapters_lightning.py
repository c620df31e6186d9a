"""A timm ViT (random init) trained by Lightning on Fashion-MNIST switches patch size at the
plan's loss level through ShapeCallback. At the switch: the old coarse tokens are the means of
the new fine ones (merge), the optimizer's next step is AdamW computed by hand from the carried
state, and the curve is readable by `shapeshift fit`."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from laws.errors import InputError
from laws.presets import load_preset
from laws.search import plan
from laws.search.request import PlanRequest
from sim.policies import planned
from tests.components import require, require_module
from validate import data
from validate.operators import VitPatch

pl = require_module("lightning.pytorch", "Lightning", "`make test` installs it")
try:
    from validate.operators.timm_import import import_timm

    timm = import_timm()
except ModuleNotFoundError as err:
    require("timm", f"not installed ({err})")

from validate.adapters.lightning import ShapeCallback  # noqa: E402  (needs lightning)

LR, BETAS, EPS, DECAY = 3e-3, (0.9, 0.999), 1e-8, 0.01


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.vit = timm.models.vision_transformer.VisionTransformer(
            img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=32, depth=2,
            num_heads=2)

    def loss(self, batch):
        images, labels = batch
        return F.cross_entropy(self.vit(data.normalize_images(images)), labels)

    def training_step(self, batch, batch_idx):
        loss = self.loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.loss(batch))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=LR, betas=BETAS, eps=EPS,
                                 weight_decay=DECAY)


def merged_tokens(vit, images, k):
    """Tokens with positions, (B, grid*grid, dim), merged k x k by hand."""
    tokens = vit.patch_embed(images) + vit.pos_embed[:, 1:]
    batch, count, dim = tokens.shape
    side = int(count**0.5)
    grid = tokens.view(batch, side // k, k, side // k, k, dim)  # (B, row, dy, col, dx, dim)
    return grid.mean(dim=(2, 4)).reshape(batch, -1, dim)


class SwitchProbe(pl.Callback):
    """Placed after ShapeCallback: checks the model at a switch and the optimizer step after it."""

    def __init__(self, shape_callback, probe_images):
        self.shape_callback, self.images = shape_callback, probe_images
        self.checked_tokens = self.checked_step = False
        self.pending = None

    def on_validation_start(self, trainer, module):
        self.before = copy.deepcopy(module.vit)
        self.switches = self.count_switches()

    def count_switches(self):
        controller = self.shape_callback.controller
        return sum(r["event"] == "switch" and r["eval_loss"] is not None
                   for r in controller.records) if controller else 0

    @torch.no_grad()
    def on_validation_end(self, trainer, module):
        if trainer.sanity_checking or self.count_switches() == self.switches:
            return
        old, new = self.before.eval(), module.vit.eval()
        images = data.normalize_images(self.images)
        coarse = old.patch_embed(images) + old.pos_embed[:, 1:]
        self.token_error = (merged_tokens(new, images, 2) - coarse).abs().max().item()
        assert self.token_error < 1e-5
        self.checked_tokens = True
        optimizer = trainer.optimizers[0]
        self.pending = [(p, p.detach().clone(),
                         {key: value.clone() for key, value in optimizer.state[p].items()})
                        for p in module.parameters()]

    def on_before_optimizer_step(self, trainer, module, optimizer):
        if self.pending is not None:
            self.grads = [p.grad.detach().clone() for p, _, _ in self.pending]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.pending is None:
            return
        carried = fresh = 0.0
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        for (param, before, state), grad in zip(self.pending, self.grads, strict=True):
            carried = max(carried, (param.detach() - adamw_by_hand(before, grad, state, lr))
                          .abs().max())
            zero = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(before),
                    "exp_avg_sq": torch.zeros_like(before)}
            fresh = max(fresh, (param.detach() - adamw_by_hand(before, grad, zero, lr))
                        .abs().max())
        self.step_error, self.fresh_error = float(carried), float(fresh)
        self.checked_step, self.pending = True, None


def adamw_by_hand(param, grad, state, lr):
    """torch.optim.AdamW's update, written out (Loshchilov and Hutter 2019, algorithm 2)."""
    (beta1, beta2), step = BETAS, float(state["step"]) + 1
    m = beta1 * state["exp_avg"] + (1 - beta1) * grad
    v = beta2 * state["exp_avg_sq"] + (1 - beta2) * grad * grad
    m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
    return param * (1 - lr * DECAY) - lr * m_hat / (v_hat.sqrt() + EPS)


@pytest.fixture(scope="module")
def fashion():
    try:
        return data.load_fashion_mnist()
    except InputError as err:
        require("Fashion-MNIST", str(err))


def loader(images, labels, batch, shuffle):
    dataset = torch.utils.data.TensorDataset(images, labels)
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=shuffle,
                                       generator=torch.Generator().manual_seed(0))


def test_lightning_switches_patch_at_the_planned_level(fashion, tmp_path):
    laws = load_preset("vit-patch-fmnist")  # measured laws of patches 28, 14 and 7
    # From an untrained model's loss (2.4-2.6 at step 0), above the laws' measured start: the
    # plan begins at patch 28, whose switch a few steps reach.
    the_plan = plan(laws, PlanRequest.for_laws(laws, laws.extra["default_target"],
                                               start_loss=2.5))
    level = the_plan.optimal.schedule[0].loss_to  # where the plan leaves patch 28
    assert the_plan.optimal.shapes[:2] == ("patch28", "patch14")
    callback = ShapeCallback(planned(the_plan, laws), laws,
                             lambda module: {"patch": VitPatch(module.vit, "merge")},
                             shape="patch7", run_dir=tmp_path)
    probe = SwitchProbe(callback, fashion.test_images[:64])
    trainer = pl.Trainer(max_steps=30, val_check_interval=2, accelerator="cpu", devices=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[callback, probe])
    trainer.fit(Classifier(), loader(fashion.train_images[:1920], fashion.train_labels[:1920],
                                     64, True),
                loader(fashion.test_images[:500], fashion.test_labels[:500], 250, False))

    records = [json.loads(line) for line in (tmp_path / "curve.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["event"] == "eval"]
    switches = [r for r in records if r["event"] == "switch"]
    # The policy's first answer (patch 28) is applied before training: then one planned switch.
    assert [(s["from"]["patch"], s["to"]["patch"]) for s in switches] == [(7, 28), (28, 14)]
    fired = next(i for i, r in enumerate(evals) if r["eval_loss"] <= level)
    assert fired > 0, "the first evaluation is already below the level: the test shows nothing"
    assert switches[1]["eval_loss"] == evals[fired]["eval_loss"]
    assert switches[1]["step"] == evals[fired]["step"]
    assert {r["shape"]["patch"] for r in evals[: fired + 1]} == {28}
    assert {r["shape"]["patch"] for r in evals[fired + 1 :]} == {14}
    assert [r["step"] for r in evals] == list(range(2, 31, 2))

    assert probe.checked_tokens and probe.checked_step
    assert probe.step_error < 1e-6 < 1e-4 < probe.fresh_error
    print(f"switch at eval {fired} (loss {evals[fired]['eval_loss']:.4f} <= {level:.4f}); "
          f"token error {probe.token_error:.1e}, step error {probe.step_error:.1e}, "
          f"fresh-state step error {probe.fresh_error:.1e}")

    from cli import main

    result = CliRunner().invoke(main, [
        "fit", str(tmp_path / "curve.jsonl"), "--filter", "event=eval",
        "--filter", "shape_name=patch14", "--shape-col", "shape_name", "--compute-col", "flops",
        "--loss-col", "eval_loss", "--form", "power", "-o", str(tmp_path / "laws.json")])
    assert result.exit_code == 0, result.output
    fitted = json.loads((tmp_path / "laws.json").read_text())
    assert [shape["name"] for shape in fitted["shapes"]] == ["patch14"]
