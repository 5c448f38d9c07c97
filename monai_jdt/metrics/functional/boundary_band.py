"""The boundary band of the reference, for the boundary expected calibration error (BECE).

The band is the set of voxels whose box window holds a different reference label, computed by
:func:`monai_jdt.transforms.functional.boundary.boundary_mask` (the boundary code of the transforms): with
``kernel_size = 2w + 1`` (voxels) or ``radius_mm`` and the voxel spacing, it is every voxel within ``w`` voxels
(or ``radius_mm`` mm, per axis) of a label change, on both sides of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch

from monai_jdt.metrics.functional.inputs import as_prediction, resolve_target
from monai_jdt.transforms.functional.boundary import boundary_mask

__all__ = ["reference_band", "resolve_band"]

_IGNORED = -1


def reference_band(
    probs: torch.Tensor,
    target: torch.Tensor,
    *,
    kernel_size: int | Sequence[int] | None = None,
    radius_mm: float | Sequence[float] | None = None,
    spacing: Any = None,
    ignore_index: int | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(B, *spatial)`` bool band around the boundary of the reference labels of ``target``.

    The reference labels are the index map, the argmax of a one-hot/soft target (``C > 1``) or ``y >= 0.5`` for a
    single foreground channel. Excluded voxels (``ignore_index``, ``mask``) are never in the band and never count
    as a different neighbour.

    Args:
        probs: ``(B, C, *spatial)`` prediction (only its shape is used, to read ``target``).
        target: index map or one-hot/soft target, as for the calibration metrics.
        kernel_size: odd window size in voxels (one value or one per axis).
        radius_mm: half-size of the window in mm (needs ``spacing``); takes precedence over ``kernel_size``.
        spacing: voxel size in mm, ``(S,)`` or ``(B, S)``.
        ignore_index: label of voxels to exclude.
        mask: optional bool voxel mask, ``True`` where a voxel counts.

    Raises:
        ValueError: neither ``kernel_size`` nor ``radius_mm``, or bad values (see ``boundary_mask``).
    """
    if kernel_size is None and radius_mm is None:
        raise ValueError("a boundary band needs boundary_kernel_size (voxels) or boundary_radius_mm (mm), got neither")
    probs = as_prediction(probs, "probs")
    seg = resolve_target(probs, target, ignore_index=ignore_index, mask=mask)
    if seg.index is not None:
        labels = seg.index
    else:
        dense = cast(torch.Tensor, seg.dense)
        labels = (dense[:, 0] >= 0.5).long() if probs.shape[1] == 1 else dense.argmax(dim=1)
    if seg.mask is not None:
        labels = torch.where(seg.mask, labels, torch.full_like(labels, _IGNORED))
    return boundary_mask(
        labels,
        kernel_size=3 if kernel_size is None else kernel_size,
        radius_mm=radius_mm,
        spacing=spacing if radius_mm is not None else None,
        ignore_index=_IGNORED if seg.mask is not None else None,
        spatial_dims=probs.ndim - 2,
    )


def resolve_band(
    probs: torch.Tensor,
    target: torch.Tensor,
    *,
    band: torch.Tensor | None = None,
    kernel_size: int | Sequence[int] | None = None,
    radius_mm: float | Sequence[float] | None = None,
    spacing: Any = None,
    ignore_index: int | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """The band to use: ``band`` as given, one computed by :func:`reference_band`, or ``None`` (no BECE).

    Raises:
        ValueError: both an explicit ``band`` and band widths, or ``spacing`` without ``radius_mm``.
    """
    if band is not None and (kernel_size is not None or radius_mm is not None):
        raise ValueError("pass either band or boundary_kernel_size/boundary_radius_mm, not both")
    if spacing is not None and radius_mm is None:
        raise ValueError("spacing is only used with boundary_radius_mm; pass boundary_radius_mm or leave spacing=None")
    if band is not None or (kernel_size is None and radius_mm is None):
        return band
    return reference_band(
        probs,
        target,
        kernel_size=kernel_size,
        radius_mm=radius_mm,
        spacing=spacing,
        ignore_index=ignore_index,
        mask=mask,
    )
