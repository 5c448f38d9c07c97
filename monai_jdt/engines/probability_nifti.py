"""Store class-probability maps ``(C, *spatial)`` as NIfTI, compactly and atomically, with an image's geometry.

NIfTI has no float16 data type (nibabel refuses it), so the compact default is 16-bit fixed point: ``uint16``
values ``k`` with ``scl_slope = 1 / 65535``, read back as ``k / 65535`` by nibabel and MONAI's ``LoadImage``. The
rounding residue of each voxel goes to its most probable class, so the stored probabilities of every voxel sum to
exactly 65535 / 65535 = 1; each value is within ``C / 2 / 65535`` of the original (``0.5 / 65535`` except for
the most probable class). ``"uint8"`` (``1 / 255`` steps) and ``"float32"`` (exact) are the alternatives.

The channels go last, as MONAI's ``NibabelWriter`` writes them: ``(X, Y, Z, C)``, and ``(X, Y, 1, C)`` for a 2D
image. ``LoadImage(ensure_channel_first=True)`` reads them back as ``(C, X, Y, Z)`` (``(C, X, Y, 1)`` for 2D).
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

__all__ = ["MAP_DTYPES", "quantize_probabilities", "save_probability_map"]

_SLAB_VOXELS = 1 << 24
#: storage types: name -> number of steps of the fixed-point grid (None: floating point).
MAP_DTYPES: dict[str, int | None] = {"uint16": 65535, "uint8": 255, "float32": None}


def check_map_dtype(dtype: str) -> str:
    """Check a storage type name (``"float16"`` gets an explanation: NIfTI cannot hold it)."""
    if dtype == "float16":
        raise ValueError(
            "dtype must be one of 'uint16', 'uint8', 'float32', got 'float16': NIfTI has no float16 data type; "
            "'uint16' stores the probabilities in 16 bits (fixed point, steps of 1/65535, exact sum to 1)"
        )
    if dtype not in MAP_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, MAP_DTYPES))}, got {dtype!r}")
    return dtype


def quantize_probabilities(probs: torch.Tensor, steps: int) -> torch.Tensor:
    """Integers ``k`` (int32, shape of ``probs``) with ``k / steps ~ probs`` and ``sum_c k = steps`` at every voxel.

    Each class is rounded to the nearest step; the residue ``steps - sum_c k`` goes to the most probable class
    (which keeps it within ``[0, steps]``).

    Example:
        >>> p = torch.tensor([[0.5, 0.2], [0.25, 0.3], [0.25, 0.5]])  # 3 classes, 2 voxels
        >>> quantize_probabilities(p, 10).tolist()  # 2.5 -> 2 (half to even), the residue 1 to the argmax
        [[6, 2], [2, 3], [2, 5]]
    """
    x = probs.float() * steps  # a new tensor: the in-place ops below never touch ``probs``
    x.clamp_(0, steps).round_()
    k = x.to(torch.int32)
    residue = steps - k.sum(0, keepdim=True, dtype=torch.int32)
    top = probs.max(0, keepdim=True).indices  # (torch.max is much faster than argmax over dim 0 on CPU)
    return k.scatter_add_(0, top, residue)


def _channels_last(array: np.ndarray) -> np.ndarray:
    out = np.moveaxis(array, 0, -1)  # a view: nibabel writes it in NIfTI's (Fortran) order in one pass
    if out.ndim == 3:  # 2D image: (X, Y, C) would read as a 3D volume; MONAI writes (X, Y, 1, C)
        out = out[:, :, None, :]
    return out


def _image_for(data: np.ndarray, affine: np.ndarray, reference: nib.Nifti1Image | None) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data, affine)
    if reference is not None:  # keep the image's qform/sform codes and units
        sform, scode = reference.get_sform(coded=True)
        qform, qcode = reference.get_qform(coded=True)
        if scode:
            img.set_sform(sform, int(scode))
        if qcode:
            img.set_qform(qform, int(qcode))
        img.header.set_xyzt_units(*reference.header.get_xyzt_units())
    img.header["descrip"] = b"monai_jdt class probabilities, channels last"
    return img


def save_probability_map(
    probs: torch.Tensor,
    path: str | os.PathLike,
    affine: np.ndarray,
    *,
    dtype: str = "uint16",
    reference: nib.Nifti1Image | None = None,
) -> Path:
    """Write ``probs`` ``(C, *spatial)`` (spatial 2D or 3D) atomically as NIfTI (see the module docstring).

    The data go to a hidden temporary file in the same folder, which is then renamed to ``path``: an interrupted
    write never leaves a partial file under ``path``.

    Args:
        probs: class probabilities, channel first.
        path: the ``.nii.gz``/``.nii`` file to write.
        affine: ``4 x 4`` voxel-to-world matrix of the image.
        dtype: ``"uint16"`` (default), ``"uint8"`` or ``"float32"``.
        reference: the image's NIfTI, whose qform/sform codes and units are copied.

    Raises:
        ValueError: an unknown ``dtype`` (``"float16"`` included: NIfTI cannot store it) or a bad shape.
    """
    steps = MAP_DTYPES[check_map_dtype(dtype)]
    if probs.ndim not in (3, 4):
        raise ValueError(f"probs must be (C, X, Y) or (C, X, Y, Z), got shape {tuple(probs.shape)}")
    probs = probs.detach().cpu()
    if steps is None:
        data = _channels_last(probs.float().numpy())
    else:
        data = np.empty(probs.shape, dtype=dtype)
        depth = max(1, _SLAB_VOXELS // max(1, probs[:, 0].numel()))  # contiguous slabs: bounded temporaries
        for start in range(0, probs.shape[1], depth):
            data[:, start : start + depth] = quantize_probabilities(probs[:, start : start + depth], steps).numpy()
        data = _channels_last(data)
    img = _image_for(data, np.asarray(affine, dtype=np.float64), reference)
    if steps is not None:
        img.header.set_slope_inter(1.0 / steps, 0.0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial{suffix}")
    try:
        nib.save(img, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
