"""Per-annotator KiTS label maps from the KiTS21/23 instance files, as a function and MONAI transforms."""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import LoadImage, MapTransform, Transform

from monai_jdt.data._files import AFFINE_ATOL, Problems, read_header
from monai_jdt.data.kits import KITS_AGGREGATION_ORDER, KITS_LABELS, parse_instance_name
from monai_jdt.utils.checks import check_positive_int

__all__ = [
    "InstanceKey",
    "LoadKiTSAnnotators",
    "LoadKiTSAnnotatorsd",
    "annotator_label_maps",
    "annotator_plan",
    "load_kits_annotators",
]

#: ``(class name, instance, annotation)``, e.g. ``("tumor", 1, 2)`` for ``tumor_instance-1_annotation-2.nii.gz``.
InstanceKey = tuple[str, int, int]

_VALUE = {name: value for value, name in KITS_LABELS.items()}


def annotator_plan(
    keys: Iterable[InstanceKey], num_annotators: int | None = None
) -> tuple[int, list[tuple[InstanceKey, list[int]]]]:
    """Which label maps each instance annotation goes into, in the order KiTS paints them.

    Label map ``a`` (0-based) takes, for every instance, its ``a``-th annotation in annotation-number order
    (``a`` modulo the number of annotations of that instance). That is the KiTS sampling of one segmentation per
    group with zero offsets. The annotation numbers of different instances need not come from the same person,
    so "annotator" means "annotation slot", as in KiTS. Paint order: kidney, cyst, tumour
    (:data:`KITS_AGGREGATION_ORDER`), then instance and annotation number.

    Args:
        keys: the instance annotations available.
        num_annotators: label maps to build; default the smallest number of annotations of any instance (what
            KiTS uses), so no annotation is used twice.

    Returns:
        ``(number of maps, [(key, [map indices]), ...])`` in paint order; unused annotations are left out.

    Raises:
        ValueError: no keys, or an unknown class name.

    Example:
        >>> keys = [("kidney", 1, 1), ("kidney", 1, 2), ("tumor", 1, 1), ("tumor", 1, 2), ("tumor", 1, 3)]
        >>> annotator_plan(keys)
        (2, [(('kidney', 1, 1), [0]), (('kidney', 1, 2), [1]), (('tumor', 1, 1), [0]), (('tumor', 1, 2), [1])])
    """
    by_instance: dict[tuple[str, int], list[int]] = {}
    for cls, inst, ann in keys:
        if cls not in _VALUE or cls == "background":
            raise ValueError(f"instance class must be one of 'kidney', 'tumor', 'cyst', got {cls!r}")
        by_instance.setdefault((cls, inst), []).append(ann)
    if not by_instance:
        raise ValueError("annotator_plan needs at least one instance annotation, got none")
    count = min(len(v) for v in by_instance.values())
    if num_annotators is not None:
        count = check_positive_int("num_annotators", num_annotators)
    order = {value: rank for rank, value in enumerate(KITS_AGGREGATION_ORDER)}
    plan: dict[InstanceKey, list[int]] = {}
    for (cls, inst), anns in by_instance.items():
        anns = sorted(anns)
        for a in range(count):
            plan.setdefault((cls, inst, anns[a % len(anns)]), []).append(a)
    ranked = sorted(plan.items(), key=lambda kv: (order[_VALUE[kv[0][0]]], kv[0][1], kv[0][2]))
    return count, ranked


def _paint(out: torch.Tensor, mask: torch.Tensor | np.ndarray, value: int, maps: Sequence[int]) -> None:
    where = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask) > 0
    for a in maps:
        out[a][where.to(out.device)] = value


def annotator_label_maps(
    instance_masks: Mapping[InstanceKey, torch.Tensor | np.ndarray], num_annotators: int | None = None
) -> torch.Tensor:
    """One KiTS label map per annotator from binary instance masks: ``(A, *spatial)`` uint8, labels 0-3.

    Map ``a`` paints, for every instance, its annotation chosen by :func:`annotator_plan` (voxels ``> 0``) with the
    class label (1 kidney, 2 tumour, 3 cyst) in the order kidney, cyst, tumour, so a tumour overwrites a cyst,
    which overwrites a kidney: ``L_a(x) = max-precedence label of {c : x in M_{c,i,a}}``.

    Raises:
        ValueError: no masks, an unknown class, or masks of different shapes (every offending key is named).

    Example:
        >>> kidney = np.array([1, 1, 1, 0]); tumor_a = np.array([0, 1, 1, 1]); tumor_b = np.array([0, 0, 1, 0])
        >>> maps = annotator_label_maps({("kidney", 1, 1): kidney, ("kidney", 1, 2): kidney,
        ...                              ("tumor", 1, 1): tumor_a, ("tumor", 1, 2): tumor_b})
        >>> maps.tolist()
        [[1, 2, 2, 2], [1, 1, 2, 0]]
    """
    count, plan = annotator_plan(instance_masks.keys(), num_annotators)
    shapes = {key: tuple(instance_masks[key].shape) for key, _ in plan}
    first = next(iter(shapes.values()))
    wrong = [f"{k} {s}" for k, s in shapes.items() if s != first]
    if wrong:
        raise ValueError(f"instance masks must all have shape {first}, got {', '.join(wrong)}")
    out = torch.zeros((count, *first), dtype=torch.uint8)
    for key, maps in plan:
        _paint(out, instance_masks[key], _VALUE[key[0]], maps)
    return out


