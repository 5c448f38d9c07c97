r"""Cross-entropy for index-map, one-hot and soft (probability) targets, with voxel masks (pure function).

Softmax (multi-class) form, for logits ``z`` and target probabilities ``y`` (one-hot for index maps):

.. math::

    \ell_i = -\sum_c w_c\, y_{ic} \log \mathrm{softmax}(z_i)_c, \qquad
    L = \frac{\sum_{i \in K} \ell_i}{\sum_{i \in K} \sum_c w_c\, y_{ic}}

over the kept voxels ``K`` (not masked, not ``ignore_index``). Without ``weight`` the denominator is ``|K|``.
For index maps this is exactly :func:`torch.nn.functional.cross_entropy` (weighted mean, ``ignore_index``).

Sigmoid (binary / multi-label) form, used for a single channel or ``sigmoid=True``:

.. math::

    \ell_{ic} = -w_c \left(y_{ic} \log \sigma(z_{ic}) + (1 - y_{ic}) \log(1 - \sigma(z_{ic}))\right), \qquad
    L = \frac{\sum_{i \in K} \sum_c \ell_{ic}}{|K| \sum_c w_c},

i.e. :func:`torch.nn.functional.binary_cross_entropy_with_logits` (``reduction="mean"``) over the kept voxels
when there is no weight. Soft targets are allowed in both forms: with ``y`` a probability vector the softmax form
is ``KL(y || p) + H(y)``, so its minimum over ``p`` is at ``p = y`` (the target entropy ``H(y)``, not 0).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

from monai_jdt.utils.checks import check_bool, check_option
from monai_jdt.utils.targets import SegTarget, prepare_target

__all__ = ["check_class_weight", "soft_cross_entropy"]

REDUCTIONS = ("mean", "sum", "none")


def check_class_weight(weight: Any, name: str = "weight") -> torch.Tensor | None:
    """Return per-class weights as a 1-d float tensor (finite, ``>= 0``), or ``None``."""
    if weight is None:
        return None
    if isinstance(weight, (bool, str, bytes)):
        raise TypeError(f"{name} must be a sequence of numbers or a 1-d tensor, got {type(weight).__name__}")
    try:
        w = torch.as_tensor(weight).detach()
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a sequence of numbers or a 1-d tensor, got {weight!r}") from None
    if w.dtype == torch.bool or w.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {w.dtype}")
    if w.ndim != 1:
        raise ValueError(f"{name} must be 1-d (one weight per class), got shape {tuple(w.shape)}")
    w = w.to(torch.float64) if w.dtype == torch.float64 else w.float()
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"{name} must hold finite values >= 0, got {w.tolist()}")
    return w


def _weight_for(weight: torch.Tensor | None, num_classes: int, like: torch.Tensor, form: str) -> torch.Tensor | None:
    if weight is None:
        return None
    if weight.shape[0] != num_classes:
        raise ValueError(
            f"weight must have one entry per class of the {form} form ({num_classes}), got {weight.shape[0]} entries"
        )
    return weight.to(device=like.device, dtype=like.dtype)


def _masked(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))


def _softmax_terms(
    logits: torch.Tensor, seg: SegTarget, weight: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-voxel weighted CE ``(B, *spatial)`` and per-voxel weight mass (``None``: 1 per voxel)."""
    w = _weight_for(weight, logits.shape[1], logits, "softmax")
    if seg.index is not None:
        loss = F.cross_entropy(logits, seg.index, weight=w, reduction="none")
        return loss, None if w is None else w[seg.index]
    dense = seg.dense.to(logits.dtype)  # type: ignore[union-attr]
    loss = F.cross_entropy(logits, dense, weight=w, reduction="none")
    if w is None:
        return loss, None
    return loss, torch.einsum("bc...,c->b...", dense, w)


def _sigmoid_terms(
    logits: torch.Tensor, seg: SegTarget, weight: torch.Tensor | None, include_background: bool
) -> tuple[torch.Tensor, float]:
    """Per-element weighted BCE ``(B, C', *spatial)`` and the weight mass of one voxel (``sum_c w_c`` or ``C'``)."""
    if seg.index is not None:
        classes = torch.arange(logits.shape[1], device=logits.device).view(1, -1, *([1] * (logits.ndim - 2)))
        target = (seg.index.unsqueeze(1) == classes).to(logits.dtype)
    else:
        target = seg.dense.to(logits.dtype)  # type: ignore[union-attr]
    if not include_background:
        if logits.shape[1] == 1:
            warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=4)
        else:
            logits, target = logits[:, 1:], target[:, 1:]
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    w = _weight_for(weight, logits.shape[1], logits, "sigmoid")
    if w is None:
        return loss, float(logits.shape[1])
    return loss * w.view(1, -1, *([1] * (logits.ndim - 2))), float(w.sum())


