"""A tiny GPT-2 (random init) trained by the Hugging Face Trainer grows its context 64 -> 256 at
the plan's loss level through ShapeTrainer; the loss on the shared prefix is unchanged there."""

import copy
import json
import sysconfig

import torch
import torch.nn.functional as F

from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from laws.search import plan
from laws.search.request import PlanRequest
from sim.policies import planned
from tests.components import require_module
from validate.data import load_corpus
from validate.operators import Gpt2Context

transformers = require_module("transformers", "Hugging Face transformers",
                              "`make test` installs it")
require_module("accelerate", "Hugging Face accelerate", "the Trainer needs it; `make test` "
               "installs it")

from validate.adapters.hf import ShapeTrainer, ShapeTrainerCallback  # noqa: E402

# Two shapes whose laws cross: the plan trains context 64 down to about 4.49, then 256.
LAWS = LawSet("ctx", (Shape("ctx64", {"context": 64}, PowerLaw(20.0, 0.2, 2.0)),
                      Shape("ctx256", {"context": 256}, PowerLaw(30.0, 0.2, 1.0))))


class Windows(torch.utils.data.Dataset):
    """Byte windows of 256 (the longest context); the Trainer subclass cuts them."""

    def __init__(self, data, count, seed):
        self.data = data
        self.starts = torch.randint(len(data) - 257, (count,),
                                    generator=torch.Generator().manual_seed(seed))

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, index):
        window = self.data[self.starts[index] : self.starts[index] + 256].long()
        return {"input_ids": window, "labels": window}


def per_position_loss(model, tokens):
    logits = model(tokens).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(),
                           reduction="none").view(len(tokens), -1)


class PrefixProbe(transformers.TrainerCallback):
    """Keeps the model of the last step; at a switch compares the new model with it."""

    def __init__(self, shape_callback, tokens):
        self.shape_callback, self.tokens, self.errors = shape_callback, tokens, []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.before = copy.deepcopy(model)

    @torch.no_grad()
    def on_evaluate(self, args, state, control, model=None, **kwargs):
        records = self.shape_callback.controller.records
        if records[-1]["event"] != "switch":
            return
        old, new = self.before.eval(), copy.deepcopy(model).eval()
        short = per_position_loss(old, self.tokens[:, :64])
        grown = per_position_loss(new, self.tokens)[:, :63]
        self.errors.append((grown - short).abs().max().item())


def tiny_gpt2_run(run_dir, **options):
    """The plan on ``LAWS``, the byte corpus, a tiny GPT-2 at context 64 (seed 0) and its
    ``ShapeTrainerCallback`` writing into ``run_dir`` (``options``: more of its arguments)."""
    the_plan = plan(LAWS, PlanRequest.for_laws(LAWS, 2.5, start_loss=6.0))
    corpus = load_corpus(f"{sysconfig.get_paths()['stdlib']}/argparse.py").data
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=256, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0,
        eos_token_id=0))
    callback = ShapeTrainerCallback(planned(the_plan, LAWS), LAWS,
                                    lambda model: {"context": Gpt2Context(model)}, shape="ctx64",
                                    run_dir=run_dir, **options)
    return the_plan, corpus, model, callback


def test_trainer_grows_the_context_at_the_planned_level(tmp_path):
    the_plan, corpus, model, callback = tiny_gpt2_run(tmp_path / "run")
    level = the_plan.optimal.schedule[0].loss_to
    probe = PrefixProbe(callback, Windows(corpus, 2, seed=3)[0]["input_ids"][None])
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=30,
        learning_rate=3e-3, lr_scheduler_type="constant", eval_strategy="steps", eval_steps=3,
        per_device_eval_batch_size=8, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, logging_strategy="no", seed=0)
    trainer = ShapeTrainer(model=model, args=args, train_dataset=Windows(corpus, 240, seed=1),
                           eval_dataset=Windows(corpus, 16, seed=2), shape_callback=callback,
                           callbacks=[probe])
    trainer.train()

    records = [json.loads(line) for line in (tmp_path / "run" / "curve.jsonl").open()]
    evals = [r for r in records if r["event"] == "eval"]
    switches = [r for r in records if r["event"] == "switch"]
    fired = next(i for i, r in enumerate(evals) if r["eval_loss"] <= level)
    assert fired > 0, "the first evaluation is already below the level: the test shows nothing"
    assert [(s["from"], s["to"], s["eval_loss"]) for s in switches] == [
        ({"context": 64}, {"context": 256}, evals[fired]["eval_loss"])]
    assert [r["shape_name"] for r in evals] == ["ctx64"] * (fired + 1) + ["ctx256"] * (
        len(evals) - fired - 1)
    assert model.config.n_positions == 256 and model.transformer.wpe.num_embeddings == 256
    assert len(probe.errors) == 1 and probe.errors[0] < 1e-5
    # Measured step FLOPs against the count written out: per sequence of T tokens, 2 blocks of
    # 6 x (4 x 32^2 + 2 x 32 x 128) weights x T plus attention 3 x 4 x T^2 x 32, and the (tied)
    # output layer 6 x T x 32 x 256; embedding lookups are free. That is 196608 T + 768 T^2,
    # times a batch of 8: 125829120 at T = 64 and 805306368 at T = 256.
    flops = callback.controller.step_flops
    assert flops == {"ctx64": 125_829_120, "ctx256": 805_306_368}
    print(f"switch at eval {fired} (loss {evals[fired]['eval_loss']:.4f} <= {level:.4f}), "
          f"prefix loss change {probe.errors[0]:.1e}, step FLOPs {flops}")
