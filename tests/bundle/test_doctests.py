"""Run the docstring examples of the bundle support code (they are part of the documentation)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "monai_jdt.bundle.checkpoint",
    "monai_jdt.bundle.datalists",
    "monai_jdt.bundle.datasets",
    "monai_jdt.bundle.demo",
    "monai_jdt.bundle.label_modes",
    "monai_jdt.bundle.losses",
    "monai_jdt.bundle.paths",
    "monai_jdt.bundle.report",
    "monai_jdt.bundle.trainers",
    "monai_jdt.bundle.transforms",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
