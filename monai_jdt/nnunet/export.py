"""Write data sets in nnU-Net v2's raw format (``DatasetXXX_Name/{dataset.json, imagesTr, labelsTr}``).

nnU-Net's raw layout (``documentation/dataset_format.md`` of nnU-Net v2)::

    nnUNet_raw/Dataset501_SynthLiTS/
        dataset.json                 {"channel_names": {"0": "CT"}, "labels": {...}, "numTraining": N,
                                      "file_ending": ".nii.gz"[, "regions_class_order": [...]]}
        imagesTr/CASE_0000.nii.gz    one file per input channel (4-digit channel index)
        labelsTr/CASE.nii.gz         integer labels 0..K (plus the "ignore" label, the highest one)

Region-based training is declared by tuple label values (``"liver": [1, 2]``) plus ``regions_class_order``; the
ignore label by a label named ``"ignore"``. This module does not import nnU-Net.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_jdt.utils.atomic import atomic_write_text
from monai_jdt.utils.checks import check_bool, check_option, check_positive_int

__all__ = [
    "SYNTHETIC_LABELS",
    "dataset_folder_name",
    "write_nnunet_dataset",
    "write_synthetic_nnunet_dataset",
]

#: label definitions of the synthetic data sets: plain labels, and nnU-Net regions with their class order.
SYNTHETIC_LABELS: dict[str, dict[str, Any]] = {
    "lits": {
        "labels": {"background": 0, "liver": 1, "tumor": 2},
        "regions": {"background": 0, "liver": [1, 2], "tumor": 2},
        "regions_class_order": [1, 2],
    },
    "kits": {
        "labels": {"background": 0, "kidney": 1, "tumor": 2, "cyst": 3},
        "regions": {"background": 0, "kidney_and_masses": [1, 2, 3], "masses": [2, 3], "tumor": 2},
        "regions_class_order": [1, 3, 2],
    },
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``Dataset{id:03d}_{name}``, nnU-Net's folder name (id in ``[1, 999]``, name of letters, digits, ``_-``).

    Example:
        >>> dataset_folder_name(501, "SynthLiTS")
        'Dataset501_SynthLiTS'
    """
    dataset_id = check_positive_int("dataset_id", dataset_id)
    if dataset_id > 999:
        raise ValueError(f"dataset_id must be in [1, 999] (nnU-Net uses three digits), got {dataset_id}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be letters, digits, '_' or '-' (no spaces, not empty), got {name!r}")
    return f"Dataset{dataset_id:03d}_{name}"


def _label_values(labels: Mapping[str, Any]) -> tuple[set[int], int | None]:
    """(every integer label value a label file may hold, the ignore label or None); checks nnU-Net's rules."""
    if "background" not in labels or labels["background"] != 0:
        raise ValueError(f"labels must map 'background' to 0, got {dict(labels)}")
    values: set[int] = set()
    for key, value in labels.items():
        parts = value if isinstance(value, (list, tuple)) else [value]
        for v in parts:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"label values must be integers >= 0 (or lists of them), got {key!r}: {value!r}")
            values.add(int(v))
    ignore = labels.get("ignore")
    if ignore is not None and int(ignore) != max(values):
        raise ValueError(f"the 'ignore' label must be the highest label value {max(values)}, got {ignore}")
    return values, None if ignore is None else int(ignore)


def _as_paths(value: Any, key: str, case: str) -> list[Path]:
    items = value if isinstance(value, (list, tuple)) else [value]
    paths = [Path(os.fspath(v)) for v in items]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{key} file of case {case!r} does not exist: {p}")
    return paths


def _write_volume(src: Path, dst: Path, label_values: set[int] | None, edit: Any = None) -> None:
    """Copy one NIfTI as ``.nii.gz`` (header/affine kept); labels are checked and stored as uint8/int16."""
    import nibabel as nib

    img = nib.load(str(src))
    if label_values is None:
        out = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header)
    else:
        data = np.asanyarray(img.dataobj)
        if not np.all(np.equal(np.mod(data, 1), 0)):
            raise ValueError(f"label file {src} holds non-integer values")
        data = data.astype(np.int64)
        if edit is not None:
            data = edit(data, tuple(float(z) for z in img.header.get_zooms()[: data.ndim]))
        found = {int(v) for v in np.unique(data)}
        if not found <= label_values:
            raise ValueError(f"label file {src} holds values {sorted(found - label_values)} not declared in labels")
        dtype = np.uint8 if max(found) < 256 else np.int16
        out = nib.Nifti1Image(data.astype(dtype), img.affine, img.header)
        out.set_data_dtype(dtype)
    nib.save(out, str(dst))


