"""KiTS19/21/23 reader, the KiTS labels and the hierarchical evaluation regions (HECs)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_jdt.data._files import (
    Problems,
    check_against_image,
    find_nifti,
    natural_key,
    nifti_stem,
    read_header,
    unique_or_problem,
)
from monai_jdt.data.folds import assign_folds
from monai_jdt.utils.checks import check_bool, check_option

__all__ = [
    "KITS_AGGREGATION_ORDER",
    "KITS_EDITIONS",
    "KITS_LABELS",
    "KITS_REGIONS",
    "kits_datalist",
    "kits_edition",
    "parse_instance_name",
    "region_masks",
]

#: label values of the KiTS segmentations (KiTS19 has only 0-2).
KITS_LABELS: Mapping[int, str] = {0: "background", 1: "kidney", 2: "tumor", 3: "cyst"}

#: the hierarchical evaluation classes of KiTS21/23: each region is the union of these labels.
KITS_REGIONS: Mapping[str, tuple[int, ...]] = {"kidney_and_mass": (1, 2, 3), "mass": (2, 3), "tumor": (2,)}

#: order in which KiTS paints the instance masks into one label map: kidney, then cyst, then tumour, so a tumour
#: overwrites a cyst, which overwrites a kidney.
KITS_AGGREGATION_ORDER: tuple[int, ...] = (1, 3, 2)

#: per edition: (ground-truth file stem, folder of the per-annotator instance files or None, data folder in the repo).
KITS_EDITIONS: Mapping[str, tuple[str, str | None, str]] = {
    "kits19": ("segmentation", None, "data"),
    "kits21": ("aggregated_MAJ_seg", "segmentations", "kits21/data"),
    "kits23": ("segmentation", "instances", "dataset"),
}

_CASE = re.compile(r"^case_(\d+)$")
_INSTANCE = re.compile(r"^(kidney|tumor|cyst)_instance-(\d+)_annotation-(\d+)$")


def kits_edition(edition: str | int) -> str:
    """Canonical edition name: ``"kits19"``, ``"kits21"`` or ``"kits23"`` (``21``, ``"2021"``, ``"KiTS21"`` too).

    Raises:
        ValueError: another edition.

    Example:
        >>> kits_edition("KiTS21"), kits_edition(2023)
        ('kits21', 'kits23')
    """
    text = str(edition).strip().lower().removeprefix("kits").removeprefix("20")
    if text not in {"19", "21", "23"}:
        raise ValueError(f"edition must be one of {', '.join(map(repr, KITS_EDITIONS))}, got {edition!r}")
    return f"kits{text}"


def parse_instance_name(path: str | os.PathLike) -> tuple[str, int, int] | None:
    """``(class name, instance, annotation)`` of a KiTS instance file, or ``None`` for any other file.

    Example:
        >>> parse_instance_name("instances/tumor_instance-2_annotation-3.nii.gz")
        ('tumor', 2, 3)
    """
    stem = nifti_stem(path)
    match = _INSTANCE.match(stem) if stem else None
    return (match.group(1), int(match.group(2)), int(match.group(3))) if match else None


def region_masks(
    label: torch.Tensor | np.ndarray, regions: Mapping[str, Sequence[int]] = KITS_REGIONS
) -> torch.Tensor | np.ndarray:
    """Stack one binary mask per region (``label`` in any of the region's values) on a new first axis.

    Example:
        >>> region_masks(np.array([0, 1, 2, 3])).astype(int).tolist()
        [[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 0]]
    """
    if isinstance(label, torch.Tensor):
        return torch.stack([torch.isin(label, torch.as_tensor(list(v), device=label.device)) for v in regions.values()])
    label = np.asarray(label)
    return np.stack([np.isin(label, list(v)) for v in regions.values()])


def _data_folder(root: Path, edition: str) -> Path:
    if any(_CASE.match(d.name) for d in root.iterdir() if d.is_dir()):
        return root
    nested = root / KITS_EDITIONS[edition][2]
    if nested.is_dir() and any(_CASE.match(d.name) for d in nested.iterdir() if d.is_dir()):
        return nested
    raise FileNotFoundError(
        f"no KiTS case folder (case_00000, ...) in {root} or {nested}; pass the folder that holds the case folders"
    )


def _instance_files(case_dir: Path, folder: str, problems: Problems) -> list[Path]:
    inst_dir = case_dir / folder
    files = (
        sorted(
            (f for f in inst_dir.iterdir() if f.is_file() and parse_instance_name(f)), key=lambda f: natural_key(f.name)
        )
        if inst_dir.is_dir()
        else []
    )
    if not files:
        problems.missing.append(f"{inst_dir}/{{kidney,tumor,cyst}}_instance-*_annotation-*.nii[.gz]")
    seen: dict[tuple[str, int, int], Path] = {}
    for f in files:
        key = parse_instance_name(f)
        if key in seen:
            problems.invalid.append(f"{f} (duplicate of {seen[key]})")
        seen[key] = f  # type: ignore[index]
    return files


def _num_annotators(files: Sequence[Path]) -> int:
    """Annotations available for every instance: the number of per-annotator label maps KiTS builds."""
    per_instance: dict[tuple[str, int], int] = {}
    for f in files:
        cls, inst, _ = parse_instance_name(f)  # type: ignore[misc]
        per_instance[(cls, inst)] = per_instance.get((cls, inst), 0) + 1
    return min(per_instance.values())


def _read_case(
    case_dir: Path,
    edition: str,
    label_stem: str,
    instances: bool,
    problems: Problems,
    check_headers: bool,
    check_affine: bool,
) -> dict[str, Any] | None:
    """One entry (``None`` for an unlabelled case: ``"label"`` missing from the dict means test case)."""
    image = find_nifti(case_dir, "imaging")
    label = find_nifti(case_dir, label_stem)
    if not image:
        hint = " (KiTS ships the imaging separately: run the dataset's download script)" if label else ""
        problems.missing.append(f"{case_dir}/imaging.nii[.gz]{hint}")
        return None
    image_path = unique_or_problem(image, f"{case_dir}/imaging.nii[.gz]", problems)
    entry: dict[str, Any] = {"image": str(image_path), "case_id": case_dir.name}
    folder = KITS_EDITIONS[edition][1]
    if not label:
        if folder is not None and (case_dir / folder).is_dir() and any((case_dir / folder).iterdir()):
            # annotations without the ground truth: an incomplete copy, not a test case
            problems.missing.append(f"{case_dir}/{label_stem}.nii[.gz] (the case has {folder}/)")
        return entry
    label_path = unique_or_problem(label, f"{case_dir}/{label_stem}.nii[.gz]", problems)
    files: list[Path] = []
    if instances and folder is not None:
        files = _instance_files(case_dir, folder, problems)
    if image_path is None or label_path is None:
        return None
    entry["label"] = str(label_path)
    if files:
        entry["instances"] = [str(f) for f in files]
        entry["n_annotators"] = _num_annotators(files)
    if check_headers:
        try:
            header = read_header(image_path)
        except Exception as err:
            problems.invalid.append(f"{image_path} (unreadable NIfTI header: {err})")
        else:
            for f in [label_path, *files]:
                check_against_image(header, f, problems, check_affine=check_affine, image_path=image_path)
    return entry


def kits_datalist(
    root: str | os.PathLike,
    edition: str | int = "kits23",
    *,
    split: str = "training",
    folds: int | None = 5,
    shuffle_seed: int | None = None,
    instances: bool = True,
    label_file: str | None = None,
    check_headers: bool = True,
    check_affine: bool = True,
) -> list[dict[str, Any]]:
    """MONAI datalist of a KiTS19/21/23 copy, one entry per case in numeric case order.

    Layouts (``root`` is the folder of the ``case_XXXXX`` folders, or the cloned repository that holds it in
    ``data/``, ``kits21/data/`` or ``dataset/``)::

        kits19: case_XXXXX/imaging.nii.gz, segmentation.nii.gz                              labels 0, 1, 2
        kits21: case_XXXXX/imaging.nii.gz, aggregated_MAJ_seg.nii.gz, segmentations/*.nii.gz  labels 0-3
        kits23: case_XXXXX/imaging.nii.gz, segmentation.nii.gz, instances/*.nii.gz            labels 0-3

    with instance files ``{kidney,tumor,cyst}_instance-{i}_annotation-{j}.nii.gz`` (one binary mask per annotation
    of each instance). Training entries hold ``"image"``, ``"label"``, ``"case_id"`` and, for 21/23 with
    ``instances=True``, ``"instances"`` (every instance file of the case) and ``"n_annotators"`` (annotations
    available for every instance) for :class:`LoadKiTSAnnotatorsd`; plus ``"fold"`` when ``folds`` is set.
    Cases without a ground truth (the KiTS19 test cases 210-299) are the ``split="test"`` entries (image only).

    Args:
        root: see above.
        edition: ``"kits19"``, ``"kits21"`` or ``"kits23"`` (also ``19``, ``"2021"``, ...).
        split: ``"training"`` (cases with a ground truth) or ``"test"`` (cases without).
        folds: cross-validation folds (contiguous blocks of cases in numeric order, as in the DML paper; see
            :func:`assign_folds`); ``None`` leaves out ``"fold"``. Ignored for ``split="test"``.
        shuffle_seed: permute the cases with this seed before cutting the folds.
        instances: collect the per-annotator instance files (21/23); a labelled case without them is an error.
        label_file: ground-truth file stem instead of the edition's default (e.g. ``"aggregated_AND_seg"``).
        check_headers: compare the NIfTI headers of the label and instance files with the image's (headers only).
        check_affine: also compare the affines (tolerance 1e-3 mm).

    Returns:
        The datalist (a list of dicts with absolute paths).

    Raises:
        ValueError: unknown ``edition``/``split``, duplicate files (``.nii`` and ``.nii.gz``), labels or instance
            files whose shape or affine differ from the image. The message lists every offending file.
        FileNotFoundError: ``root`` does not exist or has no case folder, no case of the requested split, or
            images or instance files missing (every missing file is listed).

    Example:
        >>> import tempfile
        >>> from monai_jdt.data.synthetic import write_synthetic_kits
        >>> root = write_synthetic_kits(tempfile.mkdtemp(), edition="kits21", cases=2, size=32)
        >>> entry = kits_datalist(root, "kits21", folds=2)[0]
        >>> entry["case_id"], entry["n_annotators"], entry["fold"], entry["label"].endswith("aggregated_MAJ_seg.nii.gz")
        ('case_00000', 3, 0, True)
    """
    edition = kits_edition(edition)
    split = check_option("split", split, ("training", "test"))
    instances = check_bool("instances", instances)
    check_headers, check_affine = check_bool("check_headers", check_headers), check_bool("check_affine", check_affine)
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"root must be an existing folder, got {root}")
    data = _data_folder(root, edition)
    label_stem = label_file or KITS_EDITIONS[edition][0]
    case_dirs = sorted(
        (d for d in data.iterdir() if d.is_dir() and _CASE.match(d.name)), key=lambda d: natural_key(d.name)
    )
    problems = Problems()
    entries = [_read_case(d, edition, label_stem, instances, problems, check_headers, check_affine) for d in case_dirs]
    problems.raise_if_any(f"KiTS ({edition}) folder {data}")
    labelled = split == "training"
    chosen = [e for e in entries if e is not None and ("label" in e) == labelled]
    if not chosen:
        what = f"{label_stem}.nii[.gz]" if labelled else f"imaging without {label_stem}.nii[.gz]"
        raise FileNotFoundError(f"no KiTS {split} case ({what}) in {data}")
    if folds is not None and labelled:
        for entry, fold in zip(chosen, assign_folds(len(chosen), folds, shuffle_seed)):
            entry["fold"] = fold
    return chosen
