"""Synthetic KiTS19/21/23: abdominal CT in HU with kidneys, tumours, cysts and per-annotator instance files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monai_jdt.data._progress import progress
from monai_jdt.data.kits import KITS_AGGREGATION_ORDER, KITS_EDITIONS, KITS_LABELS, kits_edition
from monai_jdt.data.synthetic._abdomen import CYST_HU, KIDNEY_HU, KIDNEY_TUMOR_HU, LIVER_HU, ct_spacing, kidneys, liver
from monai_jdt.data.synthetic._anatomy import ct_body, ct_finish, fov_mm
from monai_jdt.data.synthetic._fields import rater_masks, signed_distance
from monai_jdt.data.synthetic._nifti import lps_affine, nifti_name, save_nifti
from monai_jdt.data.synthetic._sizes import resolve_size
from monai_jdt.utils.checks import check_bool, check_positive_int

__all__ = ["write_synthetic_kits"]

_HU = {"kidney": KIDNEY_HU, "tumor": KIDNEY_TUMOR_HU, "cyst": CYST_HU}
_LABEL = {name: value for value, name in KITS_LABELS.items()}


def _annotate(
    truths: dict[str, list[np.ndarray]],
    spacing: Sequence[float],
    body: np.ndarray,
    annotations: int,
    rng: np.random.Generator,
) -> dict[tuple[str, int, int], np.ndarray]:
    """Per-annotation masks of every instance: the true surface moved by each annotator (one is sloppier)."""
    out = {}
    for cls in ("kidney", "tumor", "cyst"):
        for i, truth in enumerate(truths[cls], start=1):
            sdf = signed_distance(truth, spacing)
            masks = rater_masks(
                sdf,
                spacing,
                annotations,
                rng,
                amplitude_mm=0.8 * spacing[0],
                correlation_mm=8 * spacing[0],
                bias_sd_mm=0.4 * spacing[0],
                sloppy=int(rng.integers(annotations)),
                sloppy_scale=2.0,
            )
            for j, mask in enumerate(masks, start=1):
                out[(cls, i, j)] = mask & body
    return out


def _aggregate(
    annotated: dict[tuple[str, int, int], np.ndarray], annotations: int, shape: tuple[int, ...], rule: str
) -> np.ndarray:
    """Label map from the instance annotations: per instance OR / AND / majority, then painted kidney-cyst-tumour."""
    label = np.zeros(shape, dtype=np.uint8)
    for value in KITS_AGGREGATION_ORDER:
        cls = KITS_LABELS[value]
        instances = sorted({i for (c, i, _) in annotated if c == cls})
        for i in instances:
            votes = sum(annotated[(cls, i, j)].astype(np.int32) for j in range(1, annotations + 1))
            need = {"OR": 1, "AND": annotations, "MAJ": annotations // 2 + 1}[rule]
            label[votes >= need] = value
    return label


def _case(
    shape: tuple[int, ...], annotations: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[tuple[str, int, int], np.ndarray], np.ndarray]:
    """(HU volume, instance annotations, affine), arrays in ``(x, y, z)`` order."""
    spacing = ct_spacing(rng)
    hu, body = ct_body(shape, spacing, rng)
    hu[liver(shape, spacing, body, rng)] = LIVER_HU  # unlabelled neighbour
    truths = kidneys(shape, spacing, body, rng)
    annotated = _annotate(truths, spacing, body, annotations, rng)
    for value in KITS_AGGREGATION_ORDER:
        for mask in truths[KITS_LABELS[value]]:
            hu[mask] = _HU[KITS_LABELS[value]]
    fov = fov_mm(shape, spacing)
    affine = lps_affine(spacing, (fov[0] / 2, fov[1] / 2, -rng.uniform(100, 300)), permutation=(2, 1, 0))
    return ct_finish(hu, spacing, rng), annotated, affine


def _slices_first(array: np.ndarray) -> np.ndarray:
    """KiTS stores volumes as ``(slices, rows, columns)``."""
    return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))


def _write_case(
    case_dir: Path,
    edition: str,
    shape: tuple[int, ...],
    annotations: int,
    labelled: bool,
    rng: np.random.Generator,
    compress: bool,
) -> None:
    image, annotated, affine = _case(shape, annotations, rng)
    save_nifti(case_dir / nifti_name("imaging", compress), _slices_first(image), affine, np.float32)
    if not labelled:
        return
    gt_stem, instance_folder, _ = KITS_EDITIONS[edition]
    rules = {gt_stem: "MAJ"} if edition != "kits21" else {f"aggregated_{r}_seg": r for r in ("AND", "MAJ", "OR")}
    for stem, rule in rules.items():
        label = _aggregate(annotated, annotations, shape, rule)
        if edition == "kits19":
            label[label == _LABEL["cyst"]] = _LABEL["kidney"]  # KiTS19 has no cyst label
        save_nifti(case_dir / nifti_name(stem, compress), _slices_first(label), affine, np.uint8)
    if instance_folder is None:
        return
    for (cls, i, j), mask in annotated.items():
        name = nifti_name(f"{cls}_instance-{i}_annotation-{j}", compress)
        save_nifti(case_dir / instance_folder / name, _slices_first(mask), affine, np.uint8)


def write_synthetic_kits(
    out: str | os.PathLike,
    *,
    edition: str | int = "kits23",
    cases: int = 6,
    size: int | Sequence[int] | None = None,
    seed: int = 0,
    test_cases: int = 0,
    annotations: int = 3,
    compress: bool = True,
    progress_bar: bool | None = None,
) -> Path:
    """Write synthetic KiTS cases in the layout of ``edition`` and return ``out`` (the folder of the case folders).

    Layouts: ``out/case_XXXXX/imaging.nii.gz`` plus ``segmentation.nii.gz`` (kits19, kits23),
    ``aggregated_{AND,MAJ,OR}_seg.nii.gz`` (kits21) and the per-annotator instance files
    ``{kidney,tumor,cyst}_instance-{i}_annotation-{j}.nii.gz`` under ``segmentations/`` (kits21) or ``instances/``
    (kits23). Test cases (after the training ones) have the imaging only.

    Each case: ``size`` voxels along ``(x, y, z)`` (default ``64 x 64 x 32``) of 0.8 x 0.8 mm with a slice
    thickness drawn from 2.5-5 mm, stored slices-first ``(z, y, x)`` like KiTS (affine with permuted axes); float32
    HU: air, fat, soft tissue (40), vertebra, liver (60, unlabelled), two kidneys (150), a tumour (90) growing out
    of one kidney and, in half of the cases, a cyst (10) in the other. Each instance has ``annotations``
    annotations that move its true surface by a smooth random displacement (one annotation per instance is
    sloppier). The ground truth is the per-instance majority of the annotations painted kidney, cyst, tumour (the
    KiTS aggregation order); AND/OR are the per-instance intersection/union. KiTS19 labels have no cyst (cysts
    count as kidney there).

    Every case draws from ``numpy.random.default_rng((seed, N))``, so a case does not depend on ``cases`` and the
    same seed writes the same bytes.

    Args:
        out: output folder (created).
        edition: ``"kits19"``, ``"kits21"`` or ``"kits23"``.
        cases: labelled cases.
        size: ``n`` for ``(n, n, n // 2)`` or an ``(x, y, z)`` triple.
        seed: random seed.
        test_cases: unlabelled cases.
        annotations: annotations per instance (KiTS has 3).
        compress: ``.nii.gz`` (default) or ``.nii``.
        progress_bar: show a progress bar (default: only on a terminal).

    Raises:
        ValueError: unknown edition, bad sizes or counts.

    Example:
        >>> import tempfile
        >>> root = write_synthetic_kits(tempfile.mkdtemp(), edition="kits23", cases=1, size=32)
        >>> sorted(p.name for p in (root / "case_00000" / "instances").glob("kidney_*"))[:2]
        ['kidney_instance-1_annotation-1.nii.gz', 'kidney_instance-1_annotation-2.nii.gz']
    """
    edition = kits_edition(edition)
    cases = check_positive_int("cases", cases)
    test_cases = check_positive_int("test_cases", test_cases, minimum=0)
    annotations = check_positive_int("annotations", annotations)
    seed = check_positive_int("seed", seed, minimum=0)
    compress = check_bool("compress", compress)
    shape = resolve_size(size, 3, default=64)
    out = Path(out)
    total = cases + test_cases
    for n in progress(range(total), total=total, desc=f"KiTS ({edition})", enabled=progress_bar):
        rng = np.random.default_rng((seed, n))
        _write_case(out / f"case_{n:05d}", edition, shape, annotations, n < cases, rng, compress)
    return out
