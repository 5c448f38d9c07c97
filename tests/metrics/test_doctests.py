"""Run the docstring examples of the metrics and handlers (they are part of the documentation)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "monai_jdt.metrics.functional.calibration",
    "monai_jdt.metrics.functional.calibration_binning",
    "monai_jdt.metrics.functional.calibration_stats",
    "monai_jdt.metrics.functional.fine_grained",
    "monai_jdt.metrics.functional.overlap_counts",
    "monai_jdt.metrics.functional.soft_dice",
    "monai_jdt.metrics.calibration",
    "monai_jdt.metrics.fine_grained",
    "monai_jdt.metrics.soft_dice",
    "monai_jdt.metrics.plot",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
