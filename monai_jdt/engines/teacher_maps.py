"""Offline distillation: run a trained teacher over a datalist and write its class probabilities as NIfTI.

For each entry: the preprocessing (e.g. a bundle's ``LoadImaged`` ... ``Spacingd`` ... ``CropForegroundd``) ->
the teacher through the inferer (e.g. ``SlidingWindowInferer``) in eval mode under ``torch.no_grad()`` (autocast
on CUDA) -> softmax over the channels -> MONAI ``Invertd`` back to the image's voxel grid -> renormalisation ->
a NIfTI map with the image's affine (:mod:`monai_jdt.engines.probability_nifti`). The returned entries add
``output_key`` (default ``"teacher"``) with the map's path, so any trainer can load the maps as soft targets
(``LoadImaged(keys="teacher", ensure_channel_first=True)`` with the image's spatial transforms, and
``DistillationLoss(teacher_is_logits=False)``).

Voxels the inverted map does not cover (e.g. outside a ``CropForegroundd`` box, padded with zeros by the
inverse) get a one-hot ``background_class``; interpolated voxels at such borders are renormalised to sum to 1.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Invertd

from monai_jdt.engines.probability_nifti import check_map_dtype, save_probability_map

__all__ = ["TeacherMapReport", "map_names", "renormalize_probabilities", "write_teacher_maps"]

logger = logging.getLogger(__name__)
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".dcm", ".png", ".tif", ".tiff", ".npy")
_PRED_KEY = "__teacher_probabilities__"


@dataclass
class TeacherMapReport:
    """What :func:`write_teacher_maps` did.

    Attributes:
        entries: the input entries, each with ``output_key`` set to its map's absolute path.
        written: maps written in this run.
        skipped: maps that already existed and were kept (``overwrite=False``).
    """

    entries: list[dict[str, Any]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def _image_path(entry: Mapping[str, Any], image_key: str, index: int) -> str:
    value = entry.get(image_key) if isinstance(entry, Mapping) else None
    if isinstance(value, (list, tuple)) and value:
        value = value[0]  # multi-file image (e.g. one file per modality): the first one gives the geometry
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"datalist entry {index} must hold an image path under {image_key!r}, got {value!r}")
    return os.fspath(value)


def _check_images_exist(datalist: Sequence[Mapping[str, Any]], image_key: str) -> None:
    """Fail before any inference when an image file is missing (the error names it)."""
    for index, entry in enumerate(datalist):
        value = entry[image_key]
        for path in value if isinstance(value, (list, tuple)) else [value]:
            if not os.path.exists(path):
                raise FileNotFoundError(f"image file {path} of datalist entry {index} does not exist")


def _stem(path: str) -> tuple[str, ...]:
    pure = PurePath(path)
    name = pure.name
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return (*pure.parent.parts, name)


def map_names(
    datalist: Sequence[Mapping[str, Any]], image_key: str = "image", name_key: str | None = None
) -> list[str]:
    """Unique file names (without extension) for the maps of ``datalist``.

    With ``name_key`` the entry's value is the name. Otherwise the image file's name without extension, prefixed
    with as many parent folders as needed to make the names unique (KiTS ``case_00000/imaging.nii.gz`` ->
    ``case_00000_imaging``).

    Raises:
        ValueError: missing keys, or names that cannot be made unique.

    Example:
        >>> map_names([{"image": "/d/case_0/imaging.nii.gz"}, {"image": "/d/case_1/imaging.nii.gz"}])
        ['case_0_imaging', 'case_1_imaging']
    """
    if name_key is not None:
        names = []
        for i, entry in enumerate(datalist):
            if name_key not in entry:
                raise ValueError(f"datalist entry {i} has no name_key {name_key!r} (keys: {sorted(entry)})")
            names.append(str(entry[name_key]))
    else:
        parts = [_stem(_image_path(e, image_key, i)) for i, e in enumerate(datalist)]
        longest = max((len(p) for p in parts), default=1)
        for depth in range(1, longest + 1):
            names = ["_".join(q for q in p[-depth:] if q not in ("/", "\\")) for p in parts]
            if len(set(names)) == len(names):
                break
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"the teacher map names are not unique: {duplicates[:5]}; use name_key or distinct images")
    bad = [n for n in names if not n or os.sep in n or n.startswith(".")]
    if bad:
        raise ValueError(f"map names must be non-empty file names, got {bad[:5]}")
    return names


def renormalize_probabilities(probs: torch.Tensor, background_class: int = 0, eps: float = 1e-3) -> torch.Tensor:
    """Divide every voxel's probabilities by their sum; voxels with a sum ``<= eps`` become ``background_class``.

    Example:
        >>> p = torch.tensor([[0.3, 0.0], [0.3, 0.0]])  # 2 classes, 2 voxels: half-covered and uncovered
        >>> renormalize_probabilities(p).tolist()
        [[0.5, 1.0], [0.5, 0.0]]
    """
    p = probs.float().clamp_min(0)  # a new tensor: the in-place ops below never touch ``probs``
    total = p.sum(0, keepdim=True)
    covered = total > eps
    p.div_(torch.where(covered, total, torch.ones_like(total)))
    p.masked_fill_(~covered, 0.0)
    p[background_class].masked_fill_(~covered[0], 1.0)
    return p


def _reference_geometry(path: str, image: Any) -> tuple[np.ndarray, nib.Nifti1Image | None, tuple[int, ...] | None]:
    """The image's affine (and NIfTI header) as the file stores it, and its spatial shape."""
    if path.lower().endswith((".nii", ".nii.gz")):
        ref = nib.load(path)
        shape = tuple(int(s) for s in ref.shape[:3])
        dims = int(ref.header["dim"][0])
        return ref.affine, ref, shape[: max(2, min(dims, 3))]
    meta = getattr(image, "meta", {})
    affine = meta.get("original_affine", meta.get("affine"))
    if affine is None:
        raise ValueError(f"cannot find the affine of image {path}: no NIfTI header and no 'original_affine' meta")
    shape = meta.get("spatial_shape")
    return np.asarray(affine, dtype=np.float64), None, None if shape is None else tuple(int(s) for s in shape)


