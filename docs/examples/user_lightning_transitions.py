"""Your Lightning module on a timm ViT, planned with what its switches really cost, with the
public API only (run: python user_lightning_transitions.py [OUT_DIR] [STEPS] [SEEDS], STEPS
those of a patch-7 run, default 400, SEEDS default 4; its output:
user_lightning_transitions.txt, 8 minutes on one core beside other jobs).

1. static runs of patch 28, 14 and 7 for each seed through ShapeCallback;
2. laws fitted with bootstrap samples, a first plan (it assumes free switches), its adaptive
   runs: seed k's adaptive run has seed k's initial weights and data order;
3. the transitions measured on those runs' switches (``with_measured_transitions``);
4. the plan searched again, charged the measured switches, and its adaptive runs (or its
   recommendation to stay static);
5. the recommended plan's measured saving over the best static shape beside its predicted
   interval.
"""
import gzip
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F

import shapeshift

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/user_lightning_transitions")
finest_steps = int(sys.argv[2]) if len(sys.argv) > 2 else 400
seeds = range(int(sys.argv[3]) if len(sys.argv) > 3 else 4)
evaluations, batch, resamples = 40, 128, 200
timm = shapeshift.import_timm()
shapes = {"patch28": {"patch": 28}, "patch14": {"patch": 14}, "patch7": {"patch": 7}}
# A coarse patch costs a fraction of a fine one per step, and its law is needed down to the
# losses where the fine patch takes over: it trains more steps.
static_steps = {"patch28": 2 * finest_steps, "patch14": 5 * finest_steps // 2,
                "patch7": finest_steps}


def fashion_mnist(name, header):
    """One array of Debian's dataset-fashion-mnist: an idx file's bytes after its header."""
    with gzip.open(f"/usr/share/datasets/fashion-mnist/{name}-ubyte.gz") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


class Classifier(pl.LightningModule):
    """A timm ViT built at the finest patch; ``seed`` sets its initial weights."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.vit = timm.models.vision_transformer.VisionTransformer(
            img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=64, depth=4,
            num_heads=4)

    def loss(self, batch):
        images, labels = batch
        return F.cross_entropy(self.vit(images), labels)

    def training_step(self, batch, batch_idx):
        return self.loss(batch)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.loss(batch))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


class StopAtFlops(pl.Callback):
    """Ends training once the shape callback has counted ``budget`` training FLOPs."""

    def __init__(self, shapes, budget):
        self.shapes, self.budget = shapes, budget

    def on_train_batch_end(self, trainer, *args):
        if self.shapes.controller.trained_flops >= self.budget:
            trainer.should_stop = True


# Every run sees the training images in the same order; the held-out images are the last 3000
# of the training file, which no run trains on.
images = torch.tensor(fashion_mnist("train-images-idx3", 16).reshape(-1, 1, 28, 28) / 255.0
                      - 0.5).float()
labels = torch.tensor(fashion_mnist("train-labels-idx1", 8)).long()
train = torch.utils.data.TensorDataset(images[:57_000], labels[:57_000])
held_out = torch.utils.data.TensorDataset(images[57_000:], labels[57_000:])


def run(policy, laws, run_dir, seed, steps, every, budget=None):
    """One run of ``steps`` steps (or until ``budget`` FLOPs), evaluated every ``every``."""
    shape_callback = shapeshift.ShapeCallback(
        policy, laws, lambda module: {"patch": shapeshift.VitPatch(module.vit, "merge")},
        shape="patch7", run_dir=run_dir)
    stop = [StopAtFlops(shape_callback, budget)] if budget else []
    trainer = pl.Trainer(max_steps=steps, val_check_interval=every,
                         check_val_every_n_epoch=None, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[shape_callback, *stop])
    trainer.fit(Classifier(seed), torch.utils.data.DataLoader(train, batch_size=batch),
                torch.utils.data.DataLoader(held_out, batch_size=1000))


for name, steps in static_steps.items():
    for seed in seeds:
        run(shapeshift.Static(name), shapes, out / "static" / name / f"seed{seed}", seed, steps,
            steps // evaluations)
static_runs = [shapeshift.read_run(path) for path in sorted((out / "static").rglob("curve.jsonl"))]


def run_plan(plan, laws, folder):
    """The plan's adaptive run of every seed, evaluated as often as its last shape's static runs
    and given the FLOPs they spent."""
    last = plan.optimal.shapes[-1]
    budget = max(records[-1]["flops"] for records in static_runs
                 if records[-1]["shape_name"] == last)
    for seed in seeds:
        run(shapeshift.planned(plan, laws), laws, out / folder / f"seed{seed}", seed,
            10 * finest_steps, static_steps[last] // evaluations, budget)


def final_loss(records):
    return [r for r in records if r["event"] == "eval"][-1]["eval_loss"]


def loss_by(records, share):
    """The lowest eval loss in the first ``share`` of a run's evaluations."""
    evals = [r for r in records if r["event"] == "eval"]
    return min(r["eval_loss"] for r in evals[:round(share * len(evals))])


