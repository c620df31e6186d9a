"""The examples in the validate package's docstrings still hold."""

import doctest
import importlib

import pytest

MODULES = ["validate.reshape", "validate.data", "validate.flops", "validate.tasks",
           "validate.config", "validate.train", "validate.loop", "validate.measured",
           "validate.report", "validate.models.mlp", "validate.models.vit", "validate.models.lm"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
