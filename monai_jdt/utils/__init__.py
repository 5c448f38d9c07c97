"""Shared helpers: error types and argument checks."""

from __future__ import annotations

from monai_jdt.utils.checks import (
    check_bool,
    check_in_range,
    check_non_negative,
    check_option,
    check_positive_int,
    check_real,
    check_weights_mapping,
)
from monai_jdt.utils.errors import ShapeError

__all__ = [
    "ShapeError",
    "check_bool",
    "check_in_range",
    "check_non_negative",
    "check_option",
    "check_positive_int",
    "check_real",
    "check_weights_mapping",
]
