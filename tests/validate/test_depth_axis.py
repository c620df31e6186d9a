"""The ``depth`` axis in training: ``vit-patch`` and ``lm-context`` (``Task.change``, ``validate
train --switch-at``), the shape controller (FLOPs per shape, resume) and the Hugging Face Trainer
(``ShapeTrainer``) grow tiny models 2 -> 4 (or 5) blocks with ``validate.operators.Depth``."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from click.testing import CliRunner

from cli import main
from sim.policies import Scheduled
from tests.components import require_module
from tests.validate.test_operators_depth import BATCH, DECAY, DIM, LR, MODELS, tiny_gpt2
from validate.controller import ShapeController
from validate.data import ImageSet
from validate.flops import transformer_train_flops
from validate.operators import Depth
from validate.tasks import make_task

transformers = require_module("transformers", "Hugging Face transformers",
                              "`make test` installs it")


def test_lm_context_grows_depth_at_a_loss_level(tmp_path):
    """``validate train lm-context --switch-at loss=...:depth=4``: the run switches once, and
    each step after it costs what the 4-block model costs by hand."""
    corpus = tmp_path / "corpus.txt"
    words = [b"alpha", b"beta", b"gamma", b"delta"]
    corpus.write_bytes(b" ".join(words[(i * 7 + i // 3) % 4] for i in range(40000)))
    result = CliRunner().invoke(main, [
        "validate", "train", "lm-context", "--corpus", str(corpus), "--shape",
        "context=16,batch=8,dim=16,heads=2,mlp=32,depth=2", "--switch-at", "loss=5.0:depth=4",
        "--budget", "1.2e9", "--evals", "12", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "curve.jsonl").open()]
    switches = [r for r in records if r["event"] == "switch"]
    assert len(switches) == 1 and switches[0]["to"]["depth"] == 4
    assert records[0]["eval_loss"] > 5.0 >= switches[0]["eval_loss"]  # fired while training
    after = [r for r in records if r["event"] == "eval" and r["shape"]["depth"] == 4]
    assert len(after) >= 2
    # by hand, per sequence of 16 bytes: 4 blocks of (4 * 16^2 + 2 * 16 * 32) weights used 6
    # times per token and attention's 12 * 16^2 * 16; the tied head 6 * 16 * 16 * 256
    per_step = 8 * (4 * (6 * 2048 * 16 + 12 * 256 * 16) + 6 * 16 * 16 * 256)
    first, last = after[0], after[-1]
    assert last["flops"] - first["flops"] == per_step * (last["step"] - first["step"])


def test_depth_cannot_shrink_on_the_command_line(tmp_path):
    result = CliRunner().invoke(main, [
        "validate", "train", "lm-context", "--shape", "depth=2", "--switch-at", "0.5:depth=1",
        "--budget", "1e9", "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and "'depth' can only grow (2 -> 1)" in result.output


@pytest.mark.parametrize("name", ["vit-patch", "lm-context"])
def test_tasks_grow_depth_keeping_the_loss_and_the_optimizer(name, tmp_path):
    if name == "vit-patch":
        task = make_task(name)
        pixels = torch.randint(256, (32, 1, 28, 28), dtype=torch.uint8)
        labels = torch.randint(10, (32,))
        task.images = ImageSet(pixels, labels, pixels, labels)  # no data set needed
    else:
        corpus = tmp_path / "corpus.txt"
        corpus.write_bytes(bytes(range(256)) * 64)
        task = make_task(name, corpus=str(corpus))
    old = task.complete({"batch": 8, "dim": 16, "heads": 2, "depth": 2})
    new = task.complete({"depth": 5}, base=old)
    task.check_change(old, new)
    torch.manual_seed(0)
    model = task.build(old)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    optimizer.zero_grad()
    total, count = task.loss_sum(model, task.train_batch(old, 0, 0, 0, 1), old)
    (total / count).backward()
    optimizer.step()
    batch = task.eval_batches(old, 0, 1)[0]
    with torch.no_grad():
        before = task.loss_sum(model, batch, old)[0]
        task.change(model, optimizer, old, new, torch.Generator())
        after = task.loss_sum(model, batch, new)[0]
    assert len(model.blocks) == 5
    assert abs(after - before) < 1e-5 * abs(before)
    held = [p for group in optimizer.param_groups for p in group["params"]]
    assert all(a is b for a, b in zip(held, model.parameters(), strict=True))
    assert len(held) == len(list(model.parameters()))


def _controlled_gpt2(init):
    """GPT-2 under a ``ShapeController`` that grows it 2 -> 4 blocks after 3 steps' FLOPs."""
    torch.manual_seed(0)
    model = tiny_gpt2().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=DECAY)
    t, steps_at_2 = 16, 3
    per_step_2 = BATCH * (transformer_train_flops(t, DIM, 2, 4 * DIM) + 6 * t * DIM * 64)
    policy = Scheduled("grow", [("d2", -math.inf, steps_at_2 * per_step_2), ("d4", -math.inf)])
    controller = ShapeController(optimizer, policy, {"d2": {"depth": 2}, "d4": {"depth": 4}},
                                 {"depth": Depth(model, init)}, shape="d2")
    return model, optimizer, controller


