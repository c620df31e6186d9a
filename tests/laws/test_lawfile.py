"""Law files: round trip, extra keys kept, and bad input named by file and field."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess

import pytest

from laws.errors import InputError
from laws.forms import ChinchillaLaw, PowerLaw, SaturatingLaw, TableLaw
from laws.io.atomic import check_replaceable, check_writable, write_folder_atomic
from laws.io.lawfile import read_law_file, write_law_file
from laws.lawset import LawSet, Measured, Shape, Transitions

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
    with pytest.raises(InputError, match=rf"{path}.*shapes\[0\].*expected a (list of )?number"):
        read_law_file(path)


FITTED = LawSet("fitted", (
    Shape("a", {"N": 1e8}, PowerLaw(a=2.0, b=0.3, c=1.0),
          samples=(PowerLaw(a=2.1, b=0.31, c=1.0), PowerLaw(a=1.9, b=0.29, c=1.01)),
          measured=Measured(3.25, (1e15, 1e18), 7, {"N": (9e7, 1.1e8)})),
    Shape("b", {"N": 1e9}, SaturatingLaw(a=5.0, b=0.3, c=0.5, d=1e12),
          samples=(SaturatingLaw(a=5.2, b=0.3, c=0.5, d=1e12),
                   SaturatingLaw(a=4.8, b=0.3, c=0.5, d=2e12)),
          measured=Measured(2.5, (1e16, 1e19), 9)),
))


def test_samples_and_measured_round_trip_one_line_each(tmp_path) -> None:
    path = tmp_path / "fitted.json"
    write_law_file(FITTED, path)
    assert read_law_file(path) == FITTED
    data = json.loads(path.read_text())
    assert data["shapes"][0]["measured"] == {"first_loss": 3.25, "compute_range": [1e15, 1e18],
                                             "points": 7, "axes_range": {"N": [9e7, 1.1e8]}}
    assert data["shapes"][1]["samples"][1] == {"a": 4.8, "b": 0.3, "c": 0.5, "d": 2e12}
    lines = path.read_text().splitlines()
    assert sum('"a": ' in line for line in lines) == 6  # params and 2 samples, 2 shapes


def test_files_without_samples_or_measured_stay_as_they_were(tmp_path) -> None:
    laws = read_law_file(_write(tmp_path, GOOD))
    assert laws.shapes[0].samples == () and laws.shapes[0].measured is None
    assert laws.samples() == [] and laws.measured_start_loss() is None
    write_law_file(laws, tmp_path / "again.json")
    assert set(json.loads((tmp_path / "again.json").read_text())["shapes"][0]) == {
        "name", "axes", "form", "params", "throughput"}


def _fitted_with(shape: int, key: str, value) -> dict:
    data = json.loads(json.dumps(
        {"name": "fitted", "shapes": [
            {"name": "a", "form": "power", "params": {"a": 2.0, "b": 0.3, "c": 1.0},
             "samples": [{"a": 2.1, "b": 0.3, "c": 1.0}],
             "measured": {"first_loss": 3.0, "compute_range": [1.0, 2.0], "points": 3}},
            {"name": "b", "form": "power", "params": {"a": 3.0, "b": 0.3, "c": 1.0},
             "samples": [{"a": 3.1, "b": 0.3, "c": 1.0}]}]}))
    data["shapes"][shape][key] = value
    return data


@pytest.mark.parametrize(("shape", "key", "value", "pattern"), [
    (0, "samples", [{"a": 2.1, "b": -0.3, "c": 1.0}],
     r"shapes\[0\] \(a\)\.samples\[0\]: b must be a positive"),
    (0, "samples", [{"a": 2.1, "c": 1.0}], r"shapes\[0\] \(a\)\.samples\[0\]: .*b"),
    (0, "samples", {"a": [2.1]}, r"shapes\[0\] \(a\)\.samples: expected a list"),
    (1, "samples", [{"a": 3.1, "b": 0.3, "c": 1.0}] * 2,
     r"shape 'b' has 2 samples, shape 'a' 1; every shape needs the same number"),
    (0, "measured", {"first_loss": -1.0, "compute_range": [1.0, 2.0], "points": 3},
     r"shapes\[0\] \(a\)\.measured\.first_loss: must be positive"),
    (0, "measured", {"first_loss": 3.0, "compute_range": [2.0, 1.0], "points": 3},
     r"shapes\[0\] \(a\)\.measured\.compute_range: low 2\.0 is above high 1\.0"),
    (0, "measured", {"first_loss": 3.0, "compute_range": [1.0], "points": 3},
     r"measured\.compute_range: expected \[low, high\]"),
    (0, "measured", {"first_loss": 3.0, "compute_range": [1.0, 2.0], "points": 0},
     r"measured\.points: expected a whole number >= 1"),
    (0, "measured", {"compute_range": [1.0, 2.0], "points": 3},
     r"shapes\[0\] \(a\)\.measured: missing field 'first_loss'"),
])
def test_bad_samples_and_measured_name_file_and_field(tmp_path, shape, key, value,
                                                      pattern) -> None:
    path = _write(tmp_path, _fitted_with(shape, key, value))
    with pytest.raises(InputError) as err:
        read_law_file(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert re.search(pattern, message), message


def test_measured_start_loss_is_the_highest_first_loss() -> None:
    assert FITTED.measured_start_loss() == 3.25
    partly = LawSet("p", (FITTED.shapes[0], Shape("c", {}, PowerLaw(a=2.0, b=0.3, c=1.0),
                                                  samples=FITTED.shapes[0].samples)))
    assert partly.measured_start_loss() == 3.25


# --- types, ranges and files (issue 17) ---
def _text_with(tmp_path, old: str, new: str):
    text = json.dumps(GOOD)
    assert old in text
    return _write(tmp_path, text.replace(old, new, 1))


@pytest.mark.parametrize(("old", "new", "pattern"), [
    ('"b": 0.21', '"b": true', r"shapes\[0\] \(p16\)\.params: b: expected a number, got True"),
    ('"b": 0.21', '"b": "0.21"', r"params: b: expected a number, got '0\.21'"),
    ('"a": 31.2', '"a": 1' + "0" * 400,
     r"shapes\[0\]\.params\.a: an integer of 401 digits is not a finite number"),
    ('"a": 31.2', '"a": NaN', r"shapes\[0\]\.params\.a: nan is not a finite number"),
    ('"throughput": 310000000000000.0', '"throughput": Infinity',
     r"shapes\[0\]\.throughput: inf is not"),
    ('"throughput": 310000000000000.0', '"throughput": 1e999',
     r"shapes\[0\]\.throughput: inf is not"),
    ('"name": "toy"', '"name": "toy", "provenance": 5', r"provenance: expected an object, got 5"),
    ('"name": "toy"', '"name": "toy", "provenance": [1]', r"provenance: expected an object"),
    ('"name": "toy"', '"name": ["toy"]', r"name: expected a string, got \['toy'\]"),
    ('"patch": 16', '"patch": true', r"axes\.patch: expected a number, got True"),
    ('"patch": 16', '"patch": [16]', r"axes\.patch: expected a number"),
])
def test_values_that_are_not_finite_numbers_name_file_and_field(tmp_path, old, new,
                                                                 pattern) -> None:
    path = _text_with(tmp_path, old, new)
    with pytest.raises(InputError) as err:
        read_law_file(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message and len(message) < 200
    assert re.search(pattern, message), message


def test_a_table_law_with_a_nan_loss_is_refused(tmp_path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["shapes"][0]["form"] = "table"
    data["shapes"][0]["params"] = {"compute": [1e15, 1e16, 1e17], "loss": [3.0, 2.5, 2.0]}
    assert read_law_file(_write(tmp_path, data)).shapes[0].law.form == "table"
    data["shapes"][0]["params"]["loss"][1] = float("nan")
    with pytest.raises(InputError, match=r"params\.loss\[1\]: nan is not a finite number"):
        read_law_file(_write(tmp_path, json.dumps(data)))


def test_deep_nesting_is_one_line(tmp_path) -> None:
    path = _write(tmp_path, '{"shapes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InputError, match=r"laws\.json: nested too deeply to be a law file"):
        read_law_file(path)


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_a_file_in_another_encoding_is_not_utf8(tmp_path, encoding) -> None:
    path = tmp_path / "laws.json"
    path.write_bytes(json.dumps({**GOOD, "name": "t\u00e9"}, ensure_ascii=False).encode(encoding))
    with pytest.raises(InputError, match=r"laws\.json: not UTF-8 text \(byte \d+\)"):
        read_law_file(path)


def test_utf8_with_a_byte_order_mark_is_read(tmp_path) -> None:
    path = tmp_path / "laws.json"
    path.write_bytes(json.dumps(GOOD).encode("utf-8-sig"))
    assert read_law_file(path).name == "toy"


def test_a_fifo_or_a_folder_is_refused_without_opening_it(tmp_path) -> None:
    fifo = tmp_path / "laws.json"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(InputError, match=r"laws\.json: not a regular file; give a law file"):
        read_law_file(fifo)
    with pytest.raises(InputError, match=r": a folder; give a law file"):
        read_law_file(tmp_path)


# --- atomic writes: leftovers of killed writers ---
def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid  # reaped: no process has it (until the kernel reuses it)


def test_a_write_removes_the_temporary_files_of_killed_writers(tmp_path) -> None:
    host = socket.gethostname().replace(".", "_")
    target = tmp_path / "laws.json"
    killed = [f".laws.json.{host}-{_dead_pid()}.ab12_x9k.tmp", ".laws.json.k2j4_9zz.tmp"]
    kept = [f".laws.json.{host}-1.ab12_x9k.tmp",  # pid 1 is alive: a writer still at work
            f".laws.json.elsewhere-{_dead_pid()}.ab12_x9k.tmp",  # another host's writer
            f".laws.json.bak.{host}-{_dead_pid()}.ab12_x9k.tmp",  # laws.json.bak's writer
            "laws.json.tmp", "notes.txt"]
    for name in killed + kept:
        (tmp_path / name).write_text("half")
    stale_folder = tmp_path / f".out.{host}-{_dead_pid()}.qq1_x0ab.old"
    stale_folder.mkdir()
    (stale_folder / "results.json").write_text("{}")

    write_law_file(read_law_file(_write(tmp_path, GOOD, "in.json")), target)
    assert read_law_file(target).name == "toy"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*kept, "in.json", "laws.json", stale_folder.name])
    write_folder_atomic(tmp_path / "out", {"results.json": "{}"})
    assert not stale_folder.exists() and (tmp_path / "out" / "results.json").is_file()


def test_an_output_below_a_file_is_refused_before_writing(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"file/laws\.json: .*file is not a folder"):
        write_law_file(read_law_file(_write(tmp_path, GOOD)), tmp_path / "file" / "laws.json")
    with pytest.raises(InputError, match=r"file is not a folder"):
        check_replaceable(tmp_path / "file" / "a" / "b", ["x"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only folder")
def test_an_output_in_a_read_only_folder_is_refused(tmp_path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(InputError, match=r"cannot write in the folder"):
            check_writable(folder / "laws.json")
    finally:
        folder.chmod(0o755)
