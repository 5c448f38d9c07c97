"""Synthetic LiTS: abdominal CT volumes in HU with liver and liver-tumour labels, in the LiTS file layout."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monai_jdt.data._progress import progress
from monai_jdt.data.synthetic._abdomen import KIDNEY_HU, LESION_HU, LIVER_HU, ct_spacing, kidneys, lesions_inside, liver
from monai_jdt.data.synthetic._anatomy import ct_body, ct_finish, fov_mm
from monai_jdt.data.synthetic._nifti import lps_affine, nifti_name, save_nifti
from monai_jdt.data.synthetic._sizes import resolve_size
from monai_jdt.utils.checks import check_bool, check_positive_int

__all__ = ["LITS_BATCH_FOLDERS", "write_synthetic_lits"]

#: the training batch folders of the LiTS download (cases 0-27 and 28-130).
LITS_BATCH_FOLDERS = ("Training Batch 1", "Training Batch 2")


def _case(shape: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(HU volume, label 0/1/2, affine) of one case; shapes are placed in ``(x, y, z)`` order."""
    spacing = ct_spacing(rng)
    hu, body = ct_body(shape, spacing, rng)
    organ = liver(shape, spacing, body, rng)
    fov = fov_mm(shape, spacing)
    tumours = lesions_inside(organ, spacing, int(rng.integers(1, 4)), (0.05 * fov[0], 0.09 * fov[0]), rng)
    for k in kidneys(shape, spacing, body, rng)["kidney"]:  # unlabelled neighbours, as in real scans
        hu[k & ~organ] = KIDNEY_HU
    label = organ.astype(np.uint8)
    hu[organ] = LIVER_HU
    for t in tumours:
        label[t & organ] = 2
        hu[t & organ] = LESION_HU
    affine = lps_affine(spacing, (fov[0] / 2, fov[1] / 2, -rng.uniform(300, 500)))
    return ct_finish(hu, spacing, rng), label, affine


def write_synthetic_lits(
    out: str | os.PathLike,
    *,
    cases: int = 6,
    size: int | Sequence[int] | None = None,
    seed: int = 0,
    test_cases: int = 1,
    batch_folders: bool = True,
    compress: bool = False,
    progress_bar: bool | None = None,
) -> Path:
    """Write synthetic LiTS cases in the LiTS layout and return ``out``.

    Layout: ``out/Training Batch 1/{volume,segmentation}-N.nii`` for the first fifth of the cases and
    ``out/Training Batch 2/...`` for the rest (``batch_folders=False``: all in ``out``), plus unlabelled
    ``out/test-volume-N.nii``. ``N`` counts from 0. Uncompressed ``.nii`` by default, as distributed.

    Each volume is ``(x, y, z)`` = ``size`` voxels (default ``64 x 64 x 32``) of 0.8 x 0.8 mm with a slice
    thickness drawn from 2.5-5 mm, stored like a DICOM-derived NIfTI (affine ``diag(-0.8, -0.8, z)``, non-zero
    origin), int16 HU: air -1000 around an elliptic body with a fat layer (-100), soft tissue 40 with texture
    and noise (SD 12), a vertebra, kidneys (150, unlabelled), the liver (60, label 1) and 1-3 hypodense tumours
    (20, label 2). Labels are uint8 with the image's affine.

    Every case draws from ``numpy.random.default_rng((seed, 0 or 1, N))``, so a case does not depend on ``cases``
    and the same seed writes the same bytes.

    Args:
        out: output folder (created).
        cases: labelled training cases.
        size: ``n`` for ``(n, n, n // 2)`` or an ``(x, y, z)`` triple; default ``(64, 64, 32)``.
        seed: random seed.
        test_cases: unlabelled ``test-volume-N`` files.
        batch_folders: split the training cases into the two ``Training Batch`` folders.
        compress: write ``.nii.gz`` instead of ``.nii``.
        progress_bar: show a progress bar (default: only on a terminal).

    Raises:
        ValueError: bad sizes or counts.

    Example:
        >>> import tempfile
        >>> root = write_synthetic_lits(tempfile.mkdtemp(), cases=2, size=32, test_cases=0)
        >>> sorted(p.name for p in (root / "Training Batch 1").iterdir())
        ['segmentation-0.nii', 'volume-0.nii']
    """
    cases = check_positive_int("cases", cases)
    test_cases = check_positive_int("test_cases", test_cases, minimum=0)
    seed = check_positive_int("seed", seed, minimum=0)
    batch_folders, compress = check_bool("batch_folders", batch_folders), check_bool("compress", compress)
    shape = resolve_size(size, 3, default=64)
    out = Path(out)
    first_batch = max(1, round(cases * 28 / 131))
    jobs = [(False, i) for i in range(cases)] + [(True, i) for i in range(test_cases)]
    for is_test, i in progress(jobs, total=len(jobs), desc="LiTS", enabled=progress_bar):
        image, label, affine = _case(shape, np.random.default_rng((seed, int(is_test), i)))
        if is_test:
            save_nifti(out / nifti_name(f"test-volume-{i}", compress), np.round(image), affine, np.int16)
            continue
        folder = out / LITS_BATCH_FOLDERS[0 if i < first_batch else 1] if batch_folders else out
        save_nifti(folder / nifti_name(f"volume-{i}", compress), np.round(image), affine, np.int16)
        save_nifti(folder / nifti_name(f"segmentation-{i}", compress), label, affine, np.uint8)
    return out
