"""Validation and canonical form of segmentation targets: index maps, one-hot and soft (probability) maps.

Every loss and metric of the package goes through :func:`prepare_target`, so all of them accept the same
target forms and raise the same errors:

* **index map**: ``(B, 1, *spatial)`` or ``(B, *spatial)``, any integer dtype, or a floating dtype that holds
  integers; values in ``[0, C)`` or equal to ``ignore_index``. Kept as an index map (no one-hot is built).
* **dense**: ``(B, C, *spatial)``, one-hot or soft probabilities with values in ``[0, 1]``; integer or bool
  one-hot maps are cast to the input's floating dtype.

``mask`` (bool, ``(B, 1, *spatial)`` or ``(B, *spatial)``) and ``ignore_index`` both exclude voxels. For index
maps ``ignore_index`` marks the voxels whose label equals it. For dense targets it follows MONAI's
``create_ignore_mask``: a valid class index excludes the voxels where that class holds (channel value >= 0.5),
any other value excludes the voxels whose target vector is all zero (the convention of the soft-label
transforms for ignored voxels).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from monai_jdt.utils.errors import ShapeError

__all__ = ["SOFT_TOLERANCE", "SegTarget", "check_target_values", "prepare_mask", "prepare_target", "target_range_ok"]

#: values of a soft target may leave [0, 1] by this much (float rounding of averaged rater masks).
SOFT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SegTarget:
    """A validated target.

    Attributes:
        index: ``(B, *spatial)`` int64 class indices (ignored voxels hold 0 and are excluded by ``mask``),
            or ``None`` for a dense target.
        dense: ``(B, C, *spatial)`` floating target with the input's dtype, or ``None`` for an index map.
        mask: ``(B, *spatial)`` bool, ``True`` where a voxel counts; ``None`` when every voxel counts.
        num_classes: ``C``, the number of input channels.
    """

    index: torch.Tensor | None
    dense: torch.Tensor | None
    mask: torch.Tensor | None
    num_classes: int

    @property
    def is_index(self) -> bool:
        return self.index is not None

    def one_hot(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The target as a dense ``(B, C, *spatial)`` tensor (materialises a one-hot for index maps)."""
        if self.dense is not None:
            return self.dense.to(dtype)
        if self.index is None:
            raise RuntimeError("SegTarget holds neither an index map nor a dense target")
        onehot = torch.nn.functional.one_hot(self.index, self.num_classes).movedim(-1, 1)
        return onehot.to(dtype)


def _spatial_batch_shape(input: torch.Tensor) -> tuple[int, ...]:
    return (input.shape[0], *input.shape[2:])


