"""Run the docstring examples of the nnU-Net modules that do not need nnU-Net (they are documentation)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["monai_jdt.nnunet.loss", "monai_jdt.nnunet.export"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
