"""Training logs written by the real libraries (the HF Trainer, Lightning's CSVLogger, torch's
TensorBoard SummaryWriter) and W&B histories in their documented layout, read back to the steps
and losses the test itself saw logged (`fit` and `measure` on logs: test_logs_commands.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from laws.errors import BadInputFile, InputError
from laws.io.logs import LogSpec, PerShape, log_format, read_log
from tests.components import require_module

FLOPS_PER_STEP = PerShape.parse(["1e9"])


def _steps_and_losses(records: list[dict]) -> list[tuple[int, float]]:
    return [(r["step"], r["eval_loss"]) for r in records]


# --- Hugging Face Trainer ----------------------------------------------------------------------

def _trainer_state(tmp_path: Path) -> tuple[Path, list[tuple[int, float, int]]]:
    """A tiny GPT-2 trained 6 steps (batch 4 x 16 tokens), evaluated every 2; its state saved
    by the Trainer's own ``save_to_json``; the evaluations a callback saw."""
    torch = require_module("torch", "torch", "`make test` installs it")
    transformers = require_module("transformers", "Hugging Face transformers",
                                  "`make test` installs it")
    require_module("accelerate", "Hugging Face accelerate", "`make test` installs it")

    class Windows(torch.utils.data.Dataset):
        def __init__(self, count: int, seed: int) -> None:
            self.ids = torch.randint(32, (count, 16),
                                     generator=torch.Generator().manual_seed(seed))

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, index: int) -> dict:
            return {"input_ids": self.ids[index], "labels": self.ids[index]}

    seen = []

    class Probe(transformers.TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            seen.append((state.global_step, metrics["eval_loss"], state.num_input_tokens_seen))

    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=32, n_positions=16, n_embd=8, n_layer=1, n_head=1))
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=6,
        eval_strategy="steps", eval_steps=2, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, logging_steps=1, seed=0, include_num_input_tokens_seen=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Windows(40, 1),
                                   eval_dataset=Windows(8, 2), callbacks=[Probe()])
    trainer.train()
    path = tmp_path / "gpt2" / "trainer_state.json"
    path.parent.mkdir()
    trainer.state.save_to_json(str(path))
    return path, seen


def test_trainer_state_of_a_real_trainer(tmp_path) -> None:
    path, seen = _trainer_state(tmp_path)
    assert [step for step, _, _ in seen] == [2, 4, 6]
    assert log_format(path) == "huggingface"
    by_step = read_log(path, "gpt2", LogSpec(flops_per_step=FLOPS_PER_STEP))
    assert _steps_and_losses(by_step) == [(step, loss) for step, loss, _ in seen]
    assert [r["flops"] for r in by_step] == [2e9, 4e9, 6e9]
    assert {r["shape_name"] for r in by_step} == {"gpt2"}
    # tokens seen: 4 sequences of 16 tokens per step
    by_token = read_log(path, "gpt2", LogSpec(flops_per_token=PerShape.parse(["1e6"])))
    assert [r["flops"] for r in by_token] == [step * 64 * 1e6 for step in (2, 4, 6)]
    # the training loss, by name
    train = read_log(path, "gpt2", LogSpec(loss="loss", flops_per_step=FLOPS_PER_STEP))
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]


def test_trainer_state_without_flops_hints_the_trainers_count(tmp_path) -> None:
    path, _ = _trainer_state(tmp_path)
    state = json.loads(path.read_text())
    per_step = state["total_flos"] / state["global_step"]
    with pytest.raises(InputError) as err:
        read_log(path, "gpt2", LogSpec())
    message = str(err.value)
    assert str(path) in message and "no FLOPs for shape 'gpt2'" in message
    assert f"{per_step:.4g}" in message and "--flops-per-step" in message


# --- Lightning CSVLogger -----------------------------------------------------------------------

def test_lightning_csv_logger_metrics(tmp_path) -> None:
    torch = require_module("torch", "torch", "`make test` installs it")
    lightning = require_module("lightning", "Lightning", "`make test` installs it")
    from lightning.pytorch.loggers import CSVLogger

    class Regression(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)
            self.seen: list[tuple[int, float]] = []

        def training_step(self, batch, index):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.linear(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, index):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.linear(x), y)
            self.log("val_loss", loss)
            self.seen.append((self.global_step, float(loss)))  # optimizer steps taken

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    module = Regression()
    trainer = lightning.Trainer(
        max_steps=6, val_check_interval=2, num_sanity_val_steps=0, log_every_n_steps=1,
        logger=CSVLogger(str(tmp_path), name="w4"), enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu")
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4),
                torch.utils.data.DataLoader(data, batch_size=32))
    path = Path(trainer.logger.log_dir) / "metrics.csv"
    assert log_format(path) == "lightning"
    records = read_log(path, "w4", LogSpec(flops_per_step=FLOPS_PER_STEP))
    assert module.seen and [s for s, _ in module.seen] == [2, 4, 6]
    assert _steps_and_losses(records) == module.seen
    assert [r["flops"] for r in records] == [2e9, 4e9, 6e9]


# --- TensorBoard -------------------------------------------------------------------------------

