"""After every shape change the optimizer holds exactly the model's parameters and works."""

import pytest
import torch

from validate.reshape import batch_lr_scale
from validate.tasks import make_task


def _step(task, model, optimizer, shape, position):
    batch = task.train_batch(shape, 0, position, 0, 1)
    optimizer.zero_grad(set_to_none=True)
    total, count = task.loss_sum(model, batch, shape)
    (total / count).backward()
    optimizer.step()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_bytes(bytes(range(256)) * 64)
    return str(path)


def _tasks(corpus):
    return {
        "mlp-width": (make_task("mlp-width", noise=0.01), {"width": 8}, {"width": 20}),
        "lm-context grow": (make_task("lm-context", corpus=corpus),
                            {"context": 8, "dim": 16, "heads": 2, "mlp": 16},
                            {"context": 24, "mlp": 40}),
        "lm-context shrink": (make_task("lm-context", corpus=corpus),
                              {"context": 24, "dim": 16, "heads": 2}, {"context": 8}),
        "batch": (make_task("mlp-width"), {"batch": 16}, {"batch": 64}),
    }


@pytest.mark.parametrize("case", ["mlp-width", "lm-context grow", "lm-context shrink", "batch"])
def test_optimizer_follows_every_change(case, corpus):
    task, start, change = _tasks(corpus)[case]
    old = task.complete(start)
    new = task.complete(change, base=old)
    task.check_change(old, new)
    torch.manual_seed(0)
    model = task.build(old)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    _step(task, model, optimizer, old, 0)
    task.change(model, optimizer, old, new, torch.Generator().manual_seed(0))

    params = list(model.parameters())
    held = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(held) == len(params) and all(a is b for a, b in zip(held, params, strict=True))
    assert set(optimizer.state) <= set(params)  # no stale tensors of the old shape
    for param, state in optimizer.state.items():
        assert state["exp_avg"].shape == state["exp_avg_sq"].shape == param.shape
    before = [p.detach().clone() for p in params]
    _step(task, model, optimizer, new, old["batch"])
    assert all(not torch.equal(a, b) for a, b in zip(before, params, strict=True))


def test_batch_change_leaves_the_eval_loss_alone():
    task = make_task("mlp-width")
    old = task.complete({"batch": 16})
    new = task.complete({"batch": 256}, base=old)
    torch.manual_seed(0)
    model = task.build(old)
    optimizer = torch.optim.AdamW(model.parameters())
    _step(task, model, optimizer, old, 0)
    batch = task.eval_batches(old, 0, 1)[0]
    with torch.no_grad():
        before = task.loss_sum(model, batch, old)[0].item()
        task.change(model, optimizer, old, new, torch.Generator())
        assert task.loss_sum(model, batch, new)[0].item() == before


@pytest.mark.parametrize(("rule", "expected"), [("linear", 8.0), ("sqrt", 8**0.5),
                                                ("none", 1.0)])
def test_batch_learning_rate_rules(rule, expected):
    assert batch_lr_scale(512, 64, rule) == pytest.approx(expected)
    assert batch_lr_scale(64, 512, rule) == pytest.approx(1 / expected)
