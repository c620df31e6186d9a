"""The commands on one's own runs' curve.jsonl: `measure`, `fit` with no column options (the
shapes keep their axes), the hint for a run's curve read with columns but no event filter, a
law file given as --plan, and a plan used with other laws (Python and controller alike)."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import shapeshift
from cli import main
from laws.presets import load_preset
from laws.search.request import LawsMismatch
from sim.policies import planned


def write_run(path, shape, axes, points, switch_to=None):
    path.parent.mkdir(parents=True)
    lines = []
    for k, (flops, loss) in enumerate(points):
        name, at = (switch_to[0], switch_to[1]) if switch_to and k > 1 else (shape, axes)
        lines.append({"event": "eval", "step": k, "flops": flops, "time": flops / 1e9,
                      "eval_loss": loss, "shape": at, "shape_name": name})
        if switch_to and k == 1:
            lines.append({"event": "switch", "flops": flops, "from": axes, "to": switch_to[1],
                          "eval_loss": loss})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture
def runs(tmp_path):
    for seed in (0, 1):
        noise = 1 + 0.01 * seed
        write_run(tmp_path / "static" / "small" / f"seed{seed}" / "curve.jsonl", "small",
                  {"width": 8}, [(0, 3.0)] + [(10.0 ** (8 + k / 4), noise * 2 * 10 ** (-k / 16))
                                              for k in range(12)])
        write_run(tmp_path / "static" / "big" / f"seed{seed}" / "curve.jsonl", "big",
                  {"width": 32}, [(10.0 ** (8.5 + k / 4), noise * 2.2 * 10 ** (-k / 10))
                                  for k in range(12)])
        write_run(tmp_path / "adaptive" / f"seed{seed}" / "curve.jsonl", "small", {"width": 8},
                  [(10.0 ** (8 + k / 4), noise * 2 * 10 ** (-k / 12)) for k in range(12)],
                  switch_to=("big", {"width": 32}))
    return tmp_path


def test_measure_pairs_seeds_with_an_interval(runs):
    result = CliRunner().invoke(main, ["measure", str(runs), "--target", "1.2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    kinds = {(row["kind"], row["shape"], row["seed"]) for row in data["runs"]}
    assert ("adaptive", "small > big", 1) in kinds and ("static", "big", 0) in kinds
    paired = data["paired"]
    assert [seed["seed"] for seed in paired["seeds"]] == [0, 1]
    assert paired["saving"]["low"] < paired["saving"]["mean"] < paired["saving"]["high"]
    text = CliRunner().invoke(main, ["measure", str(runs), "--target", "1.2"]).output
    assert "mean saving" in text and "90.0% interval" in text


def test_measure_starts_without_torch():
    code = ("import sys; from cli import main; sys.argv = ['shapeshift', 'measure', '--help'];"
            "\ntry: main()\nexcept SystemExit: pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().endswith("False")


def test_fit_reads_runs_with_no_options_and_keeps_axes(runs):
    out = runs / "laws.json"
    result = CliRunner().invoke(main, ["fit", str(runs / "static"), "--form", "power",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    laws = shapeshift.read_law_file(out)
    assert {s.name: s.axes for s in laws.shapes} == {"big": {"width": 32},
                                                     "small": {"width": 8}}
    assert len(laws.provenance["input"]) == 4
    refused = CliRunner().invoke(main, ["fit", str(runs / "adaptive")])
    assert refused.exit_code == 2 and "an adaptive run" in refused.output


def test_fit_hints_at_the_event_filter(runs):
    path = runs / "static" / "big" / "seed0" / "curve.jsonl"
    result = CliRunner().invoke(main, ["fit", str(path), "--shape-col", "shape_name",
                                       "--compute-col", "flops", "--loss-col", "eval_loss"])
    assert result.exit_code == 2 and "--filter event=eval" in result.output
    with_filter = CliRunner().invoke(main, ["fit", str(path), "--filter", "event=eval",
                                            "--shape-col", "shape_name", "--compute-col",
                                            "flops", "--loss-col", "eval_loss"])
    assert with_filter.exit_code == 0, with_filter.output


def test_a_law_file_as_plan_is_named(tmp_path):
    laws_file = tmp_path / "laws.json"
    shapeshift.write_law_file(load_preset("demo"), laws_file)
    result = CliRunner().invoke(main, ["simulate", "--preset", "demo", "--target", "2.0",
                                       "--plan", str(laws_file)])
    assert result.exit_code == 2 and "is a law file, not a plan" in result.output


def test_a_plan_on_other_laws_is_refused_by_planned_and_the_controller():
    torch = pytest.importorskip("torch")
    from validate.controller import ShapeController

    demo, other = load_preset("demo"), load_preset("vit-patch-fmnist")
    the_plan = shapeshift.search(demo, 2.0)
    with pytest.raises(LawsMismatch, match=r"digest [0-9a-f]{12}\).*digest [0-9a-f]{12}"):
        planned(the_plan, other)
    policy = planned(the_plan, demo)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(LawsMismatch):
        ShapeController(optimizer, policy, other, {"patch": None}, shape="patch7")
