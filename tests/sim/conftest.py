"""Shared inputs of the simulator tests: a four-shape law set whose plan has three switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from laws.io.lawfile import read_law_file
from laws.search import PlanRequest, plan

FOUR_SHAPES = Path(__file__).parent / "data" / "four_shapes.json"
TARGET = 1.45


@pytest.fixture(scope="session")
def four():
    """Power laws a_i C^-0.3 + c_i, a_i = 6300 * 3^i, floors 2.2, 1.7, 1.35, 1.1."""
    return read_law_file(FOUR_SHAPES)


@pytest.fixture(scope="session")
def target():
    """A target the four shapes' optimal schedule reaches with three switches."""
    return TARGET


@pytest.fixture(scope="session")
def four_request(four):
    return PlanRequest.for_laws(four, TARGET)


@pytest.fixture(scope="session")
def four_plan(four, four_request):
    return plan(four, four_request)
