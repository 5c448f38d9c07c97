"""Argument checks that raise ``ValueError``/``TypeError`` with messages of the form "X must be Y, got Z"."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from monai.utils import look_up_option

__all__ = [
    "check_bool",
    "check_in_range",
    "check_non_negative",
    "check_option",
    "check_positive_int",
    "check_real",
    "check_weights_mapping",
]


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a finite float, or raise ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import torch

            if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype.is_complex:
                value = value.item()
            else:
                raise TypeError
        except TypeError:
            raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}") from None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_in_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Check that ``value`` is a real number inside the interval and return it as a float.

    Example:
        >>> check_in_range("epsilon", 0.2, 0, 1, high_inclusive=False)
        0.2
        >>> check_in_range("epsilon", 1.2, 0, 1, high_inclusive=False)
        Traceback (most recent call last):
        ...
        ValueError: epsilon must be in [0, 1), got 1.2
    """
    value = check_real(name, value)
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        left = "(-inf" if low is None else ("[" if low_inclusive else "(") + f"{low:g}"
        right = "inf)" if high is None else f"{high:g}" + ("]" if high_inclusive else ")")
        raise ValueError(f"{name} must be in {left}, {right}, got {value:g}")
    return value


def check_non_negative(name: str, value: Any) -> float:
    """Check ``value >= 0`` and return it as a float."""
    value = check_real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value:g}")
    return value


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Check that ``value`` is an integer ``>= minimum`` and return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Check that ``value`` is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


def check_option(name: str, value: Any, supported: Collection[str]) -> str:
    """Look ``value`` up in ``supported`` with :func:`monai.utils.look_up_option`, naming the argument on failure.

    Example:
        >>> check_option("reduction", "mean", ("mean", "sum", "none"))
        'mean'
        >>> check_option("reduction", "max", ("mean", "sum", "none"))
        Traceback (most recent call last):
        ...
        ValueError: reduction must be one of 'mean', 'sum', 'none', got 'max'
    """
    options = ", ".join(repr(s) for s in supported)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {options}, got {type(value).__name__} {value!r}")
    try:
        return str(look_up_option(value, supported, print_all_options=False))
    except ValueError:
        raise ValueError(f"{name} must be one of {options}, got {value!r}") from None


def check_weights_mapping(name: str, value: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, float]:
    """Check a mapping of non-negative weights over a fixed set of keys; at least one weight must be > 0."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of {list(allowed)} to weights, got {type(value).__name__}")
    out: dict[str, float] = {}
    for key, weight in value.items():
        if key not in allowed:
            raise ValueError(f"{name} keys must be in {list(allowed)}, got {key!r}")
        w = check_real(f"{name}[{key!r}]", weight)
        if w < 0:
            raise ValueError(f"{name}[{key!r}] must be >= 0, got {w:g}")
        out[str(key)] = w
    if not out or sum(out.values()) <= 0:
        raise ValueError(f"{name} must hold at least one positive weight, got {dict(value)}")
    return out
