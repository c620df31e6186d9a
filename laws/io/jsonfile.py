"""Reading JSON input files (law files, plans, sweep files) with errors that name the file.

>>> read_json_object("no/such/plan.json", "plan")
Traceback (most recent call last):
...
laws.errors.InputError: no/such/plan.json: no such plan file
"""

from __future__ import annotations

import json
import os
from typing import Any

from laws.errors import InputError


def read_json_object(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; an ``InputError`` names the file and the problem."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what} file") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a {what} file is a JSON object")
    return data
