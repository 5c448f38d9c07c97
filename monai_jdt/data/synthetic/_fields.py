"""Random smooth fields, organ-like blobs, signed distances and disagreeing rater masks (numpy/scipy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "blob",
    "grid_mm",
    "rater_masks",
    "signed_distance",
    "smooth_field",
]


def smooth_field(shape: Sequence[int], correlation: float | Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance random field whose features are about ``correlation`` voxels wide (per axis).

    Gaussian noise on a coarse grid (one node per ``correlation`` voxels, two extra nodes past each end) is
    interpolated with a Gaussian kernel of that width, one axis at a time, so the cost is about linear in the
    number of voxels whatever the correlation length.
    """
    shape = tuple(int(s) for s in shape)
    corr = np.maximum(np.broadcast_to(np.asarray(correlation, dtype=np.float64), (len(shape),)), 0.5)
    coarse = tuple(int(np.ceil(s / c)) + 5 for s, c in zip(shape, corr))
    field = rng.standard_normal(coarse)
    for s, c, n in zip(shape, corr, coarse):
        nodes = (np.arange(n) - 2.0) * c
        weights = np.exp(-0.5 * ((np.arange(s)[:, None] - nodes[None, :]) / c) ** 2)
        field = np.tensordot(field, weights, axes=([0], [1]))  # contracts the first axis, appends the new one
    field = field - field.mean()
    std = field.std()
    return (field / std if std > 0 else field).astype(np.float32)


def grid_mm(shape: Sequence[int], spacing: Sequence[float]) -> list[np.ndarray]:
    """Voxel-centre coordinates in mm along each axis, as broadcastable open grids."""
    return [g * float(s) for g, s in zip(np.ogrid[tuple(slice(0, n) for n in shape)], spacing)]


def blob(
    shape: Sequence[int],
    spacing: Sequence[float],
    center_mm: Sequence[float],
    radii_mm: Sequence[float],
    rng: np.random.Generator,
    *,
    irregularity: float = 0.08,
) -> np.ndarray:
    """An organ-like smooth shape: an ellipsoid whose normalised radius is modulated by a smooth random field.

    A voxel ``x`` is inside when ``rho(x) * (1 + irregularity * f(x)) < 1`` with ``rho`` the ellipsoid's normalised
    radius and ``f`` a unit-variance field with features about 0.8 times the smallest radius wide.
    """
    coords = grid_mm(shape, spacing)
    rho = np.sqrt(sum(((c - c0) / r) ** 2 for c, c0, r in zip(coords, center_mm, radii_mm)))
    corr_vox = [0.8 * min(radii_mm) / float(s) for s in spacing]
    field = smooth_field(shape, corr_vox, rng)
    return rho * (1.0 + irregularity * field) < 1.0


def signed_distance(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Signed Euclidean distance in mm to the boundary of ``mask``: negative inside, positive outside."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    return (outside - inside + np.where(mask, 0.5, -0.5) * min(spacing)).astype(np.float32)


def rater_masks(
    sdf: np.ndarray,
    spacing: Sequence[float],
    num_raters: int,
    rng: np.random.Generator,
    *,
    amplitude_mm: float,
    correlation_mm: float,
    bias_sd_mm: float,
    sloppy: int | None = None,
    sloppy_scale: float = 2.0,
) -> list[np.ndarray]:
    """Binary masks of raters who each move the true surface (``sdf == 0``) by a smooth random displacement.

    Rater ``r`` segments ``sdf < b_r + a_r * f_r`` with a constant bias ``b_r ~ N(0, bias_sd_mm)`` (a rater who
    draws generally wider or tighter) and ``f_r`` a unit-variance smooth field (features ``correlation_mm`` wide)
    scaled by ``a_r = amplitude_mm``. So raters disagree only where ``|sdf|`` is small, that is near the boundary.
    The ``sloppy`` rater (an index, or ``None``) has ``sloppy_scale`` times the amplitude, half the correlation
    length and a bias of ``+sloppy_scale * bias_sd_mm`` (a careless rater who over-segments).
    """
    masks = []
    for r in range(num_raters):
        scale = sloppy_scale if r == sloppy else 1.0
        corr = correlation_mm / (2.0 if r == sloppy else 1.0)
        bias = scale * bias_sd_mm if r == sloppy else rng.normal() * bias_sd_mm
        field = smooth_field(sdf.shape, [corr / float(s) for s in spacing], rng)
        masks.append(sdf < bias + amplitude_mm * scale * field)
    return masks
