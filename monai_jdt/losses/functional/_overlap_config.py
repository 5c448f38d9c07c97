"""Validated settings of the overlap losses (DML, JML, CTL), shared by the functional form and the modules."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from monai_jdt.utils.checks import (
    check_bool,
    check_in_range,
    check_non_negative,
    check_option,
    check_weights_mapping,
)

__all__ = ["ACTIVE_MODES", "LEVELS", "REDUCTIONS", "OverlapConfig", "check_weight", "make_config", "weight_for"]

REDUCTIONS = ("mean", "sum", "none")
ACTIVE_MODES = ("all", "present", "prob", "both")
LEVELS = ("batch", "image", "class")


@dataclass(frozen=True)
class OverlapConfig:
    """Normalised settings. ``scale`` is k of ``(k tp + smooth_nr) / (k (tp + alpha fp + beta fn) + smooth_dr)``."""

    alpha: float
    beta: float
    scale: float
    include_background: bool
    to_onehot_y: bool
    sigmoid: bool
    softmax: bool
    other_act: Callable[[torch.Tensor], torch.Tensor] | None
    reduction: str
    smooth_nr: float
    smooth_dr: float
    levels: tuple[tuple[str, float], ...]
    ord: float
    log_loss: bool
    gamma: float
    class_agnostic: bool
    active_classes: str
    active_threshold: float
    ignore_index: int | None
    sync_stats: bool
    fused: bool


def check_weight(weight: Any) -> torch.Tensor | None:
    """Return the class ``weight`` as a float64 tensor (0-d or 1-d, finite, >= 0), or ``None``."""
    if weight is None:
        return None
    if isinstance(weight, bool) or isinstance(weight, (str, bytes)):
        raise TypeError(f"weight must be a number, a sequence of numbers or a tensor, got {type(weight).__name__}")
    try:
        w = torch.as_tensor(weight).detach()
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"weight must be a number, a sequence of numbers or a tensor, got {type(weight).__name__} {weight!r}"
        ) from None
    if w.dtype == torch.bool or w.is_complex():
        raise TypeError(f"weight must hold real numbers, got dtype {w.dtype}")
    if w.ndim > 1:
        raise ValueError(
            f"weight must be a number or a 1-d sequence (one weight per class), got shape {tuple(w.shape)}"
        )
    w = w.to(torch.float64)
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"weight must be finite, got {w.tolist()}")
    if bool((w < 0).any()):
        raise ValueError(f"weight must be >= 0, got {w.tolist()}")
    return w


def _check_levels(levels: Mapping[str, Any] | None, batch: bool) -> tuple[tuple[str, float], ...]:
    if levels is None:
        return (("batch", 1.0),) if batch else (("image", 1.0),)
    if batch:
        raise ValueError(
            f"batch=True and levels are exclusive (levels replaces MONAI's batch flag), got levels={dict(levels)}; "
            "use levels={'batch': 1.0}"
        )
    checked = check_weights_mapping("levels", levels, LEVELS)
    return tuple((name, checked[name]) for name in LEVELS if checked.get(name, 0.0) > 0)


def _check_reduction(reduction: Any) -> str:
    if isinstance(reduction, enum.Enum):
        reduction = reduction.value
    return check_option("reduction", reduction, REDUCTIONS)


def _check_activation(sigmoid: Any, softmax: Any, other_act: Any) -> None:
    check_bool("sigmoid", sigmoid)
    check_bool("softmax", softmax)
    if other_act is not None and not callable(other_act):
        raise TypeError(f"other_act must be None or callable, got {type(other_act).__name__} {other_act!r}")
    if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
        raise ValueError(
            "sigmoid, softmax and other_act are mutually exclusive, got "
            f"sigmoid={sigmoid}, softmax={softmax}, other_act={other_act!r}"
        )


def _check_ignore_index(ignore_index: Any) -> int | None:
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} {ignore_index!r}")
    return ignore_index


def make_config(
    *,
    alpha: float,
    beta: float,
    scale: float,
    include_background: bool = True,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    softmax: bool = False,
    other_act: Callable[[torch.Tensor], torch.Tensor] | None = None,
    reduction: str = "mean",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    ord: float = 1,
    log_loss: bool = False,
    gamma: float = 1.0,
    class_agnostic: bool = False,
    active_classes: str = "all",
    active_threshold: float = 0.01,
    levels: Mapping[str, float] | None = None,
    ignore_index: int | None = None,
    sync_stats: bool = False,
    fused: bool = True,
) -> OverlapConfig:
    """Check every argument (raising ``TypeError``/``ValueError`` that name it) and return an :class:`OverlapConfig`.

    ``weight`` is checked separately by :func:`check_weight` (the modules keep it as a buffer).
    """
    _check_activation(sigmoid, softmax, other_act)
    for name, flag in (
        ("include_background", include_background),
        ("to_onehot_y", to_onehot_y),
        ("batch", batch),
        ("log_loss", log_loss),
        ("class_agnostic", class_agnostic),
        ("sync_stats", sync_stats),
        ("fused", fused),
    ):
        check_bool(name, flag)
    smooth_nr = check_non_negative("smooth_nr", smooth_nr)
    smooth_dr = check_non_negative("smooth_dr", smooth_dr)
    if log_loss and smooth_nr == 0:
        raise ValueError(
            "log_loss=True needs smooth_nr > 0 (-log(score) is infinite for a class without overlap), got smooth_nr=0"
        )
    reduction = _check_reduction(reduction)
    level_items = _check_levels(levels, batch)
    if reduction == "none" and len(level_items) > 1:
        raise ValueError(
            "reduction='none' needs a single level (each level has its own output shape), "
            f"got levels={dict(level_items)}"
        )
    return OverlapConfig(
        alpha=check_non_negative("alpha", alpha),
        beta=check_non_negative("beta", beta),
        scale=float(scale),
        include_background=include_background,
        to_onehot_y=to_onehot_y,
        sigmoid=sigmoid,
        softmax=softmax,
        other_act=other_act,
        reduction=reduction,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        levels=level_items,
        ord=check_in_range("ord", ord, 1),
        log_loss=log_loss,
        gamma=check_in_range("gamma", gamma, 1),
        class_agnostic=class_agnostic,
        active_classes=check_option("active_classes", active_classes, ACTIVE_MODES),
        active_threshold=check_in_range("active_threshold", active_threshold, 0, 1, high_inclusive=False),
        ignore_index=_check_ignore_index(ignore_index),
        sync_stats=sync_stats,
        fused=fused,
    )


def weight_for(weight: torch.Tensor | None, num_classes: int, like: torch.Tensor) -> torch.Tensor | None:
    """Broadcast a checked ``weight`` to ``(num_classes,)`` with ``like``'s dtype/device, checking its length."""
    if weight is None:
        return None
    if weight.ndim == 0:
        return weight.to(like).expand(num_classes)
    if weight.shape[0] != num_classes:
        raise ValueError(
            f"weight must have one entry per class ({num_classes} classes after removing the background when "
            f"include_background=False), got {weight.shape[0]} entries"
        )
    return weight.to(like)
