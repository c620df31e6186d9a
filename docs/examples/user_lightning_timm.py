"""Your Lightning module on a timm ViT, from static runs to a plan and back, with the public API
only (run: python user_lightning_timm.py OUT_DIR [STEPS]; its output: user_lightning_timm.txt).

1. static runs of two patch sizes, two seeds each, through ShapeCallback (a Static policy);
2. fit laws to their curve.jsonl (the shapes keep their axes), 3. search the cheapest schedule;
4. the adaptive run of each seed through the same callback; 5. measure what it saved.
"""
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

import shapeshift

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/user_lightning")
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 150
timm = shapeshift.import_timm()
shapes = {"patch28": {"patch": 28}, "patch14": {"patch": 14}, "patch7": {"patch": 7}}


def fashion_mnist(count, offset):
    """Fashion-MNIST from Debian's dataset-fashion-mnist, as float images and labels."""
    import gzip

    import numpy as np

    root = Path("/usr/share/datasets/fashion-mnist")
    with gzip.open(root / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(root / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    take = slice(offset, offset + count)
    return torch.utils.data.TensorDataset(torch.tensor(images[take] / 255.0 - 0.5).float(),
                                          torch.tensor(labels[take]).long())


class Classifier(pl.LightningModule):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.vit = timm.models.vision_transformer.VisionTransformer(  # built at the finest patch
            img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=32, depth=2,
            num_heads=2)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.vit(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", F.cross_entropy(self.vit(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=3e-3)


train, held_out = fashion_mnist(64 * steps, 0), fashion_mnist(500, 50_000)


def run(policy, laws, run_dir, seed):
    callback = shapeshift.ShapeCallback(policy, laws,
                                        lambda module: {"patch": shapeshift.VitPatch(module.vit,
                                                                                     "merge")},
                                        shape="patch7", run_dir=run_dir)
    trainer = pl.Trainer(max_steps=steps, val_check_interval=steps // 15, accelerator="cpu",
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, callbacks=[callback])
    trainer.fit(Classifier(seed), torch.utils.data.DataLoader(train, batch_size=64),
                torch.utils.data.DataLoader(held_out, batch_size=500))


for name in shapes:
    for seed in (0, 1):
        run(shapeshift.Static(name), shapes, out / "static" / name / f"seed{seed}", seed)
laws = shapeshift.fit_runs([out / "static"], shapeshift.FitRequest(form="power")).laws
shapeshift.write_law_file(laws, out / "laws.json")
print("fitted:", {shape.name: shape.axes for shape in laws.shapes})
final = [shapeshift.read_run(path)[-1]["eval_loss"] for path in (out / "static").rglob("*.jsonl")]
target = round(max(final), 3)  # a loss every static run reached
plan = shapeshift.search(laws, target)
shapeshift.write_plan(plan, out / "plan.json")
print(shapeshift.format_plan(plan))
for seed in (0, 1):
    run(shapeshift.planned(plan, laws), laws, out / "adaptive" / f"seed{seed}", seed)
result = shapeshift.measure([out / "static"], target, adaptive=[out / "adaptive"])
print(shapeshift.format_measure(result))
