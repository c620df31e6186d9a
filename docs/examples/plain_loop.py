"""A plain PyTorch loop that widens its MLP when the plan says so (run: python plain_loop.py).

The plan comes from two scaling laws (in practice: `shapeshift search --json` on your laws);
the controller asks the plan's policy at each evaluation and widens the MLP through Net2Wider,
carrying AdamW's state and the learning rate (sqrt rule) over to the new batch size.
"""
import sys

import torch
import torch.nn.functional as F

from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from laws.search import plan
from laws.search.request import PlanRequest
from sim.policies import planned
from validate.controller import ShapeController
from validate.data import Teacher, batch_generator
from validate.operators import BatchSize, MlpWidth

out_dir = sys.argv[1] if len(sys.argv) > 1 else "out/plain_loop"
max_steps, eval_interval, learning_rate = 60, 5, 3e-3
laws = LawSet("mlp", (Shape("w16", {"width": 16, "batch": 32}, PowerLaw(2.0, 0.2, 0.2)),
                      Shape("w64", {"width": 64, "batch": 64}, PowerLaw(3.0, 0.2, 0.1))))
the_plan = plan(laws, PlanRequest.for_laws(laws, 0.25, start_loss=0.6))
print(f"plan: w16 until loss {the_plan.optimal.schedule[0].loss_to:.4f}, then w64")

torch.manual_seed(0)
teacher = Teacher()  # a fixed random MLP labels N(0, I) inputs: 16 in, 4 out
model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
operators = {"width": MlpWidth([(model[0], model[2])]), "batch": BatchSize("sqrt")}
controller = ShapeController(optimizer, planned(the_plan, laws), laws, operators, shape="w16",
                             run_dir=out_dir)
probe_x, probe_y = teacher.sample(512, torch.Generator().manual_seed(99))


@torch.no_grad()
def evaluate():
    return F.mse_loss(model(probe_x), probe_y).item()


while controller.steps < max_steps:
    batch = controller.axes["batch"]  # the batch size of the current shape
    x, y = teacher.sample(batch, batch_generator(0, controller.samples))
    with controller.step(samples=batch):  # counts the step's FLOPs and seconds
        loss = F.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if controller.steps % eval_interval == 0:
        eval_loss = evaluate()
        print(f"step {controller.steps}: eval {eval_loss:.4f} on {controller.shape_name}")
        if controller.observe(eval_loss, loss.item()):  # the policy may switch here
            print(f"switch to {controller.shape_name} (width {model[0].out_features}), "
                  f"eval {evaluate():.4f} after it, lr {optimizer.param_groups[0]['lr']:.2e}")
print(f"done: {controller.trained_flops:.3e} FLOPs, curve in {out_dir}/curve.jsonl")
