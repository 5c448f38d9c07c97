"""Ramp-up schedules against their closed forms."""

from __future__ import annotations

import math

import pytest

from monai_jdt.engines import linear_rampup, sigmoid_rampup


@pytest.mark.parametrize("current", [0.0, 0.5, 1.0, 2.5, 3.99, 4.0, 10.0])
def test_sigmoid_rampup_closed_form(current: float) -> None:
    length = 4.0
    t = min(current, length) / length
    assert sigmoid_rampup(current, length) == pytest.approx(math.exp(-5.0 * (1.0 - t) ** 2), rel=1e-12)


def test_sigmoid_rampup_endpoints_and_monotone() -> None:
    assert sigmoid_rampup(0.0, 5.0) == pytest.approx(math.exp(-5.0))
    assert sigmoid_rampup(5.0, 5.0) == 1.0 and sigmoid_rampup(0.0, 0.0) == 1.0 and sigmoid_rampup(3.0, 0.0) == 1.0
    values = [sigmoid_rampup(0.1 * i, 5.0) for i in range(60)]
    assert all(a < b for a, b in zip(values[:50], values[1:51])) and values[50:] == [1.0] * 10


def test_linear_rampup() -> None:
    assert [linear_rampup(x, 4.0) for x in (0.0, 1.0, 2.0, 4.0, 6.0)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert linear_rampup(0.0, 0.0) == 1.0


@pytest.mark.parametrize("ramp", [sigmoid_rampup, linear_rampup])
def test_errors(ramp) -> None:
    with pytest.raises(ValueError, match="current must be >= 0, got -1"):
        ramp(-1.0, 5.0)
    with pytest.raises(ValueError, match="rampup_length must be >= 0, got -2"):
        ramp(1.0, -2.0)
    with pytest.raises(ValueError, match="rampup_length must be finite"):
        ramp(1.0, float("inf"))
    with pytest.raises(TypeError, match="current must be a real number, got str"):
        ramp("1", 5.0)
