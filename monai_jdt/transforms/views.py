"""Weak and strong views of one image for consistency training (mean teacher, FixMatch-style), voxel-aligned.

The pattern: the spatial transforms (random crops, flips, rotations, affine or elastic deformations) run ONCE on
the data dict, so the image and every other key share one geometry; then the image is copied
(``monai.transforms.CopyItemsd``) and the weak and the strong intensity transforms run on their own copy::

    spatial (image, label, ...)  ->  CopyItemsd(image -> image_strong)  ->  weak (image)  ->  strong (image_strong)

Voxel ``v`` of the weak view and voxel ``v`` of the strong view are therefore the same anatomical point: the
teacher's prediction on the weak view is a per-voxel soft label for the student's prediction on the strong view.
:func:`weak_strong_views` builds the chain and refuses spatial transforms inside ``weak``/``strong`` (they would
misalign the views) and weak transforms that touch the strong key (or the reverse).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from monai.transforms import Compose, CopyItemsd, MapTransform
from monai.transforms.traits import LazyTrait

__all__ = ["SHAPE_PRESERVING_SPATIAL", "check_intensity_chain", "weak_strong_views"]

#: transforms of MONAI's spatial module that keep the voxel grid (allowed in ``weak``/``strong``).
SHAPE_PRESERVING_SPATIAL = frozenset({"RandSimulateLowResolution", "RandSimulateLowResolutiond"})
_SPATIAL_MODULES = ("monai.transforms.spatial", "monai.transforms.croppad", "monai.apps.deepgrow")


def _members(chain: Any) -> Iterator[Any]:
    """Every transform of a chain, looking into ``Compose``/``OneOf``/``SomeOf``/``RandomOrder``."""
    inner = getattr(chain, "transforms", None)
    if isinstance(inner, (list, tuple)):
        for member in inner:
            yield from _members(member)
    else:
        yield chain


def _moves_voxels(transform: Any) -> bool:
    cls = type(transform)
    if cls.__name__ in SHAPE_PRESERVING_SPATIAL:
        return False
    return isinstance(transform, LazyTrait) or cls.__module__.startswith(_SPATIAL_MODULES)


def _as_list(name: str, chain: Sequence[Callable] | Callable | None) -> list[Callable]:
    if chain is None:
        return []
    items = [chain] if callable(chain) else chain
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(f"{name} must be a sequence of transforms (or one transform), got {type(chain).__name__}")
    for index, item in enumerate(items):
        if not callable(item):
            raise TypeError(f"{name}[{index}] must be a callable transform, got {type(item).__name__}")
    return list(items)


def check_intensity_chain(name: str, chain: Sequence[Callable] | Callable | None, forbidden_key: str) -> None:
    """Check that a view's chain keeps the voxel grid and leaves the other view's key alone.

    Args:
        name: the chain's name for the messages (``"weak"``/``"strong"``).
        chain: transforms (nested ``Compose``/``OneOf``/... are looked into).
        forbidden_key: the other view's key, which no dictionary transform of ``chain`` may list.

    Raises:
        TypeError: ``chain`` is not a sequence of callables.
        ValueError: a spatial transform (MONAI's spatial/crop-pad transforms, any lazy-capable transform) or a
            transform listing ``forbidden_key``; the message names it.

    Example:
        >>> from monai.transforms import RandFlipd, RandGaussianNoised
        >>> check_intensity_chain("strong", [RandGaussianNoised("image_strong")], "image")
        >>> check_intensity_chain("strong", [RandFlipd("image_strong")], "image")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: strong must hold intensity transforms only (...), got RandFlipd
    """
    for transform in (member for item in _as_list(name, chain) for member in _members(item)):
        label = type(transform).__name__
        if _moves_voxels(transform):
            raise ValueError(f"{name} must hold intensity transforms only (a spatial transform would misalign the "
                             f"weak and strong views; put it in spatial), got {label}")  # fmt: skip
        if isinstance(transform, MapTransform) and forbidden_key in transform.keys:
            raise ValueError(f"{name} transforms must not act on {forbidden_key!r} (the other view), got {label} "
                             f"with keys {list(transform.keys)}")  # fmt: skip


def weak_strong_views(
    spatial: Sequence[Callable] | Callable | None,
    weak: Sequence[Callable] | Callable | None,
    strong: Sequence[Callable] | Callable | None,
    image_key: str = "image",
    strong_key: str = "image_strong",
    **compose_kwargs: Any,
) -> Compose:
    """``Compose([*spatial, CopyItemsd(image_key -> strong_key), *weak, *strong])``: two voxel-aligned views.

    Args:
        spatial: dictionary transforms applied once to the whole data dict (image, label, masks) before the copy:
            every random geometry is drawn once and shared by both views. ``None``/``[]`` for none.
        weak: intensity transforms of the weak view (``image_key``; the teacher's input), e.g. none or a mild
            ``RandScaleIntensityd``.
        strong: intensity transforms of the strong view (``strong_key``; the student's input), e.g.
            ``RandGaussianNoised``, ``RandAdjustContrastd``, ``RandGaussianSmoothd``, ``RandHistogramShiftd``.
        image_key: key of the image, which becomes the weak view.
        strong_key: key of the strong view (created by the copy; must differ from ``image_key``).
        compose_kwargs: arguments of ``monai.transforms.Compose`` (``map_items``, ``unpack_items``, ``lazy``,
            ``log_stats``, ...).

    Returns:
        The ``Compose``; use it as (the random part of) a dataset's transform and
        :class:`~monai_jdt.engines.MeanTeacherTrainer` with the same keys.

    Raises:
        TypeError: a chain that is not a sequence of callables; a key that is not a string.
        ValueError: equal keys; a spatial transform in ``weak``/``strong``; a weak transform on ``strong_key`` or a
            strong transform on ``image_key``.

    Example:
        >>> import torch
        >>> from monai.transforms import RandFlipd, RandGaussianNoised, RandSpatialCropd
        >>> views = weak_strong_views(
        ...     spatial=[RandSpatialCropd("image", (8, 8)), RandFlipd("image", prob=0.5)],
        ...     weak=[],
        ...     strong=[RandGaussianNoised("image_strong", prob=1.0, std=0.1)],
        ... )
        >>> out = views({"image": torch.arange(256.0).reshape(1, 16, 16)})
        >>> out["image"].shape, out["image_strong"].shape
        (torch.Size([1, 8, 8]), torch.Size([1, 8, 8]))
        >>> bool((out["image_strong"] - out["image"]).abs().max() < 1.0)  # same voxels, plus noise
        True
    """
    for name, key in (("image_key", image_key), ("strong_key", strong_key)):
        if not isinstance(key, str):
            raise TypeError(f"{name} must be a str, got {type(key).__name__} {key!r}")
    if image_key == strong_key:
        raise ValueError(f"strong_key must differ from image_key, got {strong_key!r} for both")
    spatial_list = _as_list("spatial", spatial)
    check_intensity_chain("weak", weak, strong_key)
    check_intensity_chain("strong", strong, image_key)
    copy = CopyItemsd(keys=image_key, names=strong_key)
    return Compose([*spatial_list, copy, *_as_list("weak", weak), *_as_list("strong", strong)], **compose_kwargs)
