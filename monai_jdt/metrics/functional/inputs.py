"""Validation of metric inputs: predictions given as probabilities or one-hot maps, and their targets.

Every metric of :mod:`monai_jdt.metrics` takes ``pred`` (or ``probs``) of shape ``(B, C, *spatial)`` and a target
that is either an index map (``(B, 1, *spatial)`` or ``(B, *spatial)``, recognised when ``C > 1`` and the target
has one channel or none) or a one-hot/soft map of the prediction's shape. Targets are validated by
:func:`monai_jdt.utils.targets.prepare_target`, the one validation shared with the losses.
"""

from __future__ import annotations

import torch

from monai_jdt.utils.checks import check_in_range
from monai_jdt.utils.errors import ShapeError
from monai_jdt.utils.targets import SegTarget, prepare_target

__all__ = [
    "DEFAULT_PROB_TOLERANCE",
    "as_prediction",
    "check_probabilities",
    "resolve_target",
    "target_is_index",
]

#: default tolerance on "values in [0, 1]" and "channels sum to 1" (float16 softmax outputs are off by ~1e-3).
DEFAULT_PROB_TOLERANCE = 1e-3


def as_prediction(pred: torch.Tensor, name: str = "pred") -> torch.Tensor:
    """Check that ``pred`` is a ``(B, C, *spatial)`` tensor and return it as a floating tensor.

    Bool and integer one-hot maps are cast to ``float32``; ``float16``/``bfloat16`` are cast to ``float32`` so that
    sums are not accumulated in half precision.

    Raises:
        TypeError: ``pred`` is not a real tensor.
        ShapeError: ``pred`` has fewer than 3 dims.
    """
    if not isinstance(pred, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(pred).__name__}")
    if pred.dtype.is_complex:
        raise TypeError(f"{name} must be a real tensor, got dtype {pred.dtype}")
    if type(pred) is not torch.Tensor:
        pred = pred.as_subclass(torch.Tensor)  # MetaTensor in: plain results out, no meta bookkeeping
    if pred.ndim < 3:
        raise ShapeError(
            f"{name} must have shape (B, C, *spatial) with at least one spatial dim, got {tuple(pred.shape)}"
        )
    if pred.dtype not in (torch.float32, torch.float64):
        pred = pred.float()
    return pred


def check_probabilities(probs: torch.Tensor, name: str = "pred", tolerance: float = DEFAULT_PROB_TOLERANCE) -> None:
    """Check that ``probs`` (``(B, C, *spatial)``) holds probabilities.

    Every value must be in ``[-tolerance, 1 + tolerance]`` and, when ``C > 1``, the channels of every voxel must
    sum to 1 within ``tolerance`` (softmax outputs or one-hot maps; a single channel is a foreground probability).

    Raises:
        ValueError: a NaN, a value out of range, or channels that do not sum to 1.
    """
    tolerance = check_in_range("prob_tolerance", tolerance, 0, 1, high_inclusive=False)
    lo, hi = torch.aminmax(probs.detach())
    if bool(torch.isnan(lo) | torch.isnan(hi)):
        raise ValueError(f"{name} must not contain NaN")
    if float(lo) < -tolerance or float(hi) > 1 + tolerance:
        raise ValueError(
            f"{name} must hold probabilities in [0, 1] (apply softmax/sigmoid to logits first), "
            f"got values in [{float(lo):g}, {float(hi):g}]"
        )
    if probs.shape[1] > 1:
        total_lo, total_hi = torch.aminmax(probs.detach().sum(dim=1))
        dev = max(abs(float(total_lo) - 1), abs(float(total_hi) - 1))
        if dev > tolerance:
            raise ValueError(
                f"{name} channels must sum to 1 over classes within prob_tolerance={tolerance:g} (softmax "
                f"probabilities or one-hot), got a voxel whose sum differs from 1 by {dev:.3g}"
            )


def target_is_index(pred: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether ``target`` is read as an index map: ``C > 1`` and a target with one channel or no channel dim."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if pred.shape[1] == 1:
        return False
    return target.ndim == pred.ndim - 1 or (target.ndim == pred.ndim and target.shape[1] == 1)


def resolve_target(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int | None = None,
    mask: torch.Tensor | None = None,
    check_values: bool = True,
) -> SegTarget:
    """Validate ``target`` against ``pred`` with :func:`~monai_jdt.utils.targets.prepare_target`.

    The target form is inferred (:func:`target_is_index`) instead of being passed as ``to_onehot_y``; with
    ``check_values=False`` the caller checks dense target values itself
    (:func:`~monai_jdt.utils.targets.check_target_values`).
    """
    to_onehot_y = target_is_index(pred, target)
    if type(target) is not torch.Tensor:
        target = target.as_subclass(torch.Tensor)
    return prepare_target(
        pred, target, to_onehot_y=to_onehot_y, ignore_index=ignore_index, mask=mask, check_values=check_values
    )