def _predict(network: torch.nn.Module, inferer: Callable, image: torch.Tensor, device: torch.device, amp: bool):
    autocast = torch.autocast("cuda") if amp and device.type == "cuda" else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        logits = inferer(image.unsqueeze(0).to(device), network)
    if not isinstance(logits, torch.Tensor) or logits.ndim != image.ndim + 1 or logits.shape[1] < 2:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the teacher must return (1, C >= 2, *spatial) logits for a {tuple(image.shape)} image, "
                         f"got {got}")  # fmt: skip
    return torch.softmax(logits.float(), dim=1)[0]


def _teacher_map(
    entry: Mapping[str, Any],
    preprocessing: Callable,
    network: torch.nn.Module,
    inferer: Callable,
    image_key: str,
    device: torch.device,
    invert_device: torch.device,
    amp: bool,
    background_class: int,
) -> tuple[torch.Tensor, Any]:
    data = dict(preprocessing(dict(entry)))
    image = data[image_key]
    probs = _predict(network, inferer, image, device, amp)
    if isinstance(image, MetaTensor) and image.applied_operations:
        data[_PRED_KEY] = MetaTensor(probs.to(invert_device))
        inverter = Invertd(keys=_PRED_KEY, transform=preprocessing, orig_keys=image_key, nearest_interp=False,
                           to_tensor=True)  # fmt: skip
        probs = inverter(data)[_PRED_KEY]
    probs = probs.as_tensor() if isinstance(probs, MetaTensor) else probs
    return renormalize_probabilities(probs, background_class), image


