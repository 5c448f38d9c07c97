"""Size argument handling shared by the synthetic writers."""

from __future__ import annotations

from collections.abc import Sequence

from monai_jdt.utils.checks import check_positive_int

__all__ = ["resolve_size"]

#: smallest side (voxels) for which the shapes and lesions stay recognisable.
MIN_SIDE = 16


def resolve_size(size: int | Sequence[int] | None, spatial_dims: int, default: int) -> tuple[int, ...]:
    """Array shape for ``size``: an int ``n`` gives ``(n, n)`` in 2D and ``(n, n, max(n // 2, 8))`` in 3D.

    Raises:
        ValueError: a side below 16 voxels (8 along ``z`` in 3D), or a sequence of the wrong length.
        TypeError: non-integer sizes (or a size that is neither an int nor a list/tuple of ints).
    """
    if size is None:
        size = default
    if not isinstance(size, (list, tuple)):
        n = check_positive_int("size", size)
        shape = (n, n) if spatial_dims == 2 else (n, n, max(n // 2, 8))
    else:
        shape = tuple(check_positive_int("size", s) for s in size)
        if len(shape) != spatial_dims:
            raise ValueError(f"size must hold {spatial_dims} values for {spatial_dims}D data, got {list(size)}")
    minimum = (MIN_SIDE,) * 2 + (8,) * (spatial_dims - 2)
    if any(s < m for s, m in zip(shape, minimum)):
        raise ValueError(f"size must be at least {list(minimum)} voxels, got {list(shape)}")
    return shape