def write_nnunet_dataset(
    entries: Iterable[Mapping[str, Any]],
    out: str | os.PathLike,
    dataset_id: int,
    name: str,
    labels: Mapping[str, Any],
    channel_names: Sequence[str] = ("CT",),
    regions_class_order: Sequence[int] | None = None,
    *,
    label_edit: Any = None,
) -> Path:
    """Write datalist entries as an nnU-Net raw data set and return its folder ``out/DatasetXXX_Name``.

    Args:
        entries: dicts with ``"image"`` (one path, or one per channel), ``"label"`` (path) and optionally
            ``"case_id"`` (default ``case_XXXX`` by position), e.g. from :func:`monai_jdt.data.load_datalist`.
        out: the ``nnUNet_raw`` folder.
        dataset_id: three-digit data set id (1-999).
        name: data set name (letters, digits, ``_``, ``-``).
        labels: nnU-Net's ``labels`` (``{"background": 0, ...}``; lists of ints declare regions; ``"ignore"``
            must be the highest value).
        channel_names: one name per input channel; ``"CT"`` selects nnU-Net's CT normalisation.
        regions_class_order: required with region labels (nnU-Net's ``regions_class_order``).
        label_edit: optional ``f(label, voxel_sizes) -> label`` applied to each label array (int64) before it is
            checked and written.

    Returns:
        The data set folder.

    Raises:
        FileNotFoundError: a listed image or label file does not exist (the message names it).
        ValueError: a bad id/name, labels that break nnU-Net's rules, label files with undeclared values, an entry
            whose number of images differs from ``channel_names``, regions without ``regions_class_order``.

    Example:
        >>> dataset_folder_name(7, "Liver")  # the folder this writes under ``out``
        'Dataset007_Liver'
    """
    folder = Path(out) / dataset_folder_name(dataset_id, name)
    values, _ = _label_values(labels)
    has_regions = any(isinstance(v, (list, tuple)) for v in labels.values())
    if has_regions and regions_class_order is None:
        raise ValueError("labels declare regions (list values), so regions_class_order is required, got None")
    channels = list(channel_names)
    if not channels:
        raise ValueError("channel_names must name at least one input channel, got none")
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    count = 0
    for position, entry in enumerate(entries):
        case = str(entry.get("case_id") or f"case_{position:04d}")
        images = _as_paths(entry["image"], "image", case)
        if len(images) != len(channels):
            raise ValueError(f"case {case!r} has {len(images)} image files but channel_names has {len(channels)}")
        label = _as_paths(entry["label"], "label", case)[0]
        for k, image in enumerate(images):
            _write_volume(image, folder / "imagesTr" / f"{case}_{k:04d}.nii.gz", None)
        _write_volume(label, folder / "labelsTr" / f"{case}.nii.gz", values, label_edit)
        count += 1
    if count == 0:
        raise ValueError("entries is empty: an nnU-Net data set needs at least one training case")
    meta: dict[str, Any] = {
        "channel_names": {str(i): c for i, c in enumerate(channels)},
        "labels": {k: list(v) if isinstance(v, (list, tuple)) else int(v) for k, v in labels.items()},
        "numTraining": count,
        "file_ending": ".nii.gz",
    }
    if regions_class_order is not None:
        meta["regions_class_order"] = [int(v) for v in regions_class_order]
    atomic_write_text(folder / "dataset.json", json.dumps(meta, indent=2, sort_keys=False) + "\n")
    return folder


def _ignore_odd_slices(ignore: int):
    def edit(label: np.ndarray, zooms: tuple[float, ...]) -> np.ndarray:
        out = np.moveaxis(label.copy(), int(np.argmax(zooms)), 0)
        out[1::2] = ignore  # sparse annotation: every other slice (thickest axis) is unlabelled
        return np.moveaxis(out, 0, int(np.argmax(zooms)))

    return edit


