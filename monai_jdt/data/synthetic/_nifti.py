"""Affines and deterministic NIfTI writing for the synthetic data sets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["lps_affine", "nifti_name", "save_nifti"]


def lps_affine(
    spacing: Sequence[float], origin_mm: Sequence[float], permutation: Sequence[int] | None = None
) -> np.ndarray:
    """RAS affine of an array stored like a DICOM series: axes 0/1 grow to the patient's left/posterior.

    That gives ``diag(-sx, -sy, sz)`` (a non-identity orientation, as in most CT NIfTI files converted from
    DICOM) with the given origin. ``permutation`` reorders the array axes (``(2, 1, 0)`` stores slices first,
    as KiTS does): column ``i`` of the result is column ``permutation[i]`` of the unpermuted affine.
    For 2D data pass two spacings plus the slice thickness.
    """
    spacing = [float(s) for s in spacing]
    if len(spacing) == 2:
        spacing.append(1.0)
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-spacing[0], -spacing[1], spacing[2]])
    affine[:3, 3] = [float(o) for o in origin_mm]
    if permutation is not None:
        affine[:3, :3] = affine[:3, list(permutation)]
    return affine


def nifti_name(stem: str, compress: bool) -> str:
    """``stem.nii.gz`` or ``stem.nii``."""
    return f"{stem}.nii.gz" if compress else f"{stem}.nii"


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray, dtype: type | np.dtype) -> Path:
    """Write ``array`` as ``dtype`` with ``affine`` in both the qform and the sform, units mm.

    nibabel writes gzip files with a zero modification time, so the same data gives the same bytes.
    """
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(array).astype(dtype, copy=False), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path
