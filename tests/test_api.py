"""The public package: `import shapeshift` is light, every exported name resolves, and the
examples of docs/API.md and of the package's docstring run."""

import doctest
import subprocess
import sys
from pathlib import Path

import pytest

import shapeshift

ROOT = Path(__file__).resolve().parent.parent
FLAGS = doctest.ELLIPSIS


def test_import_is_light():
    """No torch, scipy or framework at import; a name of the core install stays light."""
    code = ("import sys, shapeshift; shapeshift.read_law_file; "
            "print(sorted(m for m in ('torch', 'lightning', 'transformers', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_every_exported_name_resolves():
    optional = {"ShapeCallback": "lightning", "ShapeTrainerCallback": "transformers",
                "ShapeTrainer": "transformers"}
    for name in shapeshift.__all__:
        if name in optional:
            pytest.importorskip(optional[name])
        assert getattr(shapeshift, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        shapeshift.nothing  # noqa: B018


def test_package_docstring_examples():
    assert doctest.testmod(shapeshift, optionflags=FLAGS).failed == 0


def test_api_md_examples():
    pytest.importorskip("torch")
    result = doctest.testfile(str(ROOT / "docs" / "API.md"), module_relative=False,
                              optionflags=FLAGS)
    assert result.failed == 0 and result.attempted > 20
