"""LiTS reader: ``volume-N`` / ``segmentation-N`` pairs found anywhere under a folder."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_jdt.data._files import Problems, check_against_image, nifti_stem, read_header
from monai_jdt.data.folds import assign_folds
from monai_jdt.utils.checks import check_bool, check_option

__all__ = ["LITS_LABELS", "lits_datalist"]

#: label values of the LiTS segmentations.
LITS_LABELS: Mapping[int, str] = {0: "background", 1: "liver", 2: "tumor"}

_KINDS = {
    "volume": re.compile(r"^volume-(\d+)$"),
    "segmentation": re.compile(r"^segmentation-(\d+)$"),
    "test-volume": re.compile(r"^test-volume-(\d+)$"),
}


def _scan(root: Path) -> dict[str, dict[int, list[Path]]]:
    """``{kind: {N: [files]}}`` for every NIfTI file under ``root`` (recursively, hidden files skipped)."""
    found: dict[str, dict[int, list[Path]]] = {kind: {} for kind in _KINDS}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            stem = nifti_stem(name)
            for kind, pattern in _KINDS.items():
                match = pattern.match(stem) if stem and not name.startswith(".") else None
                if match:
                    found[kind].setdefault(int(match.group(1)), []).append(Path(dirpath) / name)
    return found


def _single(files: list[Path], problems: Problems) -> Path | None:
    if len(files) > 1:
        problems.invalid.append(f"{files[0].name} (found several copies: {', '.join(map(str, files))})")
        return None
    return files[0]


def _pairs(
    found: dict[str, dict[int, list[Path]]], problems: Problems, check_headers: bool, check_affine: bool
) -> list[tuple[int, Path, Path]]:
    volumes, segs = found["volume"], found["segmentation"]
    for n in sorted(set(segs) - set(volumes)):
        problems.missing.append(f"volume-{n}.nii[.gz] (for {segs[n][0]})")
    for n in sorted(set(volumes) - set(segs)):
        problems.missing.append(f"segmentation-{n}.nii[.gz] (for {volumes[n][0]})")
    pairs = []
    for n in sorted(set(volumes) & set(segs)):
        image, label = _single(volumes[n], problems), _single(segs[n], problems)
        if image is None or label is None:
            continue
        if check_headers:
            try:
                header = read_header(image)
            except Exception as err:
                problems.invalid.append(f"{image} (unreadable NIfTI header: {err})")
                continue
            check_against_image(header, label, problems, check_affine=check_affine, image_path=image)
        pairs.append((n, image, label))
    return pairs


def lits_datalist(
    root: str | os.PathLike,
    *,
    split: str = "training",
    folds: int | None = 5,
    shuffle_seed: int | None = None,
    check_headers: bool = True,
    check_affine: bool = True,
) -> list[dict[str, Any]]:
    """MONAI datalist of a LiTS copy, one entry per case in numeric order of ``N``.

    Files are searched recursively under ``root`` (so the ``Training Batch 1``/``Training Batch 2`` folders of the
    download work as they are): ``volume-N.nii[.gz]`` with ``segmentation-N.nii[.gz]`` (labels 0 background,
    1 liver, 2 tumour) for ``split="training"``, and the unlabelled ``test-volume-N.nii[.gz]`` for
    ``split="test"``. Hidden files and folders (``._volume-0.nii`` left by macOS archives) are skipped.

    Entries: ``{"image", "label", "case_id": "volume-N", "fold"}`` (training) or ``{"image", "case_id":
    "test-volume-N"}`` (test).

    Args:
        root: folder that holds the LiTS files, at any depth.
        split: ``"training"`` or ``"test"``.
        folds: cross-validation folds (contiguous blocks of ``N``, as in the DML paper; see :func:`assign_folds`);
            ``None`` leaves out ``"fold"``. Ignored for ``split="test"``.
        shuffle_seed: permute the cases with this seed before cutting the folds.
        check_headers: compare each segmentation's NIfTI header with its volume's (headers only).
        check_affine: also compare the affines (tolerance 1e-3 mm).

    Returns:
        The datalist (a list of dicts with absolute paths).

    Raises:
        ValueError: unknown ``split``, a case found twice (two folders, or ``.nii`` and ``.nii.gz``), a segmentation
            whose shape or affine differ from its volume. The message lists every offending file.
        FileNotFoundError: ``root`` does not exist or holds no LiTS file of the split, or volumes/segmentations
            without their partner (all listed).

    Example:
        >>> import tempfile
        >>> from monai_jdt.data.synthetic import write_synthetic_lits
        >>> root = write_synthetic_lits(tempfile.mkdtemp(), cases=3, size=32)
        >>> [(d["case_id"], d["fold"]) for d in lits_datalist(root, folds=3)]
        [('volume-0', 0), ('volume-1', 1), ('volume-2', 2)]
        >>> [d["case_id"] for d in lits_datalist(root, split="test")]
        ['test-volume-0']
    """
    split = check_option("split", split, ("training", "test"))
    check_headers, check_affine = check_bool("check_headers", check_headers), check_bool("check_affine", check_affine)
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"root must be an existing folder, got {root}")
    found = _scan(root)
    problems = Problems()
    if split == "test":
        if not found["test-volume"]:
            raise FileNotFoundError(f"no LiTS test-volume-N.nii[.gz] file under {root}")
        tests = [(n, _single(files, problems)) for n, files in sorted(found["test-volume"].items())]
        problems.raise_if_any(f"LiTS folder {root}")
        return [{"image": str(path), "case_id": f"test-volume-{n}"} for n, path in tests]
    if not found["volume"] and not found["segmentation"]:
        raise FileNotFoundError(f"no LiTS volume-N.nii[.gz] / segmentation-N.nii[.gz] file under {root}")
    pairs = _pairs(found, problems, check_headers, check_affine)
    problems.raise_if_any(f"LiTS folder {root}")
    entries: list[dict[str, Any]] = [
        {"image": str(image), "label": str(label), "case_id": f"volume-{n}"} for n, image, label in pairs
    ]
    if folds is not None:
        for entry, fold in zip(entries, assign_folds(len(entries), folds, shuffle_seed)):
            entry["fold"] = fold
    return entries
