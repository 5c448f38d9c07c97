"""Datalists of the bundles: the real download read by :mod:`monai_jdt.data`, or a prepared JSON, split by fold.

Every problem with the data becomes ONE line ``error: ...`` raised as :class:`SystemExit`: MONAI's config parser
wraps ``Exception`` subclasses raised in ``$`` expressions into a long ``RuntimeError`` traceback, but lets
``SystemExit`` through, so ``python -m monai.bundle run ... --dataset_dir <bad path>`` ends with that one line
and exit status 1.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai_jdt.data import assign_folds, kits_datalist, lits_datalist, load_datalist, qubiq_datalist, select_fold
from monai_jdt.utils.checks import check_option, check_positive_int

__all__ = [
    "BASE_KEYS",
    "DATASETS",
    "bundle_datalists",
    "dataset_entries",
    "inference_datalist",
    "one_line_error",
    "require_file",
]

#: data sets the bundles read (``dataset_name`` in the configs).
DATASETS = ("qubiq", "lits", "kits")

#: the keys every datalist entry keeps (others are dropped: lists of different lengths cannot be batched).
BASE_KEYS = {
    "qubiq": ("image", "raters", "case_id"),
    "lits": ("image", "label", "case_id"),
    "kits": ("image", "label", "case_id"),
}

_MAX_ITEMS = 3
_KEY_HINTS = {
    "teacher": "label_mode kd needs --teacher_ckpt <teacher model.pt> (online distillation) or --datalist <JSON "
    "written by python -m monai_jdt teacher-maps> (offline teacher maps)",
    "instances": "label_mode raters_mean needs the per-annotator instance files of KiTS21/KiTS23",
}
_WHAT = {
    "qubiq": "the QUBIQ download or release folder (holding e.g. training_data_v2/<task>/Training/case01)",
    "lits": "the LiTS folder (holding volume-N.nii / segmentation-N.nii, at any depth)",
    "kits": "the KiTS folder (holding case_XXXXX/imaging.nii.gz, or the kits19/kits21/kits23 repository)",
}


def one_line_error(err: BaseException | str, context: str | None = None) -> SystemExit:
    """``SystemExit("error: <context>: <message>")`` with a multi-line message folded into one line.

    The readers list every problem on its own line; the first ``3`` are kept and the rest counted.

    Example:
        >>> one_line_error(FileNotFoundError("x: 2 problem(s)\\n  missing: a\\n  missing: b"), "dataset_dir /d").code
        'error: dataset_dir /d: x: 2 problem(s): missing: a; missing: b'
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    head, items = lines[0], lines[1:]
    text = head if not items else f"{head.rstrip(':')}: " + "; ".join(items[:_MAX_ITEMS])
    if len(items) > _MAX_ITEMS:
        text += f"; ... and {len(items) - _MAX_ITEMS} more"
    return SystemExit(f"error: {context}: {text}" if context else f"error: {text}")


def _read_dataset(dataset: str, root: str, num_folds: int, options: dict[str, Any]) -> list[dict[str, Any]]:
    if dataset == "qubiq":
        return qubiq_datalist(root, options["task"], subtask=options["subtask"], folds=num_folds)
    if dataset == "lits":
        return lits_datalist(root, folds=num_folds)
    return kits_datalist(root, edition=options["edition"], folds=num_folds)


def dataset_entries(
    dataset: str,
    dataset_dir: str | os.PathLike | None,
    *,
    datalist: str | os.PathLike | None = None,
    num_folds: int = 5,
    task: str = "kidney",
    subtask: int = 1,
    edition: str = "kits23",
) -> list[dict[str, Any]]:
    """Every training case of the data set, with a ``"fold"`` key.

    Args:
        dataset: ``"qubiq"``, ``"lits"`` or ``"kits"``.
        dataset_dir: the download's root, read by :func:`~monai_jdt.data.qubiq_datalist`,
            :func:`~monai_jdt.data.lits_datalist` or :func:`~monai_jdt.data.kits_datalist`; ignored when
            ``datalist`` is given.
        datalist: a datalist JSON (``python -m monai_jdt datalist ...``, or ``teacher-maps`` for offline
            distillation); its ``"training"`` list is used, and entries without ``"fold"`` get contiguous folds.
        num_folds: folds of the split.
        task, subtask: QUBIQ data set and sub-task.
        edition: KiTS edition (``"kits19"``, ``"kits21"``, ``"kits23"``).

    Raises:
        SystemExit: one line ``error: ...`` naming the folder or file and what is missing or wrong.

    Example:
        >>> import tempfile
        >>> from monai_jdt.data.synthetic import write_synthetic_kits
        >>> root = write_synthetic_kits(tempfile.mkdtemp(), cases=2, size=(16, 16, 16), progress_bar=False)
        >>> [(e["case_id"], e["fold"]) for e in dataset_entries("kits", root, num_folds=2)]
        [('case_00000', 0), ('case_00001', 1)]
    """
    dataset = check_option("dataset", dataset, DATASETS)
    num_folds = check_positive_int("num_folds", num_folds, minimum=2)
    if datalist:
        try:
            entries = load_datalist(datalist, "training")
        except (OSError, ValueError) as err:
            raise one_line_error(err, f"datalist {datalist}") from None
        if entries and any("fold" not in e for e in entries):
            entries = [dict(e, fold=f) for e, f in zip(entries, assign_folds(len(entries), num_folds))]
        return entries
    if dataset_dir is None or not Path(dataset_dir).is_dir():
        raise SystemExit(
            f"error: dataset_dir {dataset_dir} is not an existing folder; pass --dataset_dir <{_WHAT[dataset]}>"
        )
    options = {"task": task, "subtask": subtask, "edition": edition}
    try:
        return _read_dataset(dataset, str(dataset_dir), num_folds, options)
    except (OSError, ValueError, TypeError) as err:
        raise one_line_error(err, f"dataset_dir {dataset_dir}") from None


