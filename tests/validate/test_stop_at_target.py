"""``stop_at_target`` on both adapters: a real run stops at the first evaluation at or below the
target, which the test finds in the evaluations of the same run made without the option (the
runs are deterministic, so both see the same losses up to the stop), and writes the stop into
``curve.jsonl``."""


import pytest

from laws.presets import load_preset
from laws.search import plan
from laws.search.request import PlanRequest
from sim.policies import planned
from tests.validate.test_adapters_lightning import fashion  # noqa: F401
from tests.validate.test_resume_hf import STEPS
from tests.validate.test_resume_hf import train as train_gpt2
from tests.validate.test_resume_lightning import EPOCHS, STEPS_PER_EPOCH, fit
from validate.adapters.lightning import ShapeCallback
from validate.operators import VitPatch


def evaluations(curve):
    return [(r["step"], r["eval_loss"]) for r in curve if r["event"] == "eval"]


def expected_stop(curve, target):
    """The (step, loss) of the first evaluation at or below ``target`` in an unstopped run."""
    evals = evaluations(curve)
    first = next(i for i, (_, loss) in enumerate(evals) if loss <= target)
    assert 0 < first < len(evals) - 1, "the target must be met mid-run to show a stop"
    return evals[: first + 1]


def check_stopped(curve, full_curve, target):
    until_stop = expected_stop(full_curve, target)
    step, loss = until_stop[-1]
    assert evaluations(curve) == until_stop
    assert curve[-1] == {"event": "stop", "step": step, "flops": curve[-2]["flops"],
                         "eval_loss": loss, "target": target}
    assert [r["event"] for r in curve].count("stop") == 1
    return step, loss


def test_hugging_face_trainer_stops_at_the_first_evaluation_at_or_below(tmp_path):
    target = 3.95
    *_, full_curve = train_gpt2(tmp_path, "full")
    _, trainer, curve = train_gpt2(tmp_path, "stopped", stop_at_target=target)
    step, loss = check_stopped(curve, full_curve, target)
    assert trainer.state.global_step == step < STEPS
    print(f"HF: stopped at step {step} of {STEPS}, eval_loss {loss:.4f} <= {target}")


@pytest.fixture
def vit_callback():
    laws = load_preset("vit-patch-fmnist")
    the_plan = plan(laws, PlanRequest.for_laws(laws, laws.extra["default_target"],
                                               start_loss=2.5))

    def make(target):
        return lambda run_dir: ShapeCallback(
            planned(the_plan, laws), laws, lambda module: {"patch": VitPatch(module.vit)},
            shape="patch7", run_dir=run_dir, stop_at_target=target)
    return make


def test_lightning_stops_at_the_first_validation_at_or_below(fashion, tmp_path,  # noqa: F811
                                                            vit_callback):
    target = 1.7
    *_, full_curve = fit(fashion, tmp_path / "full", vit_callback(None), EPOCHS)
    _, trainer, curve = fit(fashion, tmp_path / "stopped", vit_callback(target), EPOCHS)
    step, loss = check_stopped(curve, full_curve, target)
    assert trainer.global_step == step < EPOCHS * STEPS_PER_EPOCH
    print(f"Lightning: stopped at step {step} of {EPOCHS * STEPS_PER_EPOCH}, "
          f"val_loss {loss:.4f} <= {target}")
