"""CT-like (Hounsfield units) and MR-like intensity models for the synthetic images.

Arrays are indexed ``(x, y[, z])`` with ``x`` towards the patient's left and ``y`` towards posterior (DICOM/LPS
storage order, see :func:`lps_affine`); shapes are placed in mm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from monai_jdt.data.synthetic._fields import grid_mm, smooth_field

__all__ = ["AIR_HU", "FAT_HU", "SOFT_TISSUE_HU", "ct_body", "ct_finish", "fov_mm", "mr_finish"]

AIR_HU = -1000.0
FAT_HU = -100.0
SOFT_TISSUE_HU = 40.0
BONE_HU = 600.0


def fov_mm(shape: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """Field of view (mm) along each axis."""
    return np.asarray(shape, dtype=np.float64) * np.asarray(spacing, dtype=np.float64)


def ct_body(shape: Sequence[int], spacing: Sequence[float], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Axial body cross-section in HU before organs and noise, and the body mask.

    Air (-1000 HU) outside an elliptic body whose radii drift slowly along ``z``; a subcutaneous fat layer
    (-100 HU); soft tissue (40 HU) inside; a vertebra (600 HU) near the posterior wall.
    """
    fov = fov_mm(shape, spacing)
    coords = grid_mm(shape, spacing)
    x, y = coords[0] - fov[0] / 2, coords[1] - fov[1] / 2
    rx, ry = fov[0] * rng.uniform(0.43, 0.47), fov[1] * rng.uniform(0.36, 0.40)
    if len(shape) == 3:
        z = coords[2] / max(fov[2], 1e-6)
        drift = 1.0 + 0.04 * np.sin(2 * np.pi * (z + rng.uniform()))
        rx, ry = rx * drift, ry * drift
    rho = np.sqrt((x / rx) ** 2 + (y / ry) ** 2)
    hu = np.full(rho.shape, AIR_HU, dtype=np.float32)
    hu[rho < 1.0] = FAT_HU
    hu[rho < 0.9] = SOFT_TISSUE_HU
    spine = np.sqrt((x / (0.09 * fov[0])) ** 2 + ((y - 0.6 * ry) / (0.09 * fov[1])) ** 2) < 1.0
    hu[spine & (rho < 0.9)] = BONE_HU
    return np.broadcast_to(hu, tuple(shape)).copy(), np.broadcast_to(rho < 1.0, tuple(shape)).copy()


def ct_finish(hu: np.ndarray, spacing: Sequence[float], rng: np.random.Generator, noise_hu: float = 12.0) -> np.ndarray:
    """Partial-volume blur (0.6 voxel in-plane), tissue texture and Gaussian noise; clipped to [-1024, 3071]."""
    sigma = [0.6, 0.6] + [0.3] * (hu.ndim - 2)
    out = ndimage.gaussian_filter(hu.astype(np.float32), sigma)
    texture = smooth_field(hu.shape, [3.0] * hu.ndim, rng) * 4.0
    out = out + texture * (out > -500) + rng.normal(0.0, noise_hu, size=hu.shape).astype(np.float32)
    return np.clip(out, -1024, 3071).astype(np.float32)


def mr_finish(signal: np.ndarray, rng: np.random.Generator, noise: float = 0.04) -> np.ndarray:
    """Smooth multiplicative bias field (+-15 %), slight blur and Rician noise (``noise`` times the max signal)."""
    bias = 1.0 + 0.15 * smooth_field(signal.shape, [s / 2 for s in signal.shape], rng)
    out = ndimage.gaussian_filter(signal.astype(np.float32), 0.6) * bias
    sd = noise * float(np.max(signal))
    real = out + rng.normal(0.0, sd, size=out.shape)
    imag = rng.normal(0.0, sd, size=out.shape)
    return np.sqrt(real**2 + imag**2).astype(np.float32)
