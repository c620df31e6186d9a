"""Law files: round trip, extra keys kept, and bad input named by file and field."""

from __future__ import annotations

import json

import pytest

from laws.errors import InputError
from laws.forms import ChinchillaLaw, PowerLaw, SaturatingLaw, TableLaw
from laws.io.lawfile import read_law_file, write_law_file
from laws.lawset import LawSet, Shape, Transitions

GOOD = {
    "name": "toy",
    "shapes": [{"name": "p16", "axes": {"patch": 16}, "form": "power",
                "params": {"a": 31.2, "b": 0.21, "c": 0.42}, "throughput": 3.1e14}],
}


def _write(tmp_path, data, name="laws.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_round_trip_of_every_form(tmp_path) -> None:
    laws = LawSet("all-forms", (
        Shape("p", {"patch": 16}, PowerLaw(a=31.2, b=0.21, c=0.42), 3.1e14),
        Shape("s", {"patch": 8}, SaturatingLaw(a=5.0, b=0.3, c=0.5, d=1e12)),
        Shape("c", {"width": 512}, ChinchillaLaw(E0=1.8, A=478.0, B=2144.0, alpha=0.35,
                                                 beta=0.37, N=1e8)),
        Shape("t", {"width": 64}, TableLaw((1e15, 1e16, 1e17), (3.0, 2.5, 2.2), 1.0)),
    ), transitions=Transitions(flops=1e15, allowed=(("p", "s"),)),
        provenance={"source": "test"})
    path = tmp_path / "out.json"
    write_law_file(laws, path)
    assert read_law_file(path) == laws


def test_extra_keys_are_kept(tmp_path) -> None:
    data = {**GOOD, "note": "kept", "shapes": [{**GOOD["shapes"][0], "colour": "red"}]}
    path = _write(tmp_path, data)
    laws = read_law_file(path)
    write_law_file(laws, tmp_path / "again.json")
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["note"] == "kept" and again["shapes"][0]["colour"] == "red"


def _without(data: dict, *path: str) -> dict:
    copy = json.loads(json.dumps(data))
    target = copy
    for key in path[:-1]:
        target = target[key] if not key.isdigit() else target[int(key)]
    del target[path[-1]]
    return copy


@pytest.mark.parametrize(("data", "field"), [
    (_without(GOOD, "shapes"), "shapes"),
    (_without(GOOD, "shapes", "0", "name"), "name"),
    (_without(GOOD, "shapes", "0", "form"), "form"),
    (_without(GOOD, "shapes", "0", "params"), "params"),
    (_without(GOOD, "shapes", "0", "params", "b"), "b"),
])
def test_missing_field_names_file_and_field(tmp_path, data, field) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as err:
        read_law_file(path)
    message = str(err.value)
    assert str(path) in message and field in message and "\n" not in message


@pytest.mark.parametrize("param", ["b", "a"])
def test_negative_parameter_names_file_and_field(tmp_path, param) -> None:
    data = json.loads(json.dumps(GOOD))
    data["shapes"][0]["params"][param] = -0.3
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=rf"{path}.*shapes\[0\].*{param} must be a positive"):
        read_law_file(path)


def test_bad_json_names_file_and_line(tmp_path) -> None:
    path = _write(tmp_path, '{"name": "x",\n "shapes": [}')
    with pytest.raises(InputError, match=rf"{path}: not valid JSON \(line 2"):
        read_law_file(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InputError, match="no such law file"):
        read_law_file(tmp_path / "absent.json")


def test_negative_throughput(tmp_path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["shapes"][0]["throughput"] = -1.0
    with pytest.raises(InputError, match=r"throughput: must be >= 0"):
        read_law_file(_write(tmp_path, data))


@pytest.mark.parametrize("form, params", [
    ("table", {"compute": 5, "loss": 3}),
    ("table", {"compute": [1.0, 2.0], "loss": [3.0, 2.0], "floor": None}),
    ("power", {"a": "many", "b": 0.3, "c": 1.0}),
    ("power", {"a": [1.0], "b": 0.3, "c": 1.0}),
])
def test_malformed_parameters_name_file_and_shape(tmp_path, form, params) -> None:
    data = json.loads(json.dumps(GOOD))
    data["shapes"][0]["form"], data["shapes"][0]["params"] = form, params
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=rf"{path}.*shapes\[0\].*must be numbers"):
        read_law_file(path)