def _check_files(files: Sequence[str | os.PathLike]) -> dict[InstanceKey, Path]:
    problems = Problems()
    keyed: dict[InstanceKey, Path] = {}
    for f in files:
        key = parse_instance_name(f)
        if key is None:
            problems.invalid.append(f"{f} (not a KiTS instance file {{kidney,tumor,cyst}}_instance-I_annotation-J)")
        elif key in keyed:
            problems.invalid.append(f"{f} (duplicate of {keyed[key]})")
        elif not Path(f).is_file():
            problems.missing.append(str(f))
        else:
            keyed[key] = Path(f)
    problems.raise_if_any("KiTS instance files")
    if not keyed:
        raise ValueError("files must list at least one KiTS instance file, got none")
    headers = {key: read_header(f) for key, f in keyed.items()}
    ref_key = next(iter(keyed))
    shape, affine = headers[ref_key]
    for key, (s, a) in headers.items():
        if s != shape:
            problems.invalid.append(f"{keyed[key]} (shape {s} differs from {shape} of {keyed[ref_key]})")
        elif not np.allclose(a, affine, rtol=0.0, atol=AFFINE_ATOL):
            problems.invalid.append(f"{keyed[key]} (affine differs from that of {keyed[ref_key]})")
    problems.raise_if_any("KiTS instance files")
    return keyed


def load_kits_annotators(
    files: Sequence[str | os.PathLike], num_annotators: int | None = None, reader: Any = None
) -> MetaTensor:
    """Load KiTS21/23 instance files and build the per-annotator label maps as a ``(A, *spatial)`` MetaTensor.

    Each file is read once with :class:`monai.transforms.LoadImage` (``reader``: a MONAI reader name or object,
    default automatic) and painted into the maps that use it (see :func:`annotator_label_maps`). The result is
    uint8 in the files' voxel order and carries the metadata (affine, ...) of the first file, with the annotators
    on the channel axis (``original_channel_dim = 0``), like ``LoadImaged`` on a list of rater files.

    Raises:
        FileNotFoundError: files that do not exist (all listed).
        ValueError: names that are not KiTS instance files, duplicates, or files whose shape or affine differ
            (all listed; headers are compared before any voxel is read).
    """
    keyed = _check_files(files)
    count, plan = annotator_plan(keyed, num_annotators)
    loader = LoadImage(reader=reader, image_only=True, dtype=np.uint8)
    first = loader(keyed[plan[0][0]])
    out = torch.zeros((count, *first.shape), dtype=torch.uint8)
    meta: dict[str, Any] = dict(first.meta)
    for index, (key, maps) in enumerate(plan):
        img = first if index == 0 else loader(keyed[key])
        _paint(out, img.as_tensor(), _VALUE[key[0]], maps)
    meta["original_channel_dim"] = 0
    meta["filename_or_obj"] = str(keyed[plan[0][0]])
    return MetaTensor(out, meta=meta)


class LoadKiTSAnnotators(Transform):
    """Array transform: a list of KiTS instance files -> per-annotator label maps ``(A, *spatial)``.

    See :func:`load_kits_annotators`.

    Args:
        num_annotators: label maps to build; default the smallest number of annotations of any instance.
        reader: MONAI image reader (name or object) passed to :class:`monai.transforms.LoadImage`.
    """

    def __init__(self, num_annotators: int | None = None, reader: Any = None) -> None:
        self.num_annotators = None if num_annotators is None else check_positive_int("num_annotators", num_annotators)
        self.reader = reader

    def __call__(self, files: Sequence[str | os.PathLike]) -> MetaTensor:
        if isinstance(files, (str, os.PathLike)):
            raise TypeError(f"files must be a list of KiTS instance files, got a single path {files!r}")
        return load_kits_annotators(files, self.num_annotators, self.reader)


class LoadKiTSAnnotatorsd(MapTransform):
    """Dictionary transform: replace the instance-file list under ``keys`` by per-annotator label maps.

    Use it on the ``"instances"`` key of a :func:`kits_datalist` entry (KiTS21/23); then fuse the maps into a soft
    label, e.g. with ``FuseRatersd`` (method ``"mean"``) of :mod:`monai_jdt.transforms`.

    Args:
        keys: keys holding lists of instance files.
        output_keys: where to store the maps (same length as ``keys``); default replace ``keys``.
        num_annotators: label maps to build; default the smallest number of annotations of any instance.
        reader: MONAI image reader (name or object) passed to :class:`monai.transforms.LoadImage`.
        allow_missing_keys: skip missing keys instead of raising ``KeyError``.

    Example:
        >>> import tempfile
        >>> from monai_jdt.data import kits_datalist
        >>> from monai_jdt.data.synthetic import write_synthetic_kits
        >>> root = write_synthetic_kits(tempfile.mkdtemp(), edition="kits23", cases=1, size=32)
        >>> entry = kits_datalist(root, "kits23", folds=None)[0]
        >>> out = LoadKiTSAnnotatorsd("instances", output_keys="annotators")(entry)
        >>> tuple(out["annotators"].shape), sorted(set(out["annotators"].unique().tolist())) <= [0, 1, 2, 3]
        ((3, 16, 32, 32), True)
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_keys: KeysCollection | None = None,
        num_annotators: int | None = None,
        reader: Any = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        outs = (
            self.keys
            if output_keys is None
            else ((output_keys,) if isinstance(output_keys, str) else tuple(output_keys))
        )
        if len(outs) != len(self.keys):
            raise ValueError(f"output_keys must have one key per key ({len(self.keys)}), got {list(outs)}")
        self.output_keys: tuple[Hashable, ...] = outs
        self.loader = LoadKiTSAnnotators(num_annotators, reader)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            d[out_key] = self.loader(d[key])
        return d
