"""MetaTensor helpers shared by the transforms: tensor in, output with the input's metadata out."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.data.utils import affine_to_spacing
from monai.transforms import MapTransform
from monai.utils import convert_to_dst_type, convert_to_tensor

from monai_jdt.utils.errors import ShapeError

__all__ = [
    "apply_with_valid_mask",
    "check_ignore_index",
    "check_spatial",
    "image_spacing",
    "like_input",
    "to_tensor_pair",
    "valid_mask",
]


def to_tensor_pair(img: Any, name: str = "img") -> tuple[torch.Tensor, torch.Tensor]:
    """``(meta_holder, plain)``: ``img`` as a (Meta)Tensor to copy metadata from, and as a plain tensor."""
    if not isinstance(img, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{name} must be a torch.Tensor, MetaTensor or numpy array, got {type(img).__name__}")
    holder = convert_to_tensor(img, track_meta=get_track_meta())
    plain = holder.as_subclass(torch.Tensor) if isinstance(holder, MetaTensor) else holder
    return holder, plain


def like_input(out: torch.Tensor, holder: torch.Tensor) -> NdarrayOrTensor:
    """``out`` as a MetaTensor with ``holder``'s metadata (affine, filename, ...) when metadata is tracked."""
    result, *_ = convert_to_dst_type(out, holder, dtype=out.dtype)
    return result


def image_spacing(img: Any, spatial_dims: int, spacing: Sequence[float] | float | None) -> Any:
    """Voxel spacing in mm: ``spacing`` when given, else from the affine of ``img`` (a MetaTensor).

    Raises:
        ValueError: no ``spacing`` and ``img`` is not a MetaTensor (a plain tensor or array has no spacing; it
            is not silently taken as 1 mm).
    """
    if spacing is not None:
        return spacing
    if not isinstance(img, MetaTensor):
        raise ValueError(
            "radius_mm needs the voxel spacing: pass a MetaTensor (e.g. from LoadImage) whose affine gives it, "
            f"or pass spacing=...; got a {type(img).__name__} without metadata"
        )
    affine = img.affine
    if affine.ndim != 2 or affine.shape[0] < spatial_dims + 1:
        raise ShapeError(f"image affine must be a ({spatial_dims + 1}+)-square matrix, got shape {tuple(affine.shape)}")
    return affine_to_spacing(affine, r=spatial_dims).tolist()


def check_ignore_index(ignore_index: Any) -> int | None:
    """``ignore_index`` must be an int or None."""
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} {ignore_index!r}")
    return ignore_index


def check_spatial(img: torch.Tensor, name: str = "img") -> int:
    """Number of spatial dims of a channel-first image; it must be 2 or 3."""
    if img.ndim not in (3, 4):
        raise ShapeError(
            f"{name} must be channel-first (1 or C, H, W[, D]) with 2 or 3 spatial dims, got shape {tuple(img.shape)}"
        )
    return img.ndim - 1


def valid_mask(out: NdarrayOrTensor) -> NdarrayOrTensor:
    """``(1, *spatial)`` bool with ``out``'s metadata: True where the soft label ``out`` ``(C, *spatial)`` is not the
    all-zero vector of an ignored voxel."""
    holder, plain = to_tensor_pair(out, name="out")
    return like_input(plain.sum(0, keepdim=True) > 0, holder)


def apply_with_valid_mask(
    transform: MapTransform,
    data: Mapping[Hashable, NdarrayOrTensor],
    func: Callable[[NdarrayOrTensor], NdarrayOrTensor],
    mask_keys: Sequence[Hashable | None],
) -> dict[Hashable, NdarrayOrTensor]:
    """Apply ``func`` to each of ``transform``'s keys in ``data``, optionally storing the valid-voxel mask.

    The ``__call__`` of the soft-label dictionary transforms: a shallow copy of ``data`` where each key of
    ``transform.key_iterator`` holds ``func(data[key])`` and, where its ``mask_keys`` entry is not None, that entry
    holds :func:`valid_mask` of the result.

    Args:
        transform: the dictionary transform whose keys (and ``allow_missing_keys``) select the entries.
        data: the data dict; it is not modified.
        func: the array transform producing a ``(C, *spatial)`` soft label.
        mask_keys: one mask key or None per entry of ``transform.keys``.

    Returns:
        The new data dict.
    """
    d = dict(data)
    for key, mask_key in transform.key_iterator(d, mask_keys):
        d[key] = func(d[key])
        if mask_key is not None:
            d[mask_key] = valid_mask(d[key])
    return d