# The target: a loss that the shape ending lowest (on the seeds' mean) reaches on every seed
# with 30% of its run to spare, so that every crossing has evaluations on both sides.
by_shape = {}
for records in static_runs:
    by_shape.setdefault(records[-1]["shape_name"], []).append(records)
lowest = min(by_shape, key=lambda name: sum(map(final_loss, by_shape[name])))
target = round(max(loss_by(records, 0.7) for records in by_shape[lowest]), 3)

laws = shapeshift.fit_runs([out / "static"],
                           shapeshift.FitRequest(form="power", bootstrap=resamples)).laws
shapeshift.write_law_file(laws, out / "laws.json")
free = shapeshift.search(laws, target)
shapeshift.write_plan(free, out / "plan_free.json")
print(f"target eval loss {target} ({len(seeds)} seeds; laws fitted with {resamples} bootstrap "
      "samples)\n\n1. planned with free switches:\n" + shapeshift.format_plan(free))


def percent(value):
    return f"{100 * value:.1f}%"


def train_and_measure(plan, laws, folder):
    """Trains the plan's adaptive runs, then prints them beside the static runs of the same
    seeds, and the plan's predicted saving over its static shape (90% over the laws' bootstrap
    samples) beside the measured one over the best static shape (90% over the seeds)."""
    run_plan(plan, laws, folder)
    result = shapeshift.measure([out / "static"], target, adaptive=[out / folder])
    print("\nits adaptive runs:\n" + shapeshift.format_measure(result))
    predicted, measured = plan.uncertainty.plan_saving, result["paired"]["saving"]
    low, high = predicted.p5, predicted.p95
    print(f"predicted saving {percent(predicted.p50)} [{percent(low)}, {percent(high)}] "
          f"over {plan.static_best.shape}; measured {percent(measured['mean'])} "
          f"[{percent(measured['low'])}, {percent(measured['high'])}] over "
          f"{result['paired']['best_static']}\n"
          "the predicted interval contains the measured mean saving: "
          f"{'yes' if low <= measured['mean'] <= high else 'no'}\n"
          "the plan loses to the best static shape by more than its interval: "
          f"{'yes' if measured['mean'] < min(low, 0.0) else 'no'}")


def stay_static(shape):
    """Prints what staying on ``shape`` saves over the best static shape measured (on the
    seeds' mean FLOPs to the target), then stops."""
    rows = shapeshift.measure([out / "static"], target)["runs"]
    reached = {name: [row["flops"] for row in rows if row["shape"] == name] for name in shapes}
    means = {name: sum(flops) / len(flops) for name, flops in reached.items()
             if None not in flops}
    best = min(means, key=means.get)
    saving = 1 - means[shape] / means[best] if shape in means else float("-inf")
    print(f"\nit recommends staying static on {shape}; measured best static shape {best}, "
          f"which {shape} saves {percent(saving)} over\n"
          "the plan loses to the best static shape by more than its interval: "
          f"{'yes' if saving < 0 else 'no'}")
    sys.exit()


if len(free.optimal.schedule) == 1:
    stay_static(free.optimal.shapes[0])  # no switch to measure
train_and_measure(free, laws, "adaptive_free")

measured = shapeshift.with_measured_transitions(
    laws, shapeshift.switches_in_files([out / "adaptive_free"]), resamples)
shapeshift.write_law_file(measured, out / "laws_transitions.json")
print("\n2. switches measured on those runs (RMSE of log-loss after the switch, one run left "
      "out):")
for pair in measured.transitions.measured:
    print(f"{pair.source} -> {pair.destination} ({pair.switches} switches): {pair.model} "
          + " ".join(f"{name}={value:.3g}" for name, value in pair.params.items()) + "; "
          + ", ".join(f"{model} {rmse:.4f}" for model, rmse in pair.rmse.items()))

# Only the measured switches: the search assumes an unmeasured one free, and would otherwise
# route around a measured switch through free ones at the same loss (A -> C -> B for A -> B).
plan = shapeshift.search(measured, target, allowed=tuple(
    (pair.source, pair.destination) for pair in measured.transitions.measured))
shapeshift.write_plan(plan, out / "plan.json")
print("\n3. planned again, charged the measured switches:\n" + shapeshift.format_plan(plan))
if plan.recommends_static:  # no cheaper schedule, or one whose interval reaches a loss
    stay_static(plan.static_best.shape)
train_and_measure(plan, measured, "adaptive")
