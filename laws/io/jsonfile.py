"""Reading input files (law files, plans, sweep files, curve files): regular files of UTF-8
text, and JSON objects of finite numbers, with errors that name the file (and the field).

>>> read_json_object("no/such/plan.json", "plan")
Traceback (most recent call last):
...
laws.errors.BadInputFile: no/such/plan.json: no such plan file
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
from typing import Any

from laws.errors import BadInputFile

# UTF-8, with or without the byte-order mark some editors write.
ENCODING = "utf-8-sig"


def check_input_file(path: str | os.PathLike, what: str) -> None:
    """Refuse, before opening it, a path that is not a regular file: opening a FIFO would
    wait for a writer forever, and a folder or a device is no input file. ``what`` names the
    kind of file in the messages ("law": "no such law file"), if given."""
    noun = f"{what} file" if what else "file"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise BadInputFile(f"{path}: no such {noun}") from None
    except OSError as err:
        raise BadInputFile(f"{path}: cannot read the {noun} ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise BadInputFile(f"{path}: {kind}; give a {noun}")


def not_utf8(path: str | os.PathLike, err: UnicodeDecodeError) -> BadInputFile:
    """The error for a file in another encoding (UTF-16, latin-1) or a binary file."""
    return BadInputFile(f"{path}: not UTF-8 text (byte {err.start}); save the file as UTF-8")


def parse_json(text: str, where: str, what: str = "JSON") -> Any:
    """``json.loads(text)``; any failure is a ``BadInputFile`` that starts with ``where``.

    >>> parse_json('{"a": [1, 2', "runs.jsonl: line 3")
    Traceback (most recent call last):
    ...
    laws.errors.BadInputFile: runs.jsonl: line 3: not valid JSON (line 1: Expecting ',' delimiter)
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInputFile(f"{where}: not valid JSON (line {err.lineno}: {err.msg})") from None
    except RecursionError:
        raise BadInputFile(f"{where}: nested too deeply to be {what}") from None
    except ValueError as err:  # an integer of more digits than Python converts
        raise BadInputFile(f"{where}: not valid JSON ({err})") from None
    if _SURROGATE_ESCAPE.search(text):
        _check_text(data, where)
    return data


# A UTF-16 surrogate as an escape: json pairs a high one with the low one after it into one
# character, and leaves a lone one in the string, which no UTF-8 output can hold.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_text(data: Any, where: str) -> None:
    """Refuse strings that hold a lone surrogate (``"\\ud800"``): not text.

    >>> parse_json('{"name": "a\\\\ud800"}', "laws.json")
    Traceback (most recent call last):
    ...
    laws.errors.BadInputFile: laws.json: a string holds a lone surrogate escape (\\ud800), \
which is not a character
    """
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError as err:
        code = ord(err.object[err.start])
        raise BadInputFile(f"{where}: a string holds a lone surrogate escape (\\u{code:04x}), "
                           "which is not a character") from None


def read_json_object(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; a ``BadInputFile`` names the file and the problem."""
    check_input_file(path, what)
    try:
        with open(path, encoding=ENCODING) as handle:
            text = handle.read()
    except UnicodeDecodeError as err:
        raise not_utf8(path, err) from None
    data = parse_json(text, str(path), f"a {what} file")
    if not isinstance(data, dict):
        raise BadInputFile(f"{path}: a {what} file is a JSON object")
    where = first_nonfinite(data)
    if where is not None:
        field, value = where
        shown = value if isinstance(value, float) else f"an integer of {len(str(value))} digits"
        raise BadInputFile(f"{path}: {field}: {shown} is not a finite number (JSON numbers must "
                           "be finite and within float range)")
    return data


def shown(text: str) -> str:
    r"""A name from a file as an error message shows it: as it is, or quoted with escapes when
    it holds a line break or another unprintable character (a message is one line).

    >>> shown("w64"), shown("w\n64")
    ('w64', '"w\\n64"')
    """
    return text if text.isprintable() else json.dumps(text)


def first_nonfinite(data: Any) -> tuple[str, float | int] | None:
    """The field (as ``a.b[0]``) and value of the first NaN, infinity or integer beyond float
    range in parsed JSON, or None; iterative, so that any depth json parsed is walked.

    >>> first_nonfinite({"shapes": [{"params": {"a": 1.0, "b": float("nan")}}]})
    ('shapes[0].params.b', nan)
    >>> first_nonfinite({"points": 10**400}) is not None, first_nonfinite({"a": [1, "x"]})
    (True, None)
    """
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            pending.extend((f"{where}.{shown(key)}" if where else shown(key), item)
                           for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, float) and not math.isfinite(value) or (
                isinstance(value, int) and abs(value) > sys.float_info.max):
            return where, value
    return None
