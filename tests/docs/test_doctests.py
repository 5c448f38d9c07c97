"""Run the docstring examples of every monai_jdt module that has any (they are part of the documentation).

The modules are found by reading the sources (a ``>>>`` prompt), so a new module's examples are tested without
being listed anywhere; each one found must run at least one example, and every example must pass.
"""

from __future__ import annotations

import doctest
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import monai_jdt
from tests._support.doctests import run_doctests


def _modules_with_examples() -> list[str]:
    found = []
    for info in pkgutil.walk_packages(monai_jdt.__path__, "monai_jdt."):
        spec = importlib.util.find_spec(info.name)
        if spec is not None and spec.origin and ">>>" in Path(spec.origin).read_text(encoding="utf-8"):
            found.append(info.name)
    return sorted(found)


MODULES = _modules_with_examples()


def test_the_walk_finds_the_documented_subpackages() -> None:
    packages = {name.split(".")[1] for name in MODULES}
    assert {"losses", "transforms", "metrics", "data", "engines", "handlers", "bundle", "nnunet", "utils"} <= packages


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    run_doctests(name, optionflags=doctest.ELLIPSIS)