def prepare_mask(mask: torch.Tensor | None, input: torch.Tensor, name: str = "mask") -> torch.Tensor | None:
    """Check a voxel mask against ``input`` (``BC*spatial``) and return it as ``(B, *spatial)`` bool."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or None, got {type(mask).__name__}")
    want = _spatial_batch_shape(input)
    if mask.ndim == input.ndim and mask.shape[1] == 1:
        mask = mask[:, 0]
    if tuple(mask.shape) != want:
        raise ShapeError(
            f"{name} must have shape (B, 1, *spatial) or (B, *spatial) = {want} for input {tuple(input.shape)}, "
            f"got {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        if mask.dtype.is_complex:
            raise TypeError(f"{name} must be a bool tensor, got dtype {mask.dtype}")
        bad = (mask != 0) & (mask != 1)
        if bool(bad.any()):
            raise ValueError(f"{name} must be bool or hold only 0 and 1, got value {mask[bad].flatten()[0].item()}")
        mask = mask != 0
    return mask.to(input.device)


def _check_input(input: torch.Tensor) -> None:
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    if input.ndim < 3:
        raise ShapeError(
            f"input must have shape (B, C, *spatial) with at least one spatial dim, got {tuple(input.shape)}"
        )


def _prepare_index(
    input: torch.Tensor, target: torch.Tensor, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    num_classes = input.shape[1]
    want = _spatial_batch_shape(input)
    if target.ndim == input.ndim:
        if target.shape[1] != 1:
            raise ShapeError(
                f"target must be an index map of shape (B, 1, *spatial) or (B, *spatial) when to_onehot_y=True, "
                f"got {tuple(target.shape)} for input {tuple(input.shape)}"
            )
        target = target[:, 0]
    if tuple(target.shape) != want:
        raise ShapeError(
            f"target index map must have shape (B, 1, *spatial) or (B, *spatial) = {want} for input "
            f"{tuple(input.shape)}, got {tuple(target.shape)}"
        )
    if target.dtype.is_complex:
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.is_floating_point():
        fractional = target != torch.round(target)
        if bool(fractional.any()):
            raise ValueError(
                "target must hold integer class indices when to_onehot_y=True, got non-integer value "
                f"{target[fractional].flatten()[0].item():g} (for soft targets pass (B, C, *spatial) probabilities "
                "with to_onehot_y=False)"
            )
    index = target.to(device=input.device, dtype=torch.long)
    valid = None
    if ignore_index is not None:
        valid = index != int(ignore_index)
        index = torch.where(valid, index, torch.zeros_like(index))
    lo, hi = torch.aminmax(index)
    if int(lo) < 0 or int(hi) >= num_classes:
        bad = (index < 0) | (index >= num_classes)
        values = torch.unique(index[bad])[:8].tolist()
        extra = "" if ignore_index is None else f" or equal to ignore_index={ignore_index}"
        raise ValueError(f"target class indices must be in [0, {num_classes}){extra}, got values {values}")
    return index, valid


def target_range_ok(lo: torch.Tensor, hi: torch.Tensor) -> bool:
    """Whether the minimum ``lo`` and maximum ``hi`` of a dense target lie in ``[0, 1]`` (tolerance included, no NaN).

    Example:
        >>> target_range_ok(torch.tensor(0.0), torch.tensor(1.0)), target_range_ok(torch.tensor(0.0), torch.tensor(1.5))
        (True, False)
    """
    return (
        float(lo) >= -SOFT_TOLERANCE
        and float(hi) <= 1 + SOFT_TOLERANCE
        and not bool(torch.isnan(lo) | torch.isnan(hi))
    )


def check_target_values(dense: torch.Tensor) -> None:
    """Check that a dense (one-hot/soft) target, or any slice of one, holds values in ``[0, 1]``.

    This is the value check of :func:`prepare_target`; callers that pass ``check_values=False`` there (e.g. to
    check chunk by chunk) call it themselves.

    Raises:
        ValueError: a value outside ``[-SOFT_TOLERANCE, 1 + SOFT_TOLERANCE]`` or a NaN.
    """
    lo, hi = torch.aminmax(dense.detach())
    if not target_range_ok(lo, hi):
        raise ValueError(
            "target probabilities must be in [0, 1], got values in "
            f"[{float(lo):g}, {float(hi):g}] (for index maps pass to_onehot_y=True)"
        )


def _prepare_dense(
    input: torch.Tensor, target: torch.Tensor, ignore_index: int | None, check_values: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    num_classes = input.shape[1]
    if target.ndim == input.ndim and target.shape[1] == 1 and num_classes > 1 and target.shape[2:] == input.shape[2:]:
        raise ShapeError(
            f"target has 1 channel but input has {num_classes}: pass to_onehot_y=True for an index map, "
            f"got target {tuple(target.shape)} for input {tuple(input.shape)}"
        )
    if target.shape != input.shape:
        raise ShapeError(
            f"target must have the input's shape {tuple(input.shape)} (one-hot or soft probabilities), "
            f"got {tuple(target.shape)}"
        )
    if target.dtype.is_complex:
        raise TypeError(f"target must be a real tensor, got dtype {target.dtype}")
    dense = target.to(device=input.device, dtype=input.dtype)
    if check_values:
        check_target_values(dense)
    valid = None
    if ignore_index is not None:
        if 0 <= ignore_index < num_classes:
            valid = dense[:, ignore_index] < 0.5
        else:
            valid = dense.sum(dim=1) > 0
    return dense, valid


def prepare_target(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    to_onehot_y: bool = False,
    ignore_index: int | None = None,
    mask: torch.Tensor | None = None,
    check_values: bool = True,
) -> SegTarget:
    """Validate ``target`` (and ``mask``) against ``input`` and return it in canonical form.

    Args:
        input: ``(B, C, *spatial)`` floating prediction (logits or probabilities).
        target: index map (with ``to_onehot_y=True``) or dense one-hot/soft map, see the module docstring.
        to_onehot_y: whether ``target`` is an index map. Ignored with a warning when ``C == 1`` (as MONAI).
        ignore_index: label value (index maps) or channel/sentinel (dense targets) of voxels to exclude.
        mask: optional bool voxel mask, ``True`` where a voxel counts.
        check_values: check the value range of dense targets (one extra reduction pass).

    Returns:
        A :class:`SegTarget`; its ``mask`` combines ``mask`` and ``ignore_index``.

    Raises:
        TypeError: a tensor of the wrong type or dtype.
        ShapeError: shapes that do not fit (a ``ValueError`` and ``AssertionError``).
        ValueError: class indices outside ``[0, C)`` that are not ``ignore_index``, fractional class indices,
            soft values outside ``[0, 1]``, a mask that is not boolean.

    Example:
        >>> x = torch.rand(2, 3, 4, 4)
        >>> t = prepare_target(x, torch.randint(0, 3, (2, 1, 4, 4)), to_onehot_y=True)
        >>> t.is_index, tuple(t.index.shape)
        (True, (2, 4, 4))
    """
    _check_input(input)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} {ignore_index!r}")
    if to_onehot_y and input.shape[1] == 1:
        warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=3)
        to_onehot_y = False
    if target.ndim not in (input.ndim, input.ndim - 1) or target.shape[0] != input.shape[0]:
        raise ShapeError(f"target shape {tuple(target.shape)} does not fit input shape {tuple(input.shape)}")
    voxel_mask = prepare_mask(mask, input)
    if to_onehot_y:
        index, valid = _prepare_index(input, target, ignore_index)
        dense = None
    else:
        if target.ndim != input.ndim:
            raise ShapeError(
                f"target {tuple(target.shape)} has no channel dim: pass to_onehot_y=True for an index map, "
                f"or a (B, C, *spatial) target for input {tuple(input.shape)}"
            )
        dense, valid = _prepare_dense(input, target, ignore_index, check_values)
        index = None
    if valid is not None:
        voxel_mask = valid if voxel_mask is None else voxel_mask & valid
    return SegTarget(index=index, dense=dense, mask=voxel_mask, num_classes=int(input.shape[1]))
