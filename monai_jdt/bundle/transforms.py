"""Small dictionary transforms the bundle configs need and MONAI does not have.

* :class:`ThreadSafeLoadImaged`: MONAI's ``LoadImaged`` marked ``ThreadUnsafe``, so that ``CacheDataset``'s
  caching threads each use a copy (monai 1.6.1's ``NibabelReader`` keeps the file names of the current call in
  ``self.filenames``; two threads loading lists of different lengths, e.g. 3 rater masks and 1 image, make
  ``get_data`` stack too few files, silently).
* :class:`EnsureSpatialDimsd`: QUBIQ slices come as ``(H, W)``, ``(H, W, 1)`` or ``(1, H, W)``; after
  ``EnsureChannelFirstd`` this drops singleton spatial axes (and their affine row/column) until the image has
  the network's number of spatial dimensions.
* :class:`FillBackgroundd`: after ``Invertd`` undoes ``CropForegroundd`` (zero padding) and ``Spacingd``,
  gives the missing probability mass to the background channel.
* :class:`SelectTargetd`: after the label-mode transforms, puts the training target into ``label`` and keeps the
  hard label map under ``seg`` (patch sampling and validation need the hard map).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import LoadImaged, MapTransform, ThreadUnsafe

from monai_jdt.utils.checks import check_positive_int
from monai_jdt.utils.errors import ShapeError

__all__ = ["EnsureSpatialDimsd", "FillBackgroundd", "SelectTargetd", "ThreadSafeLoadImaged", "drop_spatial_axis"]


class ThreadSafeLoadImaged(LoadImaged, ThreadUnsafe):
    """``monai.transforms.LoadImaged`` that threaded callers copy before use (same arguments).

    MONAI's ``Compose(..., threading=True)`` (what ``CacheDataset`` and ``ThreadDataLoader`` use) deep-copies every
    ``ThreadUnsafe`` transform per call. ``LoadImaged`` is not marked so, but its readers keep per-call state
    (``NibabelReader.read`` stores the file names that ``get_data`` zips with the images), so loading a list of
    rater files in one thread while another loads one image can return fewer stacked raters than files.

    Example:
        >>> from monai.transforms import ThreadUnsafe
        >>> isinstance(ThreadSafeLoadImaged("image"), ThreadUnsafe)
        True
    """


def drop_spatial_axis(image: torch.Tensor, axis: int) -> torch.Tensor:
    """Remove singleton spatial axis ``axis`` (0-based, channel excluded) of a channel-first image.

    For a :class:`~monai.data.MetaTensor` the affine loses the voxel column ``axis`` and the world row that
    column points along (its largest entry), so an axis-aligned ``(1, H, W, 1)`` slice with a 4 x 4 affine
    becomes ``(1, H, W)`` with the matching 3 x 3 affine.

    Raises:
        ShapeError: the axis is not a singleton.

    Example:
        >>> x = MetaTensor(torch.zeros(1, 4, 5, 1), affine=torch.diag(torch.tensor([0.5, 0.7, 3.0, 1.0])))
        >>> y = drop_spatial_axis(x, 2)
        >>> tuple(y.shape), y.affine.diagonal().tolist()
        ((1, 4, 5), [0.5, 0.699999988079071, 1.0])
    """
    if image.shape[axis + 1] != 1:
        raise ShapeError(f"axis {axis} of an image of shape {tuple(image.shape)} is not a singleton")
    out = image.squeeze(axis + 1)
    if isinstance(image, MetaTensor):
        affine = image.affine
        row = int(torch.argmax(affine[:-1, axis].abs()))
        keep_rows = [r for r in range(affine.shape[0]) if r != row]
        keep_cols = [c for c in range(affine.shape[1]) if c != axis]
        out.affine = affine[keep_rows][:, keep_cols]
    return out


class EnsureSpatialDimsd(MapTransform):
    """Squeeze singleton spatial axes (last ones first) until each image has ``spatial_dims`` spatial axes.

    Args:
        keys: keys of channel-first images.
        spatial_dims: spatial dimensions the network expects (2 for the QUBIQ 2020 slices).
        allow_missing_keys: do not raise for absent keys.

    Raises:
        ShapeError: an image has fewer spatial axes, or too many that are not singletons (message names the key).

    Example:
        >>> t = EnsureSpatialDimsd("image", spatial_dims=2)
        >>> tuple(t({"image": torch.zeros(1, 1, 8, 6)})["image"].shape)
        (1, 8, 6)
    """

    def __init__(self, keys: KeysCollection, spatial_dims: int = 2, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.spatial_dims = check_positive_int("spatial_dims", spatial_dims)

    def _squeeze(self, key: Hashable, image: torch.Tensor) -> torch.Tensor:
        shape = tuple(image.shape)
        while image.ndim - 1 > self.spatial_dims:
            singles = [a for a in range(image.ndim - 1) if image.shape[a + 1] == 1]
            if not singles:
                raise ShapeError(
                    f"{key} must have {self.spatial_dims} spatial axes (channel first) or singleton extra axes, "
                    f"got shape {shape}"
                )
            image = drop_spatial_axis(image, singles[-1])
        if image.ndim - 1 < self.spatial_dims:
            raise ShapeError(f"{key} must have {self.spatial_dims} spatial axes (channel first), got shape {shape}")
        return image

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self._squeeze(key, d[key])
        return d


class SelectTargetd(MapTransform):
    """``seg`` <- the hard label map in ``label``; ``label`` <- the soft target in ``soft_key`` when present.

    Every label mode ends with this step, so the trainer's target is always ``label`` (an index map for hard
    labels, probabilities otherwise) and ``seg`` always holds the hard map for ``RandCropByLabelClassesd``.

    Args:
        soft_key: key of the soft target (removed from the dict once moved); absent for hard labels.
        label_key: key of the hard label map on input and of the training target on output.
        hard_key: key that receives the hard label map.

    Example:
        >>> out = SelectTargetd()({"label": torch.zeros(1, 2, 2), "soft_label": torch.ones(2, 2, 2)})
        >>> tuple(out["label"].shape), tuple(out["seg"].shape), "soft_label" in out
        ((2, 2, 2), (1, 2, 2), False)
    """

    def __init__(self, soft_key: str = "soft_label", label_key: str = "label", hard_key: str = "seg") -> None:
        super().__init__(label_key)
        self.soft_key, self.label_key, self.hard_key = soft_key, label_key, hard_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.label_key not in d:
            raise KeyError(f"SelectTargetd: key {self.label_key!r} (the hard label map) is missing")
        d[self.hard_key] = d[self.label_key]
        if self.soft_key in d:
            d[self.label_key] = d.pop(self.soft_key)
        return d


class FillBackgroundd(MapTransform):
    """Add the missing probability mass ``1 - sum_c p_c`` (where positive) to the ``background`` channel.

    ``Invertd`` undoes a ``CropForegroundd`` by padding zero vectors (the region outside the body, which the
    network never saw), and undoes ``Spacingd`` by interpolating, which mixes those zero vectors with the
    predicted ones at the crop border (``alpha * p``). Both stand for background, so the missing mass goes there
    and every voxel again holds a probability vector.

    Args:
        keys: keys of channel-first probability maps.
        background: index of the background channel.
        allow_missing_keys: do not raise for absent keys.

    Example:
        >>> out = FillBackgroundd("pred")({"pred": torch.tensor([[0.0, 0.1], [0.0, 0.4]])})
        >>> out["pred"].tolist()
        [[1.0, 0.6000000238418579], [0.0, 0.4000000059604645]]
    """

    def __init__(self, keys: KeysCollection, background: int = 0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.background = check_positive_int("background", background, minimum=0)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            probs = d[key]
            if self.background >= probs.shape[0]:
                raise ShapeError(f"{key} has {probs.shape[0]} channels, background={self.background} is out of range")
            out = probs.clone()
            out[self.background] += (1 - probs.sum(0)).clamp_min(0)
            d[key] = out
        return d