def test_tensorboard_scalars_plain_and_tensor_valued(tmp_path) -> None:
    require_module("tensorboard", "the tensorboard package", "the tensorboard extra; "
                   "`make test` installs it")
    from torch.utils.tensorboard import SummaryWriter

    losses = {10: 3.0, 20: 2.5, 30: 2.25}
    writer = SummaryWriter(str(tmp_path / "w8"))
    for step, loss in losses.items():
        writer.add_scalar("eval/loss", loss, step)  # simple_value
        writer.add_scalar("val_loss", loss / 2, step, new_style=True)  # a tensor
        writer.add_scalar("train/loss", loss + 1, step - 5)
    writer.add_text("args", "lr=0.1", 10)  # a tensor of text, as the HF Trainer logs its args
    writer.add_histogram("weights", np.arange(4.0), 10)
    writer.close()
    [path] = (tmp_path / "w8").glob("events.out.tfevents.*")
    assert log_format(path) == "tensorboard"
    plain = read_log(path, "w8", LogSpec(flops_per_step=FLOPS_PER_STEP))
    assert _steps_and_losses(plain) == list(losses.items())  # exact in float32 too
    tensor = read_log(path, "w8", LogSpec(loss="val_loss", flops_per_step=FLOPS_PER_STEP))
    assert _steps_and_losses(tensor) == [(s, loss / 2) for s, loss in losses.items()]
    times = [r["time"] for r in plain]
    assert times[0] >= 0 and times == sorted(times)


def test_tensorboard_event_files_of_a_restarted_run_are_one_curve(tmp_path) -> None:
    require_module("tensorboard", "the tensorboard package", "the tensorboard extra; "
                   "`make test` installs it")
    from torch.utils.tensorboard import SummaryWriter

    # The first run logs steps 10-40 and dies; the restart (from the checkpoint at step 20)
    # logs steps 30-50 again into a second file of the same folder, with other values.
    first, restart = {10: 3.0, 20: 2.5, 30: 2.3, 40: 2.2}, {30: 2.25, 40: 2.1, 50: 2.0}
    for losses in (first, restart):
        writer = SummaryWriter(str(tmp_path / "w8"))
        for step, loss in losses.items():
            writer.add_scalar("eval/loss", loss, step)
        writer.close()
    files = sorted((tmp_path / "w8").glob("events.out.tfevents.*"))
    assert len(files) == 2
    # Steps 10 and 20 from the first file, 30 to 50 from the restart (written by hand).
    expected = [(10, 3.0), (20, 2.5), (30, 2.25), (40, 2.1), (50, 2.0)]
    for path in files:  # either file of the folder reads the whole run
        records = read_log(path, "w8", LogSpec(flops_per_step=FLOPS_PER_STEP))
        assert [(r["step"], pytest.approx(r["eval_loss"])) for r in records] == expected


# --- Weights & Biases --------------------------------------------------------------------------

def wandb_history(path: Path, points: list[tuple[int, float]], seconds_per_step: float,
                   step_key: str = "train/global_step") -> Path:
    """A W&B offline run's history: one row per log call (``_step`` counts them), the HF
    callback's global step, a training row between evaluations."""
    rows, index = [], 0
    for step, loss in points:
        for row in ({"train/loss": loss + 0.1}, {"eval/loss": loss}):
            rows.append({"_step": index, "_runtime": step * seconds_per_step,
                         "_timestamp": 1.7e9 + step * seconds_per_step, step_key: step, **row})
            index += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_wandb_history_jsonl_and_csv_export(tmp_path) -> None:
    points = [(100, 3.0), (200, 2.6), (400, 2.3)]
    path = wandb_history(tmp_path / "run" / "wandb-history.jsonl", points, 0.5)
    records = read_log(path, "run", LogSpec(flops_per_step=FLOPS_PER_STEP))
    assert _steps_and_losses(records) == points
    assert [r["time"] for r in records] == [50.0, 100.0, 200.0]
    # the same history exported as CSV: empty cells where a row has no value
    export = tmp_path / "export.csv"
    export.write_text("_step,_runtime,eval/loss,train/loss\n0,1,,3.1\n1,1,3.0,\n2,2,,2.7\n"
                      "3,2,2.6,\n")
    assert log_format(export) == "wandb"
    read = read_log(export, "export", LogSpec(flops_per_step=FLOPS_PER_STEP))
    assert _steps_and_losses(read) == [(1, 3.0), (3, 2.6)]  # no global step: W&B's _step


