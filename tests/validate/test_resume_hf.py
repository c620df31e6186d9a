"""Issue 24, item 7: a Hugging Face Trainer run whose ShapeTrainerCallback grew a tiny GPT-2's
context 64 -> 256, checkpointed after the switch, interrupted there and resumed by a fresh model,
callback and Trainer, ends bit for bit where the uninterrupted run ends (CPU): weights, AdamW
state and the curve apart from its times."""

import json

import pytest
import torch

from tests.validate.test_adapters_hf import Windows, tiny_gpt2_run, transformers
from validate.adapters.hf import ShapeTrainer

STEPS, EVAL_STEPS = 30, 3


class Interrupt(transformers.TrainerCallback):
    """Stops training after ``step``, as a killed job would after its checkpoint."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def train(tmp_path, name, *, save_steps=None, interrupt=None, resume=None, stop_at_target=None):
    """A fresh tiny GPT-2 at context 64, trained ``STEPS`` steps by ``ShapeTrainer`` (dropout
    on, so the restored random state matters too); returns (model, trainer, curve without
    times)."""
    _, corpus, model, callback = tiny_gpt2_run(tmp_path / name, stop_at_target=stop_at_target)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / f"{name}-out"), per_device_train_batch_size=8,
        max_steps=STEPS, learning_rate=3e-3, lr_scheduler_type="linear", warmup_steps=3,
        eval_strategy="steps", eval_steps=EVAL_STEPS, per_device_eval_batch_size=8,
        save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500,
        report_to=[], use_cpu=True, disable_tqdm=True, logging_strategy="no", seed=0)
    trainer = ShapeTrainer(model=model, args=args, train_dataset=Windows(corpus, 240, seed=1),
                           eval_dataset=Windows(corpus, 16, seed=2), shape_callback=callback,
                           callbacks=[Interrupt(interrupt)] if interrupt else [])
    trainer.train(resume_from_checkpoint=resume)
    records = [json.loads(line) for line in (tmp_path / name / "curve.jsonl").open()]
    return model, trainer, [{k: v for k, v in r.items() if k != "time"} for r in records]


@pytest.mark.parametrize("by", ["path", "last"])
def test_resumed_run_ends_where_the_uninterrupted_one_does(tmp_path, by):
    """``by``: the checkpoint folder given, or ``resume_from_checkpoint=True`` (the Trainer's
    last checkpoint in its output folder)."""
    whole_model, whole_trainer, whole_curve = train(tmp_path, "whole")
    switch = next(r["step"] for r in whole_curve if r["event"] == "switch")
    stop = switch + EVAL_STEPS  # the evaluation after the switch: trained at context 256
    assert stop < STEPS, "the switch comes too late to resume after it"

    train(tmp_path, "part", save_steps=stop, interrupt=stop)
    checkpoint = tmp_path / "part-out" / f"checkpoint-{stop}"
    saved = json.loads((checkpoint / "config.json").read_text())
    assert saved["n_positions"] == 256  # the checkpoint holds the grown position table
    resume = str(checkpoint) if by == "path" else True
    model, trainer, curve = train(tmp_path, "part", resume=resume)

    assert trainer.state.global_step == whole_trainer.state.global_step == STEPS
    assert model.transformer.wpe.num_embeddings == 256
    for (name, tensor), (_, other) in zip(whole_model.state_dict().items(),
                                          model.state_dict().items(), strict=True):
        assert torch.equal(tensor, other), name
    states = [t.optimizer.state_dict() for t in (whole_trainer, trainer)]
    assert len(states[0]["state"]) == len(states[1]["state"]) > 0
    for one, two in zip(states[0]["state"].values(), states[1]["state"].values(), strict=True):
        assert all(torch.equal(one[key], two[key]) for key in one)
    assert ([g["lr"] for g in states[0]["param_groups"]]
            == [g["lr"] for g in states[1]["param_groups"]])
    assert curve == whole_curve
    assert sum(r["event"] == "switch" for r in curve) == 1
    assert [r["step"] for r in curve if r["event"] == "eval"] == list(
        range(EVAL_STEPS, STEPS + 1, EVAL_STEPS))
    print(f"switch at step {switch}, checkpoint and interruption at step {stop}, both end at "
          f"step {STEPS} with eval_loss {curve[-1]['eval_loss']:.6f}")
