"""From cardinalities to the loss: tp/fp/fn, the Tversky-form score, active classes, levels and reduction.

All inputs are ``(B, C)`` float64 statistics (:class:`~._overlap_stats.OverlapStats`), so everything here works
on tiny tensors with plain autograd. No Python branch depends on tensor values (no device synchronisation and no
graph breaks under ``torch.compile``): "no active entry" is handled with ``torch.where`` and a clamped count.
"""

from __future__ import annotations

from typing import cast

import torch

from monai_jdt.losses.functional import _distributed as dist_sync
from monai_jdt.losses.functional._overlap_config import OverlapConfig
from monai_jdt.losses.functional._overlap_stats import OverlapStats

__all__ = ["active_entries", "entry_loss", "overlap_score", "reduce_levels", "tp_fp_fn"]


def tp_fp_fn(stats: OverlapStats) -> torch.Tensor:
    """``(3, B, C)``: ``tp = (P + G - D) / 2``, ``fp = P - tp``, ``fn = G - tp``."""
    tp = (stats.pred + stats.target - stats.diff) / 2
    return torch.stack((tp, stats.pred - tp, stats.target - tp))


def overlap_score(counts: torch.Tensor, cfg: OverlapConfig) -> torch.Tensor:
    """``(k tp + smooth_nr) / (k (tp + alpha fp + beta fn) + smooth_dr)``; 1 where the denominator is 0.

    The ``torch.where`` on a safe denominator keeps both the value and the gradient finite for an empty class
    with ``smooth_nr = smooth_dr = 0`` (``tp = fp = fn = 0``).
    """
    tp, fp, fn = counts.unbind(0)
    k = cfg.scale
    numerator = k * tp + cfg.smooth_nr
    denominator = k * (tp + cfg.alpha * fp + cfg.beta * fn) + cfg.smooth_dr
    empty = denominator == 0
    ratio = numerator / torch.where(empty, torch.ones_like(denominator), denominator)
    return torch.where(empty, torch.ones_like(ratio), ratio)


def entry_loss(score: torch.Tensor, cfg: OverlapConfig) -> torch.Tensor:
    """``1 - score`` or ``-log(score)``, then the focal exponent ``gamma`` (on the loss clamped at 0)."""
    loss = -torch.log(score) if cfg.log_loss else 1 - score
    if cfg.gamma != 1:
        loss = loss.clamp_min(0) ** cfg.gamma
    return loss


def active_entries(stats: OverlapStats, cfg: OverlapConfig) -> torch.Tensor:
    """``(B, C)`` bool: which (image, class) entries count under ``active_classes``."""
    mode = cfg.active_classes
    if mode == "all":
        return torch.ones_like(stats.pred, dtype=torch.bool)
    thr = cfg.active_threshold
    present = stats.target_max > thr if stats.target_max is not None else None
    prob = stats.pred_max > thr if stats.pred_max is not None else None
    if mode == "present":
        return present
    if mode == "prob":
        return prob
    return present | prob


def _pool_classes(
    counts: torch.Tensor, active: torch.Tensor, weight: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    coef = active.to(counts.dtype)
    if weight is not None:
        coef = coef * weight
    return (counts * coef).sum(-1, keepdim=True), active.any(-1, keepdim=True)


def _loss_matrix(
    counts: torch.Tensor, active: torch.Tensor, weight: torch.Tensor | None, cfg: OverlapConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Losses ``(R, K)`` and their activity for counts ``(3, R, C)``; K = 1 with ``class_agnostic``."""
    if cfg.class_agnostic:
        counts, active = _pool_classes(counts, active, weight)
        return entry_loss(overlap_score(counts, cfg), cfg), active
    loss = entry_loss(overlap_score(counts, cfg), cfg)
    if weight is not None:
        loss = loss * weight
    return loss, active


def _masked_mean(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    return total / count.clamp_min(1)


def _batch_level(counts: torch.Tensor, active: torch.Tensor, weight: torch.Tensor | None, cfg: OverlapConfig):
    pooled = counts.sum(1, keepdim=True)
    pooled_active = active.any(0, keepdim=True)
    if cfg.sync_stats:
        pooled = dist_sync.sum_with_grad(pooled)
        pooled_active = dist_sync.max_no_grad(pooled_active.to(pooled.dtype)) > 0
    loss, act = _loss_matrix(pooled, pooled_active, weight, cfg)
    kept = torch.where(act, loss, torch.zeros_like(loss))[0]
    if cfg.reduction == "none":
        return kept
    if cfg.reduction == "sum":
        return kept.sum()
    return _masked_mean(kept.sum(), act.sum().to(kept.dtype))


def _image_level(counts: torch.Tensor, active: torch.Tensor, weight: torch.Tensor | None, cfg: OverlapConfig):
    loss, act = _loss_matrix(counts, active, weight, cfg)
    kept = torch.where(act, loss, torch.zeros_like(loss))
    if cfg.reduction == "none":
        return kept
    if cfg.reduction == "sum":
        return dist_sync.sum_with_grad(kept.sum()) if cfg.sync_stats else kept.sum()
    per_image = _masked_mean(kept.sum(1), act.sum(1).to(kept.dtype))
    image_active = act.any(1)
    total = torch.where(image_active, per_image, torch.zeros_like(per_image)).sum()
    count = image_active.sum().to(kept.dtype)
    if cfg.sync_stats:
        total, count = dist_sync.sum_with_grad(total), dist_sync.sum_no_grad(count)
    return _masked_mean(total, count)


def _class_level(counts: torch.Tensor, active: torch.Tensor, weight: torch.Tensor | None, cfg: OverlapConfig):
    loss, act = _loss_matrix(counts, active, weight, cfg)
    kept = torch.where(act, loss, torch.zeros_like(loss))
    total, count = kept.sum(0), act.sum(0).to(kept.dtype)
    if cfg.sync_stats:
        total, count = dist_sync.sum_with_grad(total), dist_sync.sum_no_grad(count)
    per_class = _masked_mean(total, count)
    if cfg.reduction == "none":
        return per_class
    if cfg.reduction == "sum":
        return per_class.sum()
    return _masked_mean(per_class.sum(), (count > 0).sum().to(kept.dtype))


_LEVEL_FUNCTIONS = {"batch": _batch_level, "image": _image_level, "class": _class_level}


def reduce_levels(
    stats: OverlapStats, weight: torch.Tensor | None, cfg: OverlapConfig, spatial_dims: int
) -> torch.Tensor:
    """The loss: the weighted sum of the requested levels, each reduced as ``cfg.reduction`` says.

    With ``reduction="none"`` (a single level) the output is broadcastable against the input, as MONAI's
    ``DiceLoss``: ``(B, K, 1, ...)`` for the image level and ``(K, 1, ...)`` for the batch and class levels
    (MONAI's ``batch=True`` shape), with ``K = C`` classes or 1 for ``class_agnostic``; inactive entries hold 0.
    """
    counts = tp_fp_fn(stats)
    active = active_entries(stats, cfg)
    total: torch.Tensor | None = None
    for name, level_weight in cfg.levels:
        value = _LEVEL_FUNCTIONS[name](counts, active, weight, cfg) * level_weight
        total = value if total is None else total + value
    total = cast(torch.Tensor, total)  # cfg.levels holds at least one level
    if cfg.reduction == "none":
        total = total.reshape(*total.shape, *([1] * spatial_dims))
    return total