def test_wandb_line_chart_export_is_one_shape_per_run(tmp_path) -> None:
    # The layout of a W&B line chart's "Export CSV": the x axis as "Step", then per run the
    # line ("RUN - METRIC") and the band around it ("__MIN", "__MAX"); a run not logged at a
    # step leaves its cells empty.
    export = tmp_path / "wandb_export_2026-12-07.csv"
    export.write_text(
        '"Step","w256 - eval/loss","w256 - eval/loss__MIN","w256 - eval/loss__MAX",'
        '"w512 - eval/loss","w512 - eval/loss__MIN","w512 - eval/loss__MAX"\n'
        '100,3.0,2.9,3.1,2.8,2.7,2.9\n'
        '200,2.6,2.5,2.7,,,\n'
        '400,2.3,2.2,2.4,2.1,2.0,2.2\n')
    assert log_format(export) == "wandb-export"
    records = read_log(export, "ignored", LogSpec(
        flops_per_step=PerShape.parse(["w256=1e9", "w512=4e9"])))
    assert [(r["shape_name"], r["step"], r["flops"], r["eval_loss"]) for r in records] == [
        ("w256", 100, 1e11, 3.0), ("w256", 200, 2e11, 2.6), ("w256", 400, 4e11, 2.3),
        ("w512", 100, 4e11, 2.8), ("w512", 400, 1.6e12, 2.1)]
    assert all("time" not in r for r in records)  # the export keeps no wall time


def test_lightning_step_of_wandb_is_the_batch_index(tmp_path) -> None:
    path = wandb_history(tmp_path / "wandb-history.jsonl", [(1, 2.0), (3, 1.5)], 1.0,
                          step_key="trainer/global_step")
    records = read_log(path, "run", LogSpec(flops_per_step=FLOPS_PER_STEP))
    assert [r["step"] for r in records] == [2, 4]


# --- Sniffing and errors -----------------------------------------------------------------------

def test_format_from_content_when_renamed(tmp_path) -> None:
    files = {
        "state.json": json.dumps({"log_history": [{"step": 1, "eval_loss": 2.0}]}),
        "w4.csv": "epoch,step,val_loss\n0,1,2.0\n",
        "history.jsonl": json.dumps({"_step": 0, "eval/loss": 2.0}) + "\n",
        "points.csv": "width,flops,loss\n8,1e9,2.0\n",
        "curve.jsonl": json.dumps({"event": "eval", "flops": 1.0, "eval_loss": 2.0}) + "\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert [log_format(tmp_path / name) for name in files] == [
        "huggingface", "lightning", "wandb", None, None]


def test_missing_loss_names_the_file_and_its_columns(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train_loss\n0,0,2.0\n")
    with pytest.raises(BadInputFile) as err:
        read_log(path, "w4", LogSpec(flops_per_step=FLOPS_PER_STEP))
    assert str(err.value) == (f"{path}: no column like eval_loss, eval/loss, val_loss; its "
                              "columns are 'epoch', 'step', 'train_loss'; use --log-loss")


@pytest.mark.parametrize("text, expected", [
    ("epoch,step,val_loss\n0,1,abc\n", "line 2: 'val_loss': not a number: 'abc'"),
    ("epoch,step,val_loss\n0,1.5,2.0\n", "line 2: step 1.5 is not a whole number"),
    ("epoch,step,val_loss\n0,1,nan\n", "line 2: 'val_loss': 'nan' is not finite"),
])
def test_bad_cells_name_the_line(tmp_path, text, expected) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(text)
    with pytest.raises(BadInputFile, match=f"^{path}: {expected}"):
        read_log(path, "w4", LogSpec(flops_per_step=FLOPS_PER_STEP))


def test_flops_given_two_ways_or_from_a_missing_column(tmp_path) -> None:
    path = wandb_history(tmp_path / "wandb-history.jsonl", [(1, 2.0)], 1.0)
    both = LogSpec(flops_per_step=FLOPS_PER_STEP, flops_per_token=PerShape.parse(["w=1"]))
    with pytest.raises(InputError, match="FLOPs given more than one way for shape 'w'"):
        read_log(path, "w", both)
    with pytest.raises(BadInputFile, match="no column 'num_input_tokens_seen' for the FLOPs"):
        read_log(path, "w", LogSpec(flops_per_token=PerShape.parse(["1"])))


def test_flops_from_a_column_and_per_shape(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,val_loss,flops\n0,9,2.0,3e12\n0,19,1.5,6e12\n")
    records = read_log(path, "w4", LogSpec(flops="flops"))
    assert [(r["step"], r["flops"]) for r in records] == [(10, 3e12), (20, 6e12)]
    named = LogSpec(flops_per_step=PerShape.parse(["w8=1e9"]))
    with pytest.raises(InputError, match="no FLOPs for shape 'w4'"):
        read_log(path, "w4", named)
    assert [r["flops"] for r in read_log(path, "w8", named)] == [1e10, 2e10]


def test_log_tokens_needs_flops_per_token(tmp_path) -> None:
    path = wandb_history(tmp_path / "w" / "wandb-history.jsonl", [(1, 2.0)], 1.0)
    result = CliRunner().invoke(main, ["fit", str(path), "--log-tokens", "tokens"])
    assert result.exit_code == 2 and "--log-tokens needs --flops-per-token" in result.output


@pytest.mark.parametrize("items, message", [
    (["w=abc"], "expected X or SHAPE=X"), (["-1"], "must be positive"),
    (["1", "2"], "the value for all shapes given twice"), (["a=1", "a=2"], "a given twice")])
def test_per_shape_values_refused(items, message) -> None:
    with pytest.raises(InputError, match=message):
        PerShape.parse(items)
