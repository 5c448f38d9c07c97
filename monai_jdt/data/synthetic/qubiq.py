"""Synthetic QUBIQ 2020/2021 release: MR/CT slices (and 3D pancreas CT) with several disagreeing raters."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monai_jdt.data._progress import progress
from monai_jdt.data.qubiq import QUBIQ_TASKS
from monai_jdt.data.synthetic._anatomy import ct_body, ct_finish, fov_mm, mr_finish
from monai_jdt.data.synthetic._fields import blob, rater_masks, signed_distance
from monai_jdt.data.synthetic._nifti import lps_affine, nifti_name, save_nifti
from monai_jdt.data.synthetic._sizes import resolve_size
from monai_jdt.utils.checks import check_bool, check_option, check_positive_int

__all__ = ["QUBIQ_RELEASE_FOLDERS", "SYNTHETIC_QUBIQ_RATERS", "write_synthetic_qubiq"]

#: (training, validation) folder names of each release.
QUBIQ_RELEASE_FOLDERS = {
    "2020": ("training_data_v2", "validation_data_v2"),
    "2021": ("training_data_v3_QC", "validation_data_qubiq2021_QC"),
}

#: raters written per task (the 2021 pancreas counts are not verified, 2 is a stand-in).
SYNTHETIC_QUBIQ_RATERS = {name: (info.raters or 2) for name, info in QUBIQ_TASKS.items()}

#: the 2D tasks, written by default.
_DEFAULT_TASKS = ("brain-growth", "brain-tumor", "kidney", "prostate")


@dataclass(frozen=True)
class _Look:
    """Pixel spacing (mm), slice thickness (mm) and the relative size of the outermost structure."""

    spacing: float
    thickness: float
    radius: float


_LOOKS = {
    "brain-growth": _Look(0.8, 3.0, 0.30),
    "brain-tumor": _Look(1.0, 5.0, 0.24),
    "kidney": _Look(0.8, 5.0, 0.16),
    "prostate": _Look(0.5, 3.0, 0.22),
    "pancreas": _Look(1.0, 1.0, 0.14),
    "pancreatic-lesion": _Look(1.0, 1.0, 0.14),
}


def _nested_structures(
    shape: tuple[int, ...], spacing: Sequence[float], count: int, look: _Look, rng: np.random.Generator
) -> list[np.ndarray]:
    """``count`` nested organ-like masks, each inside the previous one (task01 is the largest)."""
    fov = fov_mm(shape, spacing)
    center = fov / 2 + rng.uniform(-0.04, 0.04, size=len(shape)) * fov
    radii = look.radius * fov[:2].min() * rng.uniform(0.85, 1.15, size=len(shape))
    if len(shape) == 3:  # pancreas: elongated left-right, flat antero-posterior
        radii = radii * np.array([1.8, 0.8, 1.0])
    masks = [blob(shape, spacing, center, radii, rng)]
    for _ in range(1, count):
        radii = radii * rng.uniform(0.45, 0.6)
        center = center + rng.uniform(-0.2, 0.2, size=len(shape)) * radii
        masks.append(blob(shape, spacing, center, radii, rng) & masks[-1])
    return masks


def _image(
    task: str, shape: tuple[int, ...], spacing: Sequence[float], truths: list[np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """CT (HU) for kidney and pancreas, MR-like magnitudes otherwise; brain-tumor: 4 channels on the last axis."""
    if QUBIQ_TASKS[task].modality == "CT":
        hu, _ = ct_body(shape, spacing, rng)
        organ_hu = {"kidney": 150.0, "pancreas": 100.0, "pancreatic-lesion": 100.0}[task]
        hu[truths[0]] = organ_hu
        if task == "pancreatic-lesion":
            hu[truths[1]] = 45.0  # hypo-attenuating lesion
        return ct_finish(hu, spacing, rng)
    fov = fov_mm(shape, spacing)
    coords = np.ogrid[tuple(slice(0, n) for n in shape)]
    rho = np.sqrt(sum(((c * s - f / 2) / (0.46 * f)) ** 2 for c, s, f in zip(coords, spacing, fov)))
    body = rho < 1.0
    if task == "brain-tumor":
        # FLAIR, T1, T1c, T2 levels for (tissue, edema, core, enhancing)
        levels = [(300, 620, 520, 560), (420, 330, 250, 300), (420, 360, 300, 760), (320, 680, 600, 560)]
        channels = []
        for tissue, edema, core, enhancing in levels:
            signal = np.where(body, tissue, 0.0)
            for mask, value in zip(truths, (edema, core, enhancing)):
                signal = np.where(mask, value, signal)
            channels.append(mr_finish(signal, rng))
        return np.stack(channels, axis=-1)
    tissue, organ, inner = {"brain-growth": (250, 520, 520), "prostate": (320, 460, 260)}[task]
    signal = np.where(body, tissue, 0.0)
    signal = np.where(truths[0], organ, signal)
    if len(truths) > 1:
        signal = np.where(truths[1], inner, signal)
    return mr_finish(signal, rng)


def _write_case(
    case_dir: Path,
    task: str,
    shape: tuple[int, ...],
    num_raters: int,
    drop_last_rater: bool,
    rng: np.random.Generator,
    compress: bool,
) -> None:
    look = _LOOKS[task]
    info = QUBIQ_TASKS[task]
    spacing = [look.spacing] * len(shape)
    count = 2 if task == "pancreatic-lesion" else info.subtasks
    truths = _nested_structures(shape, spacing, count, look, rng)
    image = _image(task, shape, spacing, truths, rng)
    affine = lps_affine(
        spacing if len(shape) == 3 else [*spacing, look.thickness], rng.uniform(-80, 80, size=3).round(2)
    )
    save_nifti(case_dir / nifti_name("image", compress), image, affine, np.float32)
    targets = truths[1:] if task == "pancreatic-lesion" else truths
    pixel = look.spacing
    n_written = num_raters - 1 if drop_last_rater else num_raters
    for sub, truth in enumerate(targets, start=1):
        sdf = signed_distance(truth, spacing)
        masks = rater_masks(
            sdf,
            spacing,
            num_raters,
            rng,
            amplitude_mm=0.7 * pixel,
            correlation_mm=6 * pixel,
            bias_sd_mm=0.35 * pixel,
            sloppy=int(rng.integers(num_raters)),
            sloppy_scale=2.5,
        )
        for r, mask in enumerate(masks[:n_written], start=1):
            save_nifti(case_dir / nifti_name(f"task{sub:02d}_seg{r:02d}", compress), mask, affine, np.uint8)


def _case_name(task: str, index: int) -> str:
    """``case01``... for the 2D sets; ``case1-1, case1-2, case2-1``... (patient-scan) for the pancreas sets."""
    if QUBIQ_TASKS[task].spatial_dims == 3:
        return f"case{index // 2 + 1}-{index % 2 + 1}"
    return f"case{index + 1:02d}"


def write_synthetic_qubiq(
    out: str | os.PathLike,
    *,
    tasks: str | Sequence[str] = _DEFAULT_TASKS,
    cases: int = 12,
    size: int | Sequence[int] | None = None,
    seed: int = 0,
    release: str | None = None,
    validation_cases: int = 0,
    compress: bool = True,
    progress_bar: bool | None = None,
) -> Path:
    """Write a synthetic QUBIQ release in the real folder layout and return ``out``.

    Layout: ``out/<training folder>/<task>/Training/<case>/{image, task01_seg01, ...}.nii[.gz]`` (and the same under
    the validation folder with ``validation_cases > 0``), folder names from :data:`QUBIQ_RELEASE_FOLDERS`.

    Each case has one image and, per sub-task, one binary mask per rater (:data:`SYNTHETIC_QUBIQ_RATERS`:
    brain-growth 7, brain-tumor 3 with 3 nested sub-tasks, kidney 3, prostate 6 with 2 nested sub-tasks, pancreas
    and pancreatic-lesion 2). Images: MR-like magnitudes with a bias field and Rician noise (prostate, brain-growth,
    brain-tumor with 4 channels FLAIR/T1/T1c/T2 stacked on the last axis as in the real data) or CT in HU (kidney,
    pancreas). The 2D sets are single slices of ``size x size`` pixels; pancreas sets are ``size x size x size/2``
    volumes with 1 mm voxels and case folders named ``case<patient>-<scan>``. Raters move the true surface by a
    smooth random displacement (about 0.7 pixel, a per-rater bias) and one rater per case and sub-task is
    sloppier (twice the displacement, biased outwards), so they disagree near the boundaries and averaging,
    majority vote and STAPLE give different labels. As in the real 2020 prostate set, prostate case 9 (the last
    case when there are fewer) lacks its last rater.

    Every case draws from ``numpy.random.default_rng((seed, task index, case index))``, so a case is the same
    whatever ``cases`` is, and the same seed writes the same bytes.

    Args:
        out: output folder (created).
        tasks: a task name or names from :data:`monai_jdt.data.QUBIQ_TASKS`, or ``"all"``; default the four 2D
            sets.
        cases: training cases per task.
        size: 2D slice side in pixels (default 64), or ``(H, W)``; for the 3D sets an int ``n`` gives
            ``(n, n, n // 2)`` (default 64) and a triple is used as is.
        seed: random seed.
        release: ``"2020"`` or ``"2021"`` (folder names; default 2021 when a pancreas set is requested, else 2020).
            The pancreas sets exist only in 2021.
        validation_cases: cases per task written to the validation folder.
        compress: ``.nii.gz`` (default, as the real data) or ``.nii``.
        progress_bar: show a progress bar (default: only on a terminal).

    Raises:
        ValueError: unknown task or release, a 2021-only task with ``release="2020"``, bad sizes or counts.

    Example:
        >>> import tempfile, pathlib
        >>> root = write_synthetic_qubiq(tempfile.mkdtemp(), tasks="prostate", cases=2, size=32)
        >>> sorted(p.name for p in (root / "training_data_v2/prostate/Training/case01").iterdir())[:3]
        ['image.nii.gz', 'task01_seg01.nii.gz', 'task01_seg02.nii.gz']
    """
    names = list(QUBIQ_TASKS) if tasks == "all" else [tasks] if isinstance(tasks, str) else list(tasks)
    if not names:
        raise ValueError("tasks must name at least one QUBIQ task, got an empty list")
    names = [check_option("tasks", t, tuple(QUBIQ_TASKS)) for t in names]
    cases = check_positive_int("cases", cases)
    validation_cases = check_positive_int("validation_cases", validation_cases, minimum=0)
    seed = check_positive_int("seed", seed, minimum=0)
    compress = check_bool("compress", compress)
    needs_2021 = [t for t in names if QUBIQ_TASKS[t].release == "2021"]
    release = check_option("release", release or ("2021" if needs_2021 else "2020"), tuple(QUBIQ_RELEASE_FOLDERS))
    if release == "2020" and needs_2021:
        raise ValueError(f"tasks {needs_2021} exist only in the 2021 release, got release='2020'")
    out = Path(out)
    jobs = []
    for t in names:
        shape = resolve_size(size, QUBIQ_TASKS[t].spatial_dims, default=64)
        for split_index, (n, split) in enumerate(((cases, "Training"), (validation_cases, "Validation"))):
            folder = out / QUBIQ_RELEASE_FOLDERS[release][split_index] / t / split
            first = 0 if split == "Training" else cases
            jobs += [(t, shape, folder, first + i) for i in range(n)]
    missing_rater_case = min(9, cases) - 1
    for t, shape, folder, index in progress(jobs, total=len(jobs), desc="QUBIQ", enabled=progress_bar):
        rng = np.random.default_rng((seed, list(QUBIQ_TASKS).index(t), index))
        drop = t == "prostate" and index == missing_rater_case
        _write_case(folder / _case_name(t, index), t, shape, SYNTHETIC_QUBIQ_RATERS[t], drop, rng, compress)
    return out
