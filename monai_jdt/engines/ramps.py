r"""Ramp-up schedules for the weight of a consistency (unsupervised) loss.

The sigmoid-shaped ramp of Laine & Aila (Temporal Ensembling, arXiv 1610.02242) and Tarvainen & Valpola (Mean
Teacher, arXiv 1703.01780):

.. math::

    r(t) = \exp\left(-5 \left(1 - \min(t / L, 1)\right)^2\right), \qquad w(t) = w_{max} \, r(t)

for the training progress ``t >= 0`` (in epochs, fractional within an epoch) and the ramp length ``L``. It
starts at ``exp(-5) ~ 0.0067`` at ``t = 0`` and reaches exactly 1 at ``t = L``; ``L = 0`` means no ramp (1 from the
start).
"""

from __future__ import annotations

import math

from monai_jdt.utils.checks import check_non_negative

__all__ = ["linear_rampup", "sigmoid_rampup"]


def sigmoid_rampup(current: float, rampup_length: float) -> float:
    r"""The sigmoid ramp ``exp(-5 (1 - min(current / rampup_length, 1))^2)`` (arXiv 1610.02242, 1703.01780).

    Args:
        current: progress ``>= 0`` (e.g. epochs done, fractional).
        rampup_length: ``L >= 0``, the progress at which the ramp reaches 1; 0 gives 1 everywhere.

    Returns:
        A float in ``[exp(-5), 1]`` (1 when ``rampup_length == 0``).

    Raises:
        ValueError: a negative or non-finite argument.
        TypeError: an argument that is not a real number.

    Example:
        >>> round(sigmoid_rampup(0.0, 5.0), 6), round(sigmoid_rampup(2.5, 5.0), 6), sigmoid_rampup(7.0, 5.0)
        (0.006738, 0.286505, 1.0)
        >>> sigmoid_rampup(0.0, 0.0)
        1.0
    """
    current = check_non_negative("current", current)
    rampup_length = check_non_negative("rampup_length", rampup_length)
    if rampup_length == 0.0 or current >= rampup_length:
        return 1.0
    phase = 1.0 - current / rampup_length
    return math.exp(-5.0 * phase * phase)


def linear_rampup(current: float, rampup_length: float) -> float:
    """The linear ramp ``min(current / rampup_length, 1)`` (0 at the start; 1 everywhere when the length is 0).

    Args:
        current: progress ``>= 0``.
        rampup_length: ``L >= 0``.

    Raises:
        ValueError: a negative or non-finite argument.
        TypeError: an argument that is not a real number.

    Example:
        >>> linear_rampup(1.0, 4.0), linear_rampup(9.0, 4.0), linear_rampup(3.0, 0.0)
        (0.25, 1.0, 1.0)
    """
    current = check_non_negative("current", current)
    rampup_length = check_non_negative("rampup_length", rampup_length)
    if rampup_length == 0.0:
        return 1.0
    return min(current / rampup_length, 1.0)
