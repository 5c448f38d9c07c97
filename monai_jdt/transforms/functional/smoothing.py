"""Label smoothing of segmentation labels: boundary label smoothing (BLS) and vanilla uniform label smoothing.

Boundary label smoothing (Wang et al., *Dice Semimetric Losses*, arXiv 2303.16296; *Jaccard Metric Losses*,
arXiv 2302.05666) softens the one-hot label only where the label is uncertain, at the boundary between
classes::

    y = (1 - epsilon) * onehot + epsilon / C    at boundary voxels (see :func:`boundary_mask`)
    y = onehot                                  elsewhere
    y = 0 (all-zero vector)                     at ignored voxels

so every non-ignored voxel's vector sums to 1. Vanilla label smoothing (Szegedy et al., arXiv 1512.00567) applies
the first line at every non-ignored voxel.

One-hot/soft ``(B, C, *spatial)`` input: the boundary is found on the hard label ``argmax_c y_c`` (lowest class
index on ties), all-zero vectors are ignored voxels, and an already-soft vector ``y`` becomes
``(1 - epsilon) * y + epsilon / C`` at boundary voxels (it stays a probability vector) and is kept elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch

from monai_jdt.transforms.functional._labels import ParsedLabels, parse_labels
from monai_jdt.transforms.functional.boundary import boundary_mask, meta_spacing
from monai_jdt.utils.checks import check_in_range

__all__ = ["boundary_label_smoothing", "label_smoothing"]


def _check_dtype(dtype: torch.dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    return dtype


def _smooth_index(parsed: ParsedLabels, epsilon: float, where: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """One-hot of an index map, smoothed where ``where`` is True (everywhere when ``where`` is None)."""
    index = cast(torch.Tensor, parsed.index)  # an index map by construction of ParsedLabels
    c = parsed.num_classes
    high, low = 1.0 - epsilon + epsilon / c, epsilon / c
    out = torch.empty((index.shape[0], c, *index.shape[1:]), dtype=dtype, device=index.device)
    if where is None:
        out.fill_(low)
        for k in range(c):
            out[:, k].masked_fill_(index == k, high)
    else:
        on = torch.ones(where.shape, dtype=dtype, device=index.device).masked_fill_(where, high)
        off = torch.zeros(where.shape, dtype=dtype, device=index.device).masked_fill_(where, low)
        for k in range(c):
            torch.where(index == k, on, off, out=out[:, k])
    if parsed.valid is not None:
        out.masked_fill_(~parsed.valid.unsqueeze(1), 0.0)
    return out


def _smooth_dense(parsed: ParsedLabels, epsilon: float, where: torch.Tensor | None) -> torch.Tensor:
    dense = cast(torch.Tensor, parsed.dense)
    smoothed = dense * (1.0 - epsilon) + epsilon / parsed.num_classes
    if where is None:
        where = parsed.valid
        if where is None:
            return smoothed
    return torch.where(where.unsqueeze(1), smoothed, dense)


def boundary_label_smoothing(
    labels: torch.Tensor,
    num_classes: int,
    epsilon: float = 0.5,
    kernel_size: int | Sequence[int] = 3,
    radius_mm: float | Sequence[float] | None = None,
    spacing: Any = None,
    ignore_index: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Boundary label smoothing of a batch of 2D/3D labels (formula in the module docstring).

    Runs on the labels' device (CPU or GPU, inside a training step); no one-hot is built to find the boundary.

    Args:
        labels: ``(B, 1, *spatial)`` index map (integer, bool or integer-valued float) or ``(B, C, *spatial)``
            one-hot/soft labels, 2 or 3 spatial dims.
        num_classes: ``C >= 2``.
        epsilon: smoothing strength in ``[0, 1]`` (papers: 0.5).
        kernel_size: odd boundary window in voxels, one int or one per axis (papers: 3). Ignored with ``radius_mm``.
        radius_mm: boundary window half-size in mm (one value or per axis): half-width ``floor(radius_mm /
            spacing)`` per axis, see :func:`boundary_mask`.
        spacing: voxel size in mm, ``(S,)`` or ``(B, S)``, used with ``radius_mm``. Default: from the affine
            when ``labels`` is a MetaTensor (a collated MONAI batch), else required with ``radius_mm``.
        ignore_index: label of ignored voxels of an index map (all-zero output vectors, never boundary, never a
            different neighbour). One-hot/soft labels mark ignored voxels with all-zero vectors instead.
        dtype: floating dtype of the output.

    Returns:
        ``(B, C, *spatial)`` soft labels of ``dtype``; each non-ignored voxel's vector sums to 1.

    Raises:
        TypeError, ShapeError, ValueError: see :func:`parse_labels` and :func:`boundary_mask`; ``epsilon``
            outside ``[0, 1]``.

    Example:
        >>> lab = torch.tensor([[[[0, 0, 1, 1]]]])  # (B=1, 1, H=1, W=4)
        >>> boundary_label_smoothing(lab, num_classes=2, epsilon=0.5)[0, :, 0]
        tensor([[1.0000, 0.7500, 0.2500, 0.0000],
                [0.0000, 0.2500, 0.7500, 1.0000]])
    """
    epsilon = check_in_range("epsilon", epsilon, 0.0, 1.0)
    dtype = _check_dtype(dtype)
    parsed = parse_labels(labels, num_classes, ignore_index, dtype)
    if radius_mm is not None and spacing is None:
        spacing = meta_spacing(labels, labels.ndim - 2)
    hard, sentinel = parsed.hard()
    where = boundary_mask(hard, kernel_size, radius_mm, spacing, sentinel, spatial_dims=labels.ndim - 2)
    if parsed.index is not None:
        return _smooth_index(parsed, epsilon, where, dtype)
    return _smooth_dense(parsed, epsilon, where)


def label_smoothing(
    labels: torch.Tensor,
    num_classes: int,
    epsilon: float = 0.1,
    ignore_index: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform label smoothing ``(1 - epsilon) * y + epsilon / C`` at every non-ignored voxel.

    The soft target of the CE-LS baselines (Szegedy et al., arXiv 1512.00567), as a target for any soft-label
    loss. Same input forms as :func:`boundary_label_smoothing`.

    Args:
        labels: ``(B, 1, *spatial)`` index map or ``(B, C, *spatial)`` one-hot/soft labels.
        num_classes: ``C >= 2``.
        epsilon: smoothing strength in ``[0, 1]`` (default 0.1).
        ignore_index: label of ignored voxels of an index map (all-zero output vectors).
        dtype: floating dtype of the output.

    Returns:
        ``(B, C, *spatial)`` soft labels of ``dtype``.

    Raises:
        TypeError, ShapeError, ValueError: see :func:`parse_labels`; ``epsilon`` outside ``[0, 1]``.

    Example:
        >>> label_smoothing(torch.tensor([[[[0, 2]]]]), num_classes=3, epsilon=0.3)[0, :, 0]
        tensor([[0.8000, 0.1000],
                [0.1000, 0.1000],
                [0.1000, 0.8000]])
    """
    epsilon = check_in_range("epsilon", epsilon, 0.0, 1.0)
    dtype = _check_dtype(dtype)
    parsed = parse_labels(labels, num_classes, ignore_index, dtype)
    if parsed.index is not None:
        return _smooth_index(parsed, epsilon, None, dtype)
    return _smooth_dense(parsed, epsilon, None)
