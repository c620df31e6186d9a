"""A real run driven by the online policy: vit-patch on Fashion-MNIST, patch 14 then 7, with the
posterior of the vit-patch-fmnist laws updated from the run's own evaluations.

    OMP_NUM_THREADS=1 .venv/bin/python docs/examples/online_vit.py out/online-vit [BUDGET]

The policy is the simulator's (``sim.online.Online``); the controller of ``validate train``
gives it what ``RunView`` offers and writes its ``posterior`` updates into ``curve.jsonl``
beside the evaluations and switches. The run evaluates 40 times, spaced geometrically, and
updates every 5 evaluations (the simulator's 50 would be past the end of so short a run).
"""

import json
import sys
from pathlib import Path

from laws.presets import load_preset
from laws.search.request import PlanRequest
from sim.online import Online
from sim.policies import PlanningContext
from validate.commands import format_result
from validate.config import TrainConfig
from validate.train import train

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "out/online-vit")
budget = float(sys.argv[2]) if len(sys.argv) > 2 else 1e12
laws = load_preset("vit-patch-fmnist")
request = PlanRequest.for_laws(laws, laws.extra["default_target"])
policy = Online(PlanningContext(laws, request), every=5)
shapes = {shape.name: dict(shape.axes) for shape in laws.shapes}
config = TrainConfig(evals=40, task_options={"eval_size": 3000, "patch_resize": "merge"})
result = train("vit-patch", shapes["patch14"], budget, policy, config, shapes=shapes,
               run_dir=out_dir)
print(format_result(result))
for line in (out_dir / "curve.jsonl").read_text().splitlines():
    record = json.loads(line)
    if record["event"] in ("posterior", "switch"):
        print(json.dumps(record))
