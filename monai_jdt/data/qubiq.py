"""QUBIQ 2020/2021 reader: one datalist entry per case with the image and the rater masks of every sub-task."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from monai_jdt.utils.checks import check_bool, check_option, check_positive_int

__all__ = ["QUBIQ_SPLITS", "QUBIQ_TASKS", "QubiqTask", "qubiq_datalist"]

#: the split folders of a QUBIQ release.
QUBIQ_SPLITS = {"training": "Training", "validation": "Validation"}

_RATER_FILE = re.compile(r"^task(\d+)_seg(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class QubiqTask:
    """What is known about one QUBIQ data set (from the challenge pages; ``raters=None``: not verified).

    Attributes:
        subtasks: number of binary sub-tasks (``task01``, ``task02``, ...).
        raters: annotations per sub-task in the training data (a few cases may have fewer).
        spatial_dims: 2 for the single-slice sets, 3 for the 2021 pancreas sets.
        channels: image channels (brain-tumor: 4 MR sequences stacked on the last axis).
        modality: ``"MR"`` or ``"CT"``.
        release: first challenge edition that contains the set.
    """

    subtasks: int
    raters: int | None
    spatial_dims: int
    channels: int
    modality: str
    release: str


#: the QUBIQ data sets; keys are the task folder names of the releases.
QUBIQ_TASKS: Mapping[str, QubiqTask] = {
    "brain-growth": QubiqTask(subtasks=1, raters=7, spatial_dims=2, channels=1, modality="MR", release="2020"),
    "brain-tumor": QubiqTask(subtasks=3, raters=3, spatial_dims=2, channels=4, modality="MR", release="2020"),
    "kidney": QubiqTask(subtasks=1, raters=3, spatial_dims=2, channels=1, modality="CT", release="2020"),
    "prostate": QubiqTask(subtasks=2, raters=6, spatial_dims=2, channels=1, modality="MR", release="2020"),
    "pancreas": QubiqTask(subtasks=1, raters=None, spatial_dims=3, channels=1, modality="CT", release="2021"),
    "pancreatic-lesion": QubiqTask(subtasks=1, raters=None, spatial_dims=3, channels=1, modality="CT", release="2021"),
}


def _child_dir(folder: Path, name: str) -> Path | None:
    """The sub-folder of ``folder`` named ``name``, compared case-insensitively."""
    if not folder.is_dir():
        return None
    for child in folder.iterdir():
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _case_dirs(folder: Path) -> list[Path]:
    return sorted(
        (d for d in folder.iterdir() if d.is_dir() and d.name.lower().startswith("case")),
        key=lambda d: natural_key(d.name),
    )


def _split_folder(root: Path, task: str, split: str) -> Path:
    """Find ``<root>[/<release>]/<task>[/<Split>]`` (see :func:`qubiq_datalist` for the accepted layouts)."""
    split_name = QUBIQ_SPLITS[split]
    found: list[Path] = []
    for base in [root, *sorted(d for d in root.iterdir() if d.is_dir())]:
        task_dir = _child_dir(base, task)
        if task_dir is None:
            continue
        split_dir = _child_dir(task_dir, split_name)
        if split_dir is not None:
            found.append(split_dir)
        elif _case_dirs(task_dir) and (base == root or split in base.name.lower()):
            found.append(task_dir)  # releases that put the case folders straight into the task folder
    if len(found) > 1:
        raise ValueError(
            f"root holds several QUBIQ {split} folders for task {task!r}: {', '.join(map(str, found))}; "
            "pass the release folder (e.g. training_data_v2 or training_data_v3_QC) as root"
        )
    if not found:
        tasks = sorted(
            {
                d.name
                for b in [root, *root.iterdir()]
                if b.is_dir()
                for d in b.iterdir()
                if d.is_dir() and d.name in QUBIQ_TASKS
            }
        )
        raise FileNotFoundError(
            f"no QUBIQ {split} folder for task {task!r} under {root}: looked for {root}/{task}/{split_name} and "
            f"{root}/*/{task}/{split_name} (task folders found: {tasks or 'none'})"
        )
    return found[0]


def _rater_files(case_dir: Path) -> dict[int, dict[int, list[Path]]]:
    """``{subtask: {rater: [files]}}`` from the ``taskNN_segRR.nii[.gz]`` files of one case."""
    out: dict[int, dict[int, list[Path]]] = {}
    for f in case_dir.iterdir():
        stem = nifti_stem(f) if f.is_file() else None
        match = _RATER_FILE.match(stem) if stem else None
        if match:
            out.setdefault(int(match.group(1)), {}).setdefault(int(match.group(2)), []).append(f)
    return out


def _read_case(
    case_dir: Path, problems: Problems, check_headers: bool, check_affine: bool
) -> tuple[Path | None, dict[int, list[Path]]]:
    image = unique_or_problem(find_nifti(case_dir, "image"), f"{case_dir}/image.nii[.gz]", problems)
    raters: dict[int, list[Path]] = {}
    for subtask, by_rater in sorted(_rater_files(case_dir).items()):
        files = []
        for rater, copies in sorted(by_rater.items()):
            f = unique_or_problem(copies, f"{case_dir}/task{subtask:02d}_seg{rater:02d}.nii[.gz]", problems)
            if f is not None:
                files.append(f)
        raters[subtask] = files
    if image is not None and check_headers:
        try:
            header = read_header(image)
        except Exception as err:
            problems.invalid.append(f"{image} (unreadable NIfTI header: {err})")
        else:
            for files in raters.values():
                for f in files:
                    check_against_image(header, f, problems, check_affine=check_affine, image_path=image)
    return image, raters


def _apply_incomplete_policy(
    entries: list[dict[str, Any]], policy: str, task: str, subtask: int
) -> list[dict[str, Any]]:
    most = max(e["n_raters"] for e in entries)
    short = [f"{e['case_id']} ({e['n_raters']})" for e in entries if e["n_raters"] < most]
    if not short:
        return entries
    what = f"QUBIQ {task} task{subtask:02d}: {len(short)} case(s) have fewer than {most} raters: {', '.join(short)}"
    if policy == "error":
        raise ValueError(f"{what} (incomplete_raters='error')")
    if policy == "drop":
        warnings.warn(f"{what}; dropped (incomplete_raters='drop')", stacklevel=3)
        return [e for e in entries if e["n_raters"] == most]
    warnings.warn(f"{what}; kept, see the entries' 'n_raters' (incomplete_raters='keep')", stacklevel=3)
    return entries


def qubiq_datalist(
    root: str | os.PathLike,
    task: str,
    *,
    subtask: int = 1,
    split: str = "training",
    folds: int | None = 5,
    shuffle_seed: int | None = None,
    incomplete_raters: str = "keep",
    check_headers: bool = True,
    check_affine: bool = True,
) -> list[dict[str, Any]]:
    """MONAI datalist of one QUBIQ 2020/2021 data set, one entry per case, in numeric case order.

    Accepted layouts (names of the task and split folders compared case-insensitively)::

        <root>/<task>/<Split>/<case>/{image, taskNN_segRR}.nii[.gz]          root = a release folder
        <root>/<release>/<task>/<Split>/<case>/...                           root = the download folder
        <root>[/<release>]/<task>/<case>/...                                 releases without split folders

    where ``<release>`` is e.g. ``training_data_v2``/``validation_data_v2`` (2020) or ``training_data_v3_QC``/
    ``validation_data_qubiq2021_QC`` (2021), ``<Split>`` is ``Training`` or ``Validation`` and ``<case>`` is any
    folder whose name starts with ``case`` (``case01``, ``case1-1``). Other files in a case folder are ignored.

    Each entry holds ``"image"``; ``"raters"``: the rater masks of ``subtask`` (rater order, so ``LoadImaged`` stacks
    them into channels); ``"raters_taskNN"`` for every sub-task found; ``"n_raters"`` (of ``subtask``);
    ``"case_id"`` (the case folder name), ``"task"``, ``"subtask"`` and, when ``folds`` is set, ``"fold"``.

    Args:
        root: the QUBIQ download or release folder (see above).
        task: one of :data:`QUBIQ_TASKS` (``"brain-growth"``, ``"brain-tumor"``, ``"kidney"``, ``"prostate"``,
            ``"pancreas"``, ``"pancreatic-lesion"``).
        subtask: 1-based sub-task whose masks fill ``"raters"`` (files ``task{subtask:02d}_seg*``).
        split: ``"training"`` or ``"validation"``.
        folds: number of cross-validation folds (contiguous blocks of cases, see :func:`assign_folds`); ``None``
            leaves out the ``"fold"`` key.
        shuffle_seed: permute the cases with this seed before cutting the folds.
        incomplete_raters: what to do with cases that have fewer raters than the most complete case (the 2020
            prostate set has one case with 5 of 6 raters): ``"keep"`` them (a warning lists them and
            ``"n_raters"`` says how many they have; mean fusion stays a valid soft label), ``"drop"`` them with a
            warning (what the DML paper's code does), or raise (``"error"``).
        check_headers: compare every mask's NIfTI header with its image's (headers only, no voxels are read).
        check_affine: also compare the affines (tolerance 1e-3 mm); shapes are always compared when
            ``check_headers`` is set.

    Returns:
        The datalist (a list of dicts with absolute paths).

    Raises:
        ValueError: unknown ``task``/``split``/``incomplete_raters``, a ``subtask`` that no case has, masks whose
            shape or affine differ from their image, duplicate files (``.nii`` and ``.nii.gz``), or several matching
            release folders. The message lists every offending file.
        FileNotFoundError: ``root`` or the split folder does not exist, the split folder holds no case folder, or
            some images/masks are missing (every missing file is listed).

    Example:
        >>> import tempfile
        >>> from monai_jdt.data.synthetic import write_synthetic_qubiq
        >>> root = write_synthetic_qubiq(tempfile.mkdtemp(), tasks="kidney", cases=4, size=32)
        >>> data = qubiq_datalist(root, "kidney", folds=2)
        >>> [(d["case_id"], d["n_raters"], d["fold"]) for d in data]
        [('case01', 3, 0), ('case02', 3, 0), ('case03', 3, 1), ('case04', 3, 1)]
    """
    task = check_option("task", task, tuple(QUBIQ_TASKS))
    split = check_option("split", split, tuple(QUBIQ_SPLITS))
    subtask = check_positive_int("subtask", subtask)
    incomplete_raters = check_option("incomplete_raters", incomplete_raters, ("keep", "drop", "error"))
    check_headers, check_affine = check_bool("check_headers", check_headers), check_bool("check_affine", check_affine)
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"root must be an existing folder, got {root}")
    split_dir = _split_folder(root, task, split)
    case_dirs = _case_dirs(split_dir)
    if not case_dirs:
        raise FileNotFoundError(f"QUBIQ {task} {split} folder {split_dir} holds no case folder (case01, case1-1, ...)")

    problems = Problems()
    cases = [(d, *_read_case(d, problems, check_headers, check_affine)) for d in case_dirs]
    all_subtasks = sorted({s for _, _, raters in cases for s in raters})
    if not all_subtasks:
        problems.missing.append(f"{split_dir}/<case>/task01_seg01.nii[.gz] (no rater mask in any case folder)")
    for case_dir, _, raters in cases:
        problems.missing += [
            f"{case_dir}/task{s:02d}_seg01.nii[.gz] (no rater mask of sub-task {s})"
            for s in all_subtasks
            if not raters.get(s)
        ]
    problems.raise_if_any(f"QUBIQ {task} {split} folder {split_dir}")
    if subtask not in all_subtasks:
        raise ValueError(f"subtask must be one of {all_subtasks} for QUBIQ {task}, got {subtask}")

    entries: list[dict[str, Any]] = []
    for case_dir, image, raters in cases:
        entry: dict[str, Any] = {"image": str(image), "raters": [str(f) for f in raters[subtask]]}
        entry.update({f"raters_task{s:02d}": [str(f) for f in raters[s]] for s in all_subtasks})
        entry.update(n_raters=len(raters[subtask]), case_id=case_dir.name, task=task, subtask=subtask)
        entries.append(entry)
    entries = _apply_incomplete_policy(entries, incomplete_raters, task, subtask)
    if folds is not None:
        for entry, fold in zip(entries, assign_folds(len(entries), folds, shuffle_seed)):
            entry["fold"] = fold
    return entries