def _synthetic_entries(like: str, root: Path, cases: int, size: Any, seed: int) -> list[dict[str, Any]]:
    if like == "lits":
        from monai_jdt.data.synthetic import write_synthetic_lits

        write_synthetic_lits(root, cases=cases, size=size, seed=seed, test_cases=0, batch_folders=False,
                             compress=True, progress_bar=False)
        return [{"image": root / f"volume-{n}.nii.gz", "label": root / f"segmentation-{n}.nii.gz",
                 "case_id": f"lits_{n:03d}"} for n in range(cases)]
    from monai_jdt.data.synthetic import write_synthetic_kits

    write_synthetic_kits(root, edition="kits23", cases=cases, size=size, seed=seed, annotations=1,
                         progress_bar=False)
    return [{"image": root / f"case_{n:05d}" / "imaging.nii.gz",
             "label": root / f"case_{n:05d}" / "segmentation.nii.gz", "case_id": f"kits_{n:03d}"} for n in range(cases)]


def write_synthetic_nnunet_dataset(
    out: str | os.PathLike,
    *,
    like: str = "lits",
    dataset_id: int = 501,
    name: str | None = None,
    cases: int = 6,
    size: int | Sequence[int] | None = (48, 48, 24),
    seed: int = 0,
    regions: bool = False,
    ignore_label: bool = False,
) -> Path:
    """Write a small synthetic LiTS- or KiTS-like CT data set in nnU-Net's raw format and return its folder.

    The cases come from :mod:`monai_jdt.data.synthetic` (CT in HU, liver/tumour or kidney/tumour/cyst labels,
    deterministic by ``seed``), converted to nnU-Net's layout with :func:`write_nnunet_dataset`.

    Args:
        out: the ``nnUNet_raw`` folder.
        like: ``"lits"`` (labels background/liver/tumor) or ``"kits"`` (background/kidney/tumor/cyst).
        dataset_id: three-digit data set id.
        name: data set name (default ``SynthLiTS``/``SynthKiTS`` plus ``Regions``/``Ignore`` suffixes).
        cases: training cases (nnU-Net's 5-fold split needs at least 5; 2 works with fold ``all``).
        size: voxels per case, ``n`` or ``(x, y, z)``.
        seed: random seed.
        regions: declare nnU-Net regions (LiTS: liver = {1, 2}, tumor = {2}; KiTS: the KiTS HECs) instead of
            labels, which makes nnU-Net train with sigmoid outputs.
        ignore_label: add an ``"ignore"`` label (the highest value) on every other slice, as a sparsely
            annotated data set.

    Raises:
        ValueError: an unknown ``like``, a bad id/name/size/count.

    Example:
        >>> import tempfile, json, pathlib
        >>> folder = write_synthetic_nnunet_dataset(tempfile.mkdtemp(), cases=2, size=(16, 16, 8))
        >>> json.loads((folder / "dataset.json").read_text())["labels"]
        {'background': 0, 'liver': 1, 'tumor': 2}
        >>> sorted(p.name for p in (folder / "labelsTr").iterdir())
        ['lits_000.nii.gz', 'lits_001.nii.gz']
    """
    like = check_option("like", like, tuple(SYNTHETIC_LABELS))
    cases = check_positive_int("cases", cases)
    check_bool("regions", regions)
    check_bool("ignore_label", ignore_label)
    spec = SYNTHETIC_LABELS[like]
    labels = dict(spec["regions"] if regions else spec["labels"])
    edit = None
    if ignore_label:
        ignore = max(max(v) if isinstance(v, list) else v for v in labels.values()) + 1
        labels["ignore"] = ignore
        edit = _ignore_odd_slices(ignore)
    if name is None:
        name = {"lits": "SynthLiTS", "kits": "SynthKiTS"}[like] + ("Regions" if regions else "") + (
            "Ignore" if ignore_label else "")
    dataset_folder_name(dataset_id, name)  # check before generating anything
    with tempfile.TemporaryDirectory(prefix="monai_jdt_synth_") as tmp:
        entries = _synthetic_entries(like, Path(tmp), cases, size, seed)
        return write_nnunet_dataset(
            entries, out, dataset_id, name, labels, ("CT",),
            spec["regions_class_order"] if regions else None, label_edit=edit,
        )
