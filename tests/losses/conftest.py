"""Fixtures shared by the loss tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def two_threads():
    """Two torch intra-op threads for the test (the fused CPU kernel then uses two workers), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _select_kernel(name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    from monai_jdt.losses.functional import _native

    monkeypatch.setenv(_native.ENV_VAR, "1" if name == "native" else "0")
    monkeypatch.setattr(_native, "_PARALLEL_MIN", 1)
    if name == "native" and _native.library() is None:
        pytest.skip("the native kernel cannot be built here (test_native_build says why)")
    return name


@pytest.fixture(params=["native", "torch"])
def kernel(request, monkeypatch):
    """Run the test with the fused loss on the native CPU kernel and on torch operations (``MONAI_JDT_NATIVE``).

    The native kernel is also made to split even small volumes over its threads.
    """
    return _select_kernel(request.param, monkeypatch)


@pytest.fixture
def native_kernel(monkeypatch):
    """The native CPU kernel only (the test is skipped where it cannot be built), splitting small volumes too."""
    return _select_kernel("native", monkeypatch)