def _project(entries: list[dict[str, Any]], keys: Sequence[str], source: str) -> list[dict[str, Any]]:
    """Keep ``keys`` of every entry; a missing or empty required key is an error naming the entry."""
    out = []
    for entry in entries:
        lacking = [k for k in keys if k != "case_id" and (k not in entry or entry[k] in (None, "", []))]
        if lacking:
            name = entry.get("case_id", entry.get("image", "?"))
            hint = _KEY_HINTS.get(lacking[0], "needed by the chosen label_mode")
            raise SystemExit(f"error: {source}: case {name} has no {lacking[0]!r}: {hint}")
        out.append({k: entry[k] for k in keys if k in entry})
    return out


def _check_files(entries: list[dict[str, Any]], keys: Sequence[str], source: str) -> None:
    missing = []
    for entry in entries:
        for key in keys:
            values = entry.get(key)
            values = values if isinstance(values, list) else [values]
            missing += [v for v in values if isinstance(v, str) and key != "case_id" and not os.path.exists(v)]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise SystemExit(f"error: {source}: file {missing[0]} does not exist{more}")


def bundle_datalists(
    dataset: str,
    dataset_dir: str | os.PathLike | None,
    *,
    fold: int = 0,
    num_folds: int = 5,
    datalist: str | os.PathLike | None = None,
    extra_keys: Sequence[str] = (),
    task: str = "kidney",
    subtask: int = 1,
    edition: str = "kits23",
) -> dict[str, list[dict[str, Any]]]:
    """``{"train": [...], "val": [...]}``: the cases of fold ``fold`` validate, the others train.

    Each training entry keeps only :data:`BASE_KEYS` of its data set plus ``extra_keys`` (e.g. ``"instances"``
    for the KiTS annotators, ``"teacher"`` for offline teacher maps), which must be present and non-empty; the
    validation entries keep the base keys only (validation compares with the reference label).

    Args:
        dataset, dataset_dir, datalist, num_folds, task, subtask, edition: see :func:`dataset_entries`.
        fold: the validation fold, in ``[0, num_folds)``.
        extra_keys: keys the label mode needs besides the base keys.

    Raises:
        SystemExit: one line ``error: ...`` for any problem with the data or the split.

    Example:
        >>> import tempfile
        >>> from monai_jdt.data.synthetic import write_synthetic_lits
        >>> root = write_synthetic_lits(tempfile.mkdtemp(), cases=4, size=16)
        >>> parts = bundle_datalists("lits", root, fold=1, num_folds=2)
        >>> [e["case_id"] for e in parts["train"]], [e["case_id"] for e in parts["val"]]
        (['volume-0', 'volume-1'], ['volume-2', 'volume-3'])
    """
    entries = dataset_entries(
        dataset, dataset_dir, datalist=datalist, num_folds=num_folds, task=task, subtask=subtask, edition=edition
    )
    source = f"datalist {datalist}" if datalist else f"dataset_dir {dataset_dir}"
    if not entries:
        raise SystemExit(f"error: {source}: no training case found")
    keys = tuple(dict.fromkeys((*BASE_KEYS[dataset], *extra_keys)))
    try:
        train, val = select_fold(entries, fold)
    except (ValueError, TypeError) as err:
        raise one_line_error(err, source) from None
    if not train:
        raise SystemExit(f"error: {source}: fold {fold} leaves no training case ({len(entries)} cases in all)")
    train, val = _project(train, keys, source), _project(val, BASE_KEYS[dataset], source)
    if datalist:
        _check_files(train, keys, source)
        _check_files(val, BASE_KEYS[dataset], source)
    return {"train": train, "val": val}


def inference_datalist(dataset_dir: str | os.PathLike, pattern: str) -> list[dict[str, str]]:
    """``[{"image": path}, ...]`` of the files matching ``pattern`` under ``dataset_dir`` (sorted).

    Args:
        dataset_dir: folder of the images (or a single image file).
        pattern: a glob relative to ``dataset_dir``; ``**`` matches any depth (e.g. ``"**/imaging.nii.gz"``).

    Raises:
        SystemExit: one line naming the folder and the pattern when nothing matches.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("b/imaging.nii.gz", "a/imaging.nii.gz", "a/other.nii.gz"):
        ...     (folder / name).parent.mkdir(exist_ok=True)
        ...     (folder / name).touch()
        >>> [pathlib.Path(e["image"]).parent.name for e in inference_datalist(folder, "**/imaging.nii*")]
        ['a', 'b']
    """
    path = Path(dataset_dir)
    if path.is_file():
        return [{"image": str(path.resolve())}]
    if not path.is_dir():
        raise SystemExit(f"error: dataset_dir {dataset_dir} is not an existing folder or image file")
    files = sorted(f for f in glob.glob(str(path / pattern), recursive=True) if os.path.isfile(f))
    if not files:
        raise SystemExit(f"error: dataset_dir {dataset_dir}: no image matches {pattern!r} (set --input_pattern)")
    return [{"image": str(Path(f).resolve())} for f in files]


def require_file(path: str | os.PathLike, what: str, hint: str | None = None) -> Path:
    """``path`` if it is a file, else ``SystemExit("error: <what> <path> does not exist (<hint>)")``.

    Example:
        >>> require_file("/no/such/model.pt", "the trained model", "run configs/train.json first")
        Traceback (most recent call last):
        SystemExit: error: the trained model /no/such/model.pt does not exist (run configs/train.json first)
    """
    if not Path(path).is_file():
        raise SystemExit(f"error: {what} {path} does not exist" + (f" ({hint})" if hint else ""))
    return Path(path)
