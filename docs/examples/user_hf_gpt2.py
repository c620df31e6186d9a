"""Your Hugging Face Trainer on a tiny GPT-2, from static runs to a plan and back, with the public
API only (run: python user_hf_gpt2.py OUT_DIR [STEPS]; its output: user_hf_gpt2.txt).

1. static runs of two context lengths, two seeds each, through ShapeTrainer (a Static policy);
2. fit laws to their curve.jsonl (the shapes keep their axes), 3. search the cheapest schedule;
4. the adaptive run of each seed through the same callback; 5. measure what it saved.
"""
import sys
import sysconfig
from pathlib import Path

import torch
import transformers

import shapeshift

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/user_hf")
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 120
shapes = {"ctx32": {"context": 32}, "ctx128": {"context": 128}}
text = Path(sysconfig.get_paths()["stdlib"], "argparse.py").read_bytes()  # any text will do
corpus = torch.tensor(list(text), dtype=torch.uint8)


class Windows(torch.utils.data.Dataset):
    """Byte windows as long as the longest context; ShapeTrainer cuts them to the current one."""

    def __init__(self, count, seed):
        generator = torch.Generator().manual_seed(seed)
        self.starts = torch.randint(len(corpus) - 129, (count,), generator=generator)

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, index):
        window = corpus[self.starts[index]: self.starts[index] + 128].long()
        return {"input_ids": window, "labels": window}


def run(policy, laws, run_dir, seed):
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(  # built at the start context
        vocab_size=256, n_positions=32, n_embd=32, n_layer=2, n_head=2))
    callback = shapeshift.ShapeTrainerCallback(
        policy, laws, lambda model: {"context": shapeshift.Gpt2Context(model)}, shape="ctx32",
        run_dir=run_dir)
    args = transformers.TrainingArguments(
        output_dir=str(run_dir / "trainer"), per_device_train_batch_size=8, max_steps=steps,
        learning_rate=3e-3, lr_scheduler_type="constant", eval_strategy="steps",
        eval_steps=steps // 15, per_device_eval_batch_size=16, save_strategy="no", report_to=[],
        use_cpu=True, disable_tqdm=True, logging_strategy="no", seed=seed)
    trainer = shapeshift.ShapeTrainer(model=model, args=args, shape_callback=callback,
                                      train_dataset=Windows(8 * steps, seed + 1),
                                      eval_dataset=Windows(32, 99))
    trainer.remove_callback(transformers.PrinterCallback)  # the metrics are in curve.jsonl
    trainer.train()


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
