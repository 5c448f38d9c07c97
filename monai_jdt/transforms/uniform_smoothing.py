"""Vanilla (uniform) label smoothing as MONAI array and dictionary transforms.

``y = (1 - epsilon) * onehot + epsilon / C`` at every non-ignored voxel (Szegedy et al., arXiv 1512.00567): the soft
target of the CE-LS baselines of Wang et al. (arXiv 2303.16296, 2302.05666), usable with any soft-label loss. Unlike
MONAI's ``CrossEntropyLoss(label_smoothing=...)`` it produces the target itself, so the same smoothed target can be
given to the Dice/Jaccard losses.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, ensure_tuple_rep

from monai_jdt.transforms._meta import (
    apply_with_valid_mask,
    check_ignore_index,
    check_spatial,
    like_input,
    to_tensor_pair,
)
from monai_jdt.transforms.functional.smoothing import _check_dtype, label_smoothing
from monai_jdt.utils.checks import check_in_range, check_positive_int

__all__ = ["LabelSmoothing", "LabelSmoothingD", "LabelSmoothingDict", "LabelSmoothingd"]


class LabelSmoothing(Transform):
    """Uniform label smoothing of one channel-first label image.

    Input: an index map ``(1, H, W[, D])`` or one-hot/soft ``(C, H, W[, D])``; output ``(C, H, W[, D])`` float with the
    input's metadata. Soft vectors ``y`` become ``(1 - epsilon) * y + epsilon / C``; all-zero (ignored) vectors stay 0.

    Example:
        >>> LabelSmoothing(num_classes=4, epsilon=0.2)(torch.tensor([[[3, 0]]]))[:, 0, 0]
        metatensor([0.0500, 0.0500, 0.0500, 0.8500])
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        num_classes: int,
        epsilon: float = 0.1,
        ignore_index: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """
        Args:
            num_classes: number of classes ``C >= 2``.
            epsilon: smoothing strength in ``[0, 1]`` (default 0.1, the usual CE-LS value).
            ignore_index: label of ignored voxels of an index map (all-zero output vectors).
            dtype: floating dtype of the output.

        Raises:
            TypeError, ValueError: invalid arguments (named in the message).
        """
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.epsilon = check_in_range("epsilon", epsilon, 0.0, 1.0)
        self.ignore_index = check_ignore_index(ignore_index)
        self.dtype = _check_dtype(dtype)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Smooth ``img`` ``(1 or C, H, W[, D])``; returns ``(C, H, W[, D])`` with ``img``'s metadata."""
        holder, plain = to_tensor_pair(img)
        check_spatial(plain)
        out = label_smoothing(plain[None], self.num_classes, self.epsilon, self.ignore_index, dtype=self.dtype)[0]
        return like_input(out, holder)


class LabelSmoothingd(MapTransform):
    """Dictionary version of :class:`LabelSmoothing`; can also store the valid-voxel mask.

    Example:
        >>> LabelSmoothingd("label", num_classes=2, epsilon=0.2)({"label": torch.tensor([[[0, 1]]])})["label"][1]
        metatensor([[0.1000, 0.9000]])
    """

    backend = LabelSmoothing.backend

    def __init__(
        self,
        keys: KeysCollection,
        num_classes: int,
        epsilon: float = 0.1,
        ignore_index: int | None = None,
        mask_key: str | Sequence[str] | None = None,
        dtype: torch.dtype = torch.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: keys of the label images to smooth.
            num_classes, epsilon, ignore_index, dtype: see :class:`LabelSmoothing`.
            mask_key: key (or one per entry of ``keys``) to store a ``(1, H, W[, D])`` bool MetaTensor, True where
                the voxel counts (False at ignored voxels). None: no mask.
            allow_missing_keys: don't raise if a key is missing.
        """
        super().__init__(keys, allow_missing_keys)
        self.smoother = LabelSmoothing(num_classes, epsilon, ignore_index, dtype)
        self.mask_keys = ensure_tuple_rep(mask_key, len(self.keys))

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        return apply_with_valid_mask(self, data, self.smoother, self.mask_keys)


LabelSmoothingD = LabelSmoothingDict = LabelSmoothingd
