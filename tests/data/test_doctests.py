"""Run the ``Example:`` sections of the data modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "monai_jdt.data._files",
    "monai_jdt.data.datalist_io",
    "monai_jdt.data.folds",
    "monai_jdt.data.kits",
    "monai_jdt.data.kits_annotators",
    "monai_jdt.data.lits",
    "monai_jdt.data.qubiq",
    "monai_jdt.data.synthetic.kits",
    "monai_jdt.data.synthetic.lits",
    "monai_jdt.data.synthetic.qubiq",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