def _controlled_steps(model, optimizer, controller, until):
    spec = MODELS["gpt2"]
    while controller.steps < until:
        batch = spec.inputs(torch.Generator().manual_seed(controller.steps))
        with controller.step(samples=BATCH):
            spec.loss(model, batch).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


@pytest.mark.parametrize("init", ["zero", "stack"])
def test_the_controller_grows_counts_and_resumes(init):
    """The controller switches at its FLOP level, counts the 4-block step by hand, and a run
    resumed from a checkpoint after the switch (model rebuilt at 2 blocks, grown by
    ``load_state_dict``) ends where the uninterrupted run ends."""
    model, optimizer, controller = _controlled_gpt2(init)
    _controlled_steps(model, optimizer, controller, 4)
    assert controller.shape_name == "d4" and len(model.transformer.h) == 4
    # by hand: 4 blocks of 4 d^2 + 2 d (4 d) weights, 6 uses per token, attention 12 T^2 d,
    # the tied head 6 T d vocab
    assert controller.step_flops["d4"] == BATCH * (
        4 * (6 * 12 * DIM * DIM * 16 + 12 * 16 * 16 * DIM) + 6 * 16 * DIM * 64)
    saved = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                           "controller": controller.state_dict()})
    _controlled_steps(model, optimizer, controller, 7)

    resumed, resumed_optimizer, resumed_controller = _controlled_gpt2(init)
    resumed_controller.load_state_dict(saved["controller"])
    resumed.load_state_dict(saved["model"])
    resumed_optimizer.load_state_dict(saved["optimizer"])
    _controlled_steps(resumed, resumed_optimizer, resumed_controller, 7)
    for name, param in model.named_parameters():
        assert torch.equal(param, dict(resumed.named_parameters())[name]), name
    assert resumed_controller.trained_flops == controller.trained_flops


class _ByteWindows(torch.utils.data.Dataset):
    """Windows of 16 bytes of a repetitive text, as the Trainer's examples."""

    def __init__(self, count, seed):
        text = torch.tensor(list(b"depth grows while the model trains. " * 200))
        starts = torch.randint(len(text) - 16, (count,),
                               generator=torch.Generator().manual_seed(seed))
        self.windows = text[starts[:, None] + torch.arange(16)]

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, index):
        return {"input_ids": self.windows[index], "labels": self.windows[index]}


class _LogitsAtSwitch(Depth):
    """``Depth`` that records the largest change of the logits (dropout off) its switch makes."""

    def __init__(self, model, tokens):
        super().__init__(model)
        self.tokens, self.changes = tokens, []

    @torch.no_grad()
    def apply(self, optimizer, old, new):
        training = self.model.training
        before = self.model.eval()(self.tokens).logits
        super().apply(optimizer, old, new)
        self.changes.append((self.model(self.tokens).logits - before).abs().max().item())
        self.model.train(training)


def test_the_hugging_face_trainer_grows_depth_at_a_loss_level(tmp_path):
    """Through ``ShapeTrainer``, whose AdamW keeps biases and norms out of weight decay (two
    groups): the switch keeps the logits, and the new blocks' projections then learn."""
    require_module("accelerate", "Hugging Face accelerate", "the Trainer needs it")
    from validate.adapters.hf import ShapeTrainer, ShapeTrainerCallback

    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=256, n_positions=16, n_embd=DIM, n_layer=2, n_head=2, bos_token_id=0,
        eos_token_id=0))
    policy = Scheduled("grow", [("d2", 4.5), ("d4", -math.inf)])
    operator = _LogitsAtSwitch(model, _ByteWindows(2, seed=3).windows)
    callback = ShapeTrainerCallback(policy, {"d2": {"depth": 2}, "d4": {"depth": 4}},
                                    lambda model: {"depth": operator}, shape="d2",
                                    run_dir=tmp_path / "run")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=40,
        learning_rate=3e-3, lr_scheduler_type="constant", eval_strategy="steps", eval_steps=4,
        per_device_eval_batch_size=8, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, logging_strategy="no", seed=0, weight_decay=0.1)
    trainer = ShapeTrainer(model=model, args=args, train_dataset=_ByteWindows(320, seed=1),
                           eval_dataset=_ByteWindows(16, seed=2), shape_callback=callback)
    trainer.train()

    records = callback.controller.records
    evals = [r for r in records if r["event"] == "eval"]
    (switch,) = [r for r in records if r["event"] == "switch"]
    assert evals[0]["eval_loss"] > 4.5 >= switch["eval_loss"] and evals[-1]["shape"]["depth"] == 4
    assert len(operator.changes) == 1 and operator.changes[0] < 1e-5
    assert len(model.transformer.h) == 4 and model.config.n_layer == 4
    for twin in (model.transformer.h[1], model.transformer.h[3]):  # interleaved copies
        assert twin.attn.c_proj.weight.abs().max() > 0 and twin.mlp.c_proj.weight.abs().max() > 0
    groups = trainer.optimizer.param_groups
    held = {id(p): group["weight_decay"] for group in groups for p in group["params"]}
    assert set(held) == {id(p) for p in model.parameters()}
    assert held[id(model.transformer.h[1].ln_1.weight)] == 0.0
    assert held[id(model.transformer.h[1].attn.c_attn.weight)] == 0.1
