"""Run a module's docstring examples from a test: every example must pass, and there must be some."""

from __future__ import annotations

import doctest
import importlib

import pytest

__all__ = ["DEFAULT_OPTIONFLAGS", "run_doctests"]

DEFAULT_OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_doctests(
    module_name: str, optionflags: int = DEFAULT_OPTIONFLAGS, min_examples: int = 1
) -> doctest.TestResults:
    """Import ``module_name`` and run its docstring examples the way ``doctest.testmod`` does.

    Fails the calling test when an example fails (the doctest report is in the failure message) or when the
    module has fewer than ``min_examples`` examples (a module listed for doctesting that lost its examples).
    Returns the ``(failed, attempted)`` counts.
    """
    module = importlib.import_module(module_name)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=optionflags)
    for test in doctest.DocTestFinder().find(module, module_name):
        runner.run(test, out=report.append)
    result = doctest.TestResults(runner.failures, runner.tries)
    if result.failed:
        pytest.fail(
            f"{module_name}: {result.failed} of {result.attempted} docstring examples failed\n" + "".join(report)
        )
    if result.attempted < min_examples:
        pytest.fail(f"{module_name} has {result.attempted} docstring examples, expected at least {min_examples}")
    return result
