"""Issue 24's resume reproducer: a Lightning run of a timm ViT whose ShapeCallback switched patch
size (VitPatch attached: merge and pi), checkpointed after the switch and resumed by a fresh
module and callback, ends bit for bit where the uninterrupted run ends (CPU), curve included.
``resume_after_switch`` runs the same check for any callback (depth: test_depth_lightning.py)."""

import json
import math

import pytest
import torch

from laws.presets import load_preset
from laws.search import plan
from laws.search.request import PlanRequest
from sim.policies import planned
from tests.validate.test_adapters_lightning import Classifier, fashion, loader, pl  # noqa: F401
from validate.adapters.lightning import ShapeCallback
from validate.operators import VitPatch

STEPS_PER_EPOCH, EPOCHS = 8, 4  # 512 images in batches of 64, in order


def fit(data, run_dir, make_callback, epochs, ckpt_in=None, ckpt_out=None, probes=()):
    """Trains a fresh ``Classifier`` under ``make_callback(run_dir)``, then ``probes`` (more
    callbacks), for ``epochs`` epochs."""
    trainer = pl.Trainer(max_epochs=epochs, val_check_interval=2, accelerator="cpu", devices=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[make_callback(run_dir), *probes], deterministic=True)
    module = Classifier()
    trainer.fit(module, loader(data.train_images[:512], data.train_labels[:512], 64, False),
                loader(data.test_images[:256], data.test_labels[:256], 256, False),
                ckpt_path=ckpt_in)
    if ckpt_out is not None:
        trainer.save_checkpoint(ckpt_out)
    records = [json.loads(line) for line in (run_dir / "curve.jsonl").read_text().splitlines()]
    return module, trainer, [{k: v for k, v in r.items() if k != "time"} for r in records]


def resume_after_switch(data, tmp_path, make_callback):
    """Runs ``EPOCHS`` epochs whole, and again stopped at the end of the epoch of the first
    switch at an evaluation, saved to ``part.ckpt`` and resumed by a fresh module and callback;
    asserts that both end bit for bit alike (weights, optimizer state, curve) and returns the
    two (module, trainer, curve) ends."""
    whole = fit(data, tmp_path / "whole", make_callback, EPOCHS)
    switch = next(r["step"] for r in whole[2] if r["event"] == "switch" and r["eval_loss"])
    stop = math.ceil(switch / STEPS_PER_EPOCH)  # the first epoch's end after the switch
    assert stop < EPOCHS, "the switch comes too late to resume after it"

    fit(data, tmp_path / "part", make_callback, stop, ckpt_out=tmp_path / "part.ckpt")
    resumed = fit(data, tmp_path / "part", make_callback, EPOCHS, ckpt_in=tmp_path / "part.ckpt")

    (whole_module, whole_trainer, whole_curve) = whole
    (resumed_module, resumed_trainer, resumed_curve) = resumed
    assert resumed_trainer.global_step == whole_trainer.global_step == EPOCHS * STEPS_PER_EPOCH
    for (name, tensor), (_, other) in zip(whole_module.state_dict().items(),
                                          resumed_module.state_dict().items(), strict=True):
        assert torch.equal(tensor, other), name
    optimizers = [t.optimizers[0].state_dict() for t in (whole_trainer, resumed_trainer)]
    for one, two in zip(optimizers[0]["state"].values(), optimizers[1]["state"].values(),
                        strict=True):
        assert all(torch.equal(one[key], two[key]) for key in one)
    assert resumed_curve == whole_curve
    return whole, resumed


@pytest.mark.parametrize("resize", ["merge", "pi"])
def test_resumed_run_ends_where_the_uninterrupted_one_does(fashion, tmp_path, resize):  # noqa: F811
    laws = load_preset("vit-patch-fmnist")
    the_plan = plan(laws, PlanRequest.for_laws(laws, laws.extra["default_target"],
                                               start_loss=2.5))
    (whole, _, _), (resumed, _, _) = resume_after_switch(
        fashion, tmp_path, lambda run_dir: ShapeCallback(
            planned(the_plan, laws), laws,
            lambda module: {"patch": VitPatch(module.vit, resize)}, shape="patch7",
            run_dir=run_dir))
    keys = torch.load(tmp_path / "part.ckpt", weights_only=False)["state_dict"]
    assert "vit.parametrizations.pos_embed.original" in keys  # the checkpoint
    assert resumed.vit.patch_embed.patch_size == whole.vit.patch_embed.patch_size == (14, 14)