def _loss_and_denominator(
    logits: torch.Tensor, seg: SegTarget, weight: torch.Tensor | None, binary: bool, include_background: bool
) -> tuple[torch.Tensor, torch.Tensor | int | float]:
    """The per-voxel (per-element) loss, 0 at excluded voxels, and the weight mass of the kept voxels."""
    keep = seg.mask
    if binary:
        loss, mass_per_voxel = _sigmoid_terms(logits, seg, weight, include_background)
        loss = _masked(loss, None if keep is None else keep.unsqueeze(1))
        count = loss[:, 0].numel() if keep is None else keep.sum()
        return loss, count * mass_per_voxel
    loss, mass = _softmax_terms(logits, seg, weight)
    loss = _masked(loss, keep)
    if mass is None:
        return loss, loss.numel() if keep is None else keep.sum()
    return loss, _masked(mass, keep).sum()


def soft_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    include_background: bool = True,
    weight: torch.Tensor | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy on logits for index-map, one-hot and soft targets (see the module docstring for the formulas).

    Args:
        input: ``(B, C, *spatial)`` logits. float16/bfloat16 inputs are computed in float32 (``log_softmax`` /
            log-sigmoid, numerically stable), so the loss is float32 for them.
        target: ``(B, 1, *spatial)``/``(B, *spatial)`` index map (``to_onehot_y=True``) or ``(B, C, *spatial)``
            one-hot / soft probabilities in ``[0, 1]``.
        mask: optional ``(B, 1, *spatial)``/``(B, *spatial)`` bool, ``True`` where a voxel counts.
        to_onehot_y: whether ``target`` is an index map (never expanded to a one-hot in the softmax form).
        sigmoid: use the binary / multi-label form (one sigmoid per channel). A single-channel input always uses
            it (a softmax over one channel is constant).
        include_background: sigmoid form only: if False, channel 0 is excluded. The softmax form always covers
            every class (the softmax couples them; dropping channel 0 would leave background voxels without any
            loss), so ``include_background=False`` raises there; use ``ignore_index`` to drop voxels instead.
        weight: per-class weights ``(C,)`` (``(C-1,)`` in the sigmoid form without background), ``>= 0``. The
            mean is the weighted mean (normalised by the weight mass, as torch for index maps).
        ignore_index: label value (index maps) or channel/sentinel (dense targets) of voxels to exclude.
        reduction: ``"mean"`` over kept voxels (an all-excluded batch gives 0 with a graph, never NaN), ``"sum"``,
            or ``"none"``: ``(B, *spatial)`` per voxel (softmax form) or ``(B, C', *spatial)`` per element
            (sigmoid form), weighted, 0 at excluded voxels.

    Returns:
        The loss (a scalar unless ``reduction="none"``).

    Raises:
        ValueError: bad option values, soft values outside ``[0, 1]``, labels out of range, a weight of the wrong
            length, ``include_background=False`` in the softmax form.
        ShapeError: input/target/mask shapes that do not fit.
        TypeError: wrong argument types.

    Example:
        >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])  # (1, 2, 2): 2 classes, 2 voxels
        >>> soft = torch.tensor([[[0.5, 0.0], [0.5, 1.0]]])
        >>> ce = soft_cross_entropy(logits, soft)
        >>> ref = -(0.5 * logits[0, :, 0].log_softmax(0)).sum() - logits[0, :, 1].log_softmax(0)[1]
        >>> bool(torch.isclose(ce, ref / 2))
        True
    """
    check_bool("to_onehot_y", to_onehot_y)
    check_bool("sigmoid", sigmoid)
    check_bool("include_background", include_background)
    reduction = check_option("reduction", reduction, REDUCTIONS)
    weight = check_class_weight(weight)
    # half-precision logits are computed in float32; validate against the float32 view so that soft targets are
    # not rounded to the logits' dtype first
    logits = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    seg = prepare_target(logits, target, to_onehot_y=to_onehot_y, ignore_index=ignore_index, mask=mask)
    binary = sigmoid or input.shape[1] == 1
    if not binary and not include_background:
        raise ValueError(
            "include_background=False is only defined for the sigmoid form: the softmax cross-entropy covers every "
            "class (use ignore_index to exclude voxels), got include_background=False with sigmoid=False"
        )
    with torch.autocast(device_type=logits.device.type, enabled=False):  # computed in float32 or wider
        loss, denominator = _loss_and_denominator(logits, seg, weight, binary, include_background)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    denominator = torch.as_tensor(denominator, dtype=total.dtype, device=total.device)
    return total / denominator.clamp_min(torch.finfo(total.dtype).tiny)
