"""Exception types shared by the package."""

from __future__ import annotations

__all__ = ["ShapeError"]


class ShapeError(ValueError, AssertionError):
    """A tensor has a shape that does not fit the others.

    It derives from both :class:`ValueError` (what this package promises for bad input) and
    :class:`AssertionError` (what MONAI's losses raise on a shape mismatch), so code written for MONAI
    that catches ``AssertionError`` keeps working.
    """
