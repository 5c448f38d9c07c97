"""Abdominal organs for the synthetic CT cases: liver with lesions, kidneys with a tumour and a cyst."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monai_jdt.data.synthetic._anatomy import fov_mm
from monai_jdt.data.synthetic._fields import blob, signed_distance

__all__ = ["ct_spacing", "kidneys", "lesions_inside", "liver"]

LIVER_HU = 60.0
LESION_HU = 20.0
KIDNEY_HU = 150.0
KIDNEY_TUMOR_HU = 90.0
CYST_HU = 10.0


def ct_spacing(rng: np.random.Generator, in_plane: float = 0.8) -> tuple[float, float, float]:
    """``(0.8, 0.8, z)`` mm with a slice thickness ``z`` drawn from 2.5, 3.0, ..., 5.0 mm."""
    return (in_plane, in_plane, float(rng.choice(np.arange(2.5, 5.01, 0.5))))


def _jitter(rng: np.random.Generator, center: Sequence[float], fov: np.ndarray, amount: float = 0.03) -> np.ndarray:
    return np.asarray(center) * fov + rng.uniform(-amount, amount, size=3) * fov


def liver(shape: Sequence[int], spacing: Sequence[float], body: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A liver on the patient's right (low ``x``), anterior, spanning most slices."""
    fov = fov_mm(shape, spacing)
    center = _jitter(rng, (0.37, 0.45, 0.55), fov)
    radii = np.array([0.22, 0.2, 0.42]) * fov * rng.uniform(0.9, 1.1, size=3)
    return blob(shape, spacing, center, radii, rng) & body


def lesions_inside(
    organ: np.ndarray, spacing: Sequence[float], count: int, radius_range: tuple[float, float], rng: np.random.Generator
) -> list[np.ndarray]:
    """``count`` roundish lesions centred at least 0.6 radius inside ``organ``; radii in mm (in-plane).

    Each lesion spans at least two slices. A lesion may reach beyond the organ; callers clip it if needed.
    """
    shape = organ.shape
    sdf = signed_distance(organ, spacing)
    out = []
    for _ in range(count):
        radius = max(rng.uniform(*radius_range), 2.5 * min(spacing[:2]))
        candidates = np.argwhere(sdf < -0.6 * radius)
        if len(candidates) == 0:
            candidates = np.argwhere(organ)
        center = candidates[rng.integers(len(candidates))] * np.asarray(spacing)
        radii = np.array([radius, radius, max(radius, 1.0 * spacing[2])])
        out.append(blob(shape, spacing, center, radii, rng, irregularity=0.1))
    return out


def kidneys(
    shape: Sequence[int], spacing: Sequence[float], body: np.ndarray, rng: np.random.Generator
) -> dict[str, list[np.ndarray]]:
    """Two kidneys, a tumour growing out of one of them and, with probability 1/2, a cyst in the other.

    Returns:
        ``{"kidney": [right, left], "tumor": [mask], "cyst": [] or [mask]}``, the true instance masks.
    """
    fov = fov_mm(shape, spacing)
    radii = np.array([0.1, 0.08, 0.28]) * fov
    centers = [_jitter(rng, (0.3, 0.63, 0.45), fov), _jitter(rng, (0.7, 0.63, 0.5), fov)]
    kidney = [blob(shape, spacing, c, radii * rng.uniform(0.9, 1.1, size=3), rng) & body for c in centers]
    side = int(rng.integers(2))
    angle = rng.uniform(0, 2 * np.pi)
    offset = np.array([np.cos(angle) * radii[0], np.sin(angle) * radii[1], rng.uniform(-0.3, 0.3) * radii[2]])
    t_radius = radii[0] * rng.uniform(0.45, 0.7)
    tumor = (
        blob(
            shape,
            spacing,
            centers[side] + 0.8 * offset,
            [t_radius, t_radius, max(t_radius, spacing[2])],
            rng,
            irregularity=0.1,
        )
        & body
    )
    cysts = []
    if rng.uniform() < 0.5:
        cysts = [c & body for c in lesions_inside(kidney[1 - side], spacing, 1, (0.25 * radii[0], 0.4 * radii[0]), rng)]
    return {"kidney": kidney, "tumor": [tumor], "cyst": cysts}