def write_teacher_maps(
    network: torch.nn.Module,
    datalist: Sequence[Mapping[str, Any]],
    preprocessing: Callable[[dict], Mapping[str, Any]],
    inferer: Callable[[torch.Tensor, torch.nn.Module], torch.Tensor],
    output_dir: str | os.PathLike,
    *,
    image_key: str = "image",
    output_key: str = "teacher",
    output_postfix: str = "teacher",
    name_key: str | None = None,
    dtype: str = "uint16",
    device: str | torch.device = "cpu",
    invert_device: str | torch.device | None = None,
    amp: bool = True,
    overwrite: bool = False,
    background_class: int = 0,
) -> TeacherMapReport:
    """Write the teacher's softmax probabilities of every entry as ``<output_dir>/<name>_<postfix>.nii.gz``.

    Args:
        network: the teacher (logits out); moved to ``device`` and put in eval mode.
        datalist: entries with an image path under ``image_key`` (other keys are kept in the returned entries).
        preprocessing: dictionary transform from an entry to the network input (``LoadImaged`` first); its
            invertible spatial transforms are undone with ``Invertd``.
        inferer: e.g. ``monai.inferers.SlidingWindowInferer``; called as ``inferer(image[None], network)``.
        output_dir: folder of the maps (created).
        image_key: key of the image path in the entries and of the image in the preprocessed dict.
        output_key: key added to the returned entries, holding the map's path.
        output_postfix: file names are ``<name>_<output_postfix>.nii.gz``.
        name_key: entry key holding a unique case name; default: derived from the image file names
            (:func:`map_names`).
        dtype: ``"uint16"`` (16-bit fixed point, the default; NIfTI has no float16), ``"uint8"`` or ``"float32"``.
        device: where the teacher runs.
        invert_device: where ``Invertd`` resamples (default ``device``; ``"cpu"`` saves GPU memory).
        amp: autocast the teacher on CUDA (ignored on CPU).
        overwrite: rewrite existing maps; by default an existing map is kept and its case not run, so an
            interrupted run resumes where it stopped (maps are written atomically).
        background_class: class given to voxels the inverted map does not cover.

    Returns:
        A :class:`TeacherMapReport` with the new entries and the written and skipped files.

    Raises:
        ValueError: a bad ``dtype``, an entry without an image path, non-unique names, a teacher output that is
            not ``(1, C >= 2, ...)`` logits, or a map whose shape differs from the image's after inverting the
            preprocessing (the preprocessing is not invertible).
        FileNotFoundError: a missing image file (checked for every entry before any inference).

    Example:
        >>> import tempfile, pathlib, nibabel as nib, numpy as np
        >>> from monai.inferers import SlidingWindowInferer
        >>> from monai.networks.nets import UNet
        >>> from monai.transforms import Compose, LoadImaged, Spacingd
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> nib.save(nib.Nifti1Image(np.random.rand(20, 18, 6).astype("float32"), np.diag([0.8, 0.8, 2, 1])),
        ...          folder / "ct.nii.gz")
        >>> pre = Compose([LoadImaged("image", ensure_channel_first=True), Spacingd("image", (1.6, 1.6, 2.0))])
        >>> net = UNet(3, 1, 3, channels=(4, 8), strides=(2,))
        >>> report = write_teacher_maps(net, [{"image": str(folder / "ct.nii.gz")}], pre,
        ...                             SlidingWindowInferer((8, 8, 4)), folder / "maps")
        >>> saved = nib.load(report.entries[0]["teacher"])
        >>> saved.shape, bool(np.allclose(saved.get_fdata().sum(-1), 1))
        ((20, 18, 6, 3), True)
    """
    dtype = check_map_dtype(dtype)
    device = torch.device(device)
    invert_device = device if invert_device is None else torch.device(invert_device)
    names = map_names(datalist, image_key, name_key)
    _check_images_exist(datalist, image_key)
    out_dir = Path(output_dir)
    network = network.to(device).eval()
    report = TeacherMapReport()
    for index, (entry, name) in enumerate(zip(datalist, names)):
        path = (out_dir / f"{name}_{output_postfix}.nii.gz").resolve()
        report.entries.append({**entry, output_key: str(path)})
        if path.exists() and not overwrite:
            report.skipped.append(path)
            continue
        image_path = _image_path(entry, image_key, index)
        probs, image = _teacher_map(entry, preprocessing, network, inferer, image_key, device, invert_device, amp,
                                    background_class)  # fmt: skip
        affine, reference, shape = _reference_geometry(image_path, image)
        if shape is not None and tuple(probs.shape[1:]) != shape:
            raise ValueError(f"the teacher map of {image_path} has spatial shape {tuple(probs.shape[1:])} after "
                             f"inverting the preprocessing, the image has {shape}: the preprocessing's spatial "
                             "transforms must be invertible (MONAI InvertibleTransform)")  # fmt: skip
        save_probability_map(probs, path, affine, dtype=dtype, reference=reference)
        report.written.append(path)
        logger.info("teacher map %d/%d: %s", index + 1, len(names), path)
    return report
