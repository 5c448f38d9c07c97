"""Boundary label smoothing (BLS) as MONAI array and dictionary transforms, 2D and 3D.

Wang et al., *Dice Semimetric Losses* (arXiv 2303.16296) and *Jaccard Metric Losses* (arXiv 2302.05666) train with
soft labels that are the one-hot label smoothed at class boundaries only::

    y = (1 - epsilon) * onehot + epsilon / C   at boundary voxels,   onehot elsewhere,   0 at ignored voxels

A voxel is a boundary voxel iff its box window (``kernel_size`` voxels, or ``radius_mm`` millimetres per axis
using the image spacing) holds a different non-ignored label; see
:func:`monai_jdt.transforms.functional.boundary_mask`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, ensure_tuple_rep

from monai_jdt.transforms._meta import (
    apply_with_valid_mask,
    check_ignore_index,
    check_spatial,
    image_spacing,
    like_input,
    to_tensor_pair,
)
from monai_jdt.transforms.functional.boundary import box_half_widths, spacing_half_widths
from monai_jdt.transforms.functional.smoothing import _check_dtype, boundary_label_smoothing
from monai_jdt.utils.checks import check_in_range, check_positive_int

__all__ = [
    "BoundaryLabelSmoothing",
    "BoundaryLabelSmoothingD",
    "BoundaryLabelSmoothingDict",
    "BoundaryLabelSmoothingd",
]


def _length(value: Any) -> int:
    return len(value) if isinstance(value, Sequence) and not isinstance(value, str) else 1


class BoundaryLabelSmoothing(Transform):
    """Boundary label smoothing of one channel-first label image.

    Input: an index map ``(1, H, W[, D])`` or a one-hot/soft map ``(C, H, W[, D])`` (tensor, MetaTensor or numpy).
    Output: ``(C, H, W[, D])`` float soft labels with the input's metadata; every non-ignored voxel sums to 1.
    For one-hot/soft input the boundary comes from the argmax and a soft vector ``y`` becomes
    ``(1 - epsilon) * y + epsilon / C`` at boundary voxels (kept elsewhere); all-zero vectors are ignored voxels.

    Example:
        >>> lab = torch.tensor([[[0, 0, 1, 1, 1]]])  # (1, H=1, W=5)
        >>> BoundaryLabelSmoothing(num_classes=2, epsilon=0.5)(lab)[1]
        metatensor([[0.0000, 0.2500, 0.7500, 1.0000, 1.0000]])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        num_classes: int,
        epsilon: float = 0.5,
        kernel_size: int | Sequence[int] = 3,
        radius_mm: float | Sequence[float] | None = None,
        spacing: float | Sequence[float] | None = None,
        ignore_index: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """
        Args:
            num_classes: number of classes ``C >= 2``.
            epsilon: smoothing strength in ``[0, 1]`` (papers: 0.5).
            kernel_size: odd boundary window in voxels, one int or one per spatial axis (papers: 3). Not used
                when ``radius_mm`` is given.
            radius_mm: boundary window half-size in mm, one value or one per axis. The half-width on axis ``a`` is
                ``floor(radius_mm_a / spacing_a)`` voxels (a box): 2 mm on (1, 1, 5) mm voxels is a 5 x 5 x 1 window.
            spacing: voxel size in mm per axis; by default read from the MetaTensor's affine (``pixdim``).
                Only used with ``radius_mm``.
            ignore_index: label of ignored voxels of an index map: all-zero output vectors, never boundary, never
                a different neighbour. One-hot/soft input marks ignored voxels with all-zero vectors instead.
            dtype: floating dtype of the output.

        Raises:
            TypeError, ValueError: invalid arguments (named in the message).
        """
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.epsilon = check_in_range("epsilon", epsilon, 0.0, 1.0)
        box_half_widths(kernel_size, _length(kernel_size))
        if radius_mm is not None:
            n = max(_length(radius_mm), _length(spacing))
            spacing_half_widths(radius_mm, 1.0 if spacing is None else spacing, n)
        elif spacing is not None:
            raise ValueError("spacing is only used with radius_mm; pass radius_mm or leave spacing=None")
        self.kernel_size = kernel_size
        self.radius_mm = radius_mm
        self.spacing = spacing
        self.ignore_index = check_ignore_index(ignore_index)
        self.dtype = _check_dtype(dtype)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Smooth ``img`` ``(1 or C, H, W[, D])``; returns ``(C, H, W[, D])`` with ``img``'s metadata."""
        holder, plain = to_tensor_pair(img)
        spatial_dims = check_spatial(plain)
        spacing = None if self.radius_mm is None else image_spacing(img, spatial_dims, self.spacing)
        out = boundary_label_smoothing(
            plain[None],
            self.num_classes,
            self.epsilon,
            self.kernel_size,
            self.radius_mm,
            spacing,
            self.ignore_index,
            dtype=self.dtype,
        )[0]
        return like_input(out, holder)


class BoundaryLabelSmoothingd(MapTransform):
    """Dictionary version of :class:`BoundaryLabelSmoothing`; can also store the valid-voxel mask.

    Example:
        >>> d = BoundaryLabelSmoothingd("label", num_classes=2, ignore_index=255, mask_key="mask")(
        ...     {"label": torch.tensor([[[0, 1, 1, 255]]])})
        >>> d["label"][1], d["mask"]
        (metatensor([[0.2500, 0.7500, 1.0000, 0.0000]]), metatensor([[[ True,  True,  True, False]]]))
    """

    backend = BoundaryLabelSmoothing.backend

    def __init__(
        self,
        keys: KeysCollection,
        num_classes: int,
        epsilon: float = 0.5,
        kernel_size: int | Sequence[int] = 3,
        radius_mm: float | Sequence[float] | None = None,
        spacing: float | Sequence[float] | None = None,
        ignore_index: int | None = None,
        mask_key: str | Sequence[str] | None = None,
        dtype: torch.dtype = torch.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: keys of the label images to smooth.
            num_classes, epsilon, kernel_size, radius_mm, spacing, ignore_index, dtype: see
                :class:`BoundaryLabelSmoothing`.
            mask_key: key (or one key per entry of ``keys``) to store a ``(1, H, W[, D])`` bool MetaTensor that is
                True where the voxel counts (False at ignored voxels), for the losses' ``mask``. None: no mask.
            allow_missing_keys: don't raise if a key is missing.
        """
        super().__init__(keys, allow_missing_keys)
        self.smoother = BoundaryLabelSmoothing(
            num_classes, epsilon, kernel_size, radius_mm, spacing, ignore_index, dtype
        )
        self.mask_keys = ensure_tuple_rep(mask_key, len(self.keys))

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        return apply_with_valid_mask(self, data, self.smoother, self.mask_keys)


BoundaryLabelSmoothingD = BoundaryLabelSmoothingDict = BoundaryLabelSmoothingd
