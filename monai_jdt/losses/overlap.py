"""Soft-label overlap loss modules: ``CompatibleTverskyLoss``, ``DiceSemimetricLoss``, ``JaccardMetricLoss``.

Thin :class:`torch.nn.modules.loss._Loss` wrappers (MONAI's loss base class) that check and store the settings
once and call :func:`monai_jdt.losses.functional.overlap.overlap_loss`. See
:func:`monai_jdt.losses.functional.compatible_tversky_loss` for the formulas and every option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.nn.modules.loss import _Loss

from monai_jdt.losses.functional._overlap_config import OverlapConfig, check_weight, make_config
from monai_jdt.losses.functional.overlap import overlap_loss

__all__ = ["CompatibleTverskyLoss", "DiceSemimetricLoss", "JaccardMetricLoss"]


class _OverlapLoss(_Loss):
    """Shared storage and ``forward`` of the three overlap losses."""

    class_weight: torch.Tensor | None

    def __init__(
        self,
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
        weight: Any = None,
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
    ) -> None:
        cfg = make_config(
            alpha=alpha,
            beta=beta,
            scale=scale,
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            reduction=reduction,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
            ord=ord,
            log_loss=log_loss,
            gamma=gamma,
            class_agnostic=class_agnostic,
            active_classes=active_classes,
            active_threshold=active_threshold,
            levels=levels,
            ignore_index=ignore_index,
            sync_stats=sync_stats,
            fused=fused,
        )
        super().__init__(reduction=cfg.reduction)
        self.config: OverlapConfig = cfg
        self.register_buffer("class_weight", check_weight(weight))

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            input: ``(B, C, *spatial)`` logits (with an activation) or probabilities.
            target: ``(B, C, *spatial)`` one-hot/soft target, or an index map with ``to_onehot_y=True``.
            mask: optional bool ``(B, 1, *spatial)``/``(B, *spatial)`` voxel mask, ``True`` where a voxel counts.
        """
        return overlap_loss(input, target, self.config, self.class_weight, mask)

    def extra_repr(self) -> str:
        cfg = self.config
        return (
            f"alpha={cfg.alpha}, beta={cfg.beta}, levels={dict(cfg.levels)}, reduction={cfg.reduction!r}, "
            f"active_classes={cfg.active_classes!r}"
        )


class CompatibleTverskyLoss(_OverlapLoss):
    """Compatible Tversky loss (CTL; arXiv 2310.19252, 2302.05666), correct for soft labels.

    ``loss_c = (1 - (tp + smooth_nr) / (tp + alpha fp + beta fn + smooth_dr)) ** gamma`` with
    ``tp = (|x| + |y| - |x - y|) / 2``, ``fp = |x| - tp``, ``fn = |y| - tp`` (L^p cardinalities). Equals
    ``monai.losses.TverskyLoss(soft_label=True)`` where the options overlap (MONAI's ``reduction="none"`` is
    ``(B, C)``, here ``(B, C, 1, ...)``). ``DiceSemimetricLoss`` is CTL(0.5, 0.5) and ``JaccardMetricLoss``
    CTL(1, 1), each with halved ``smooth_nr``/``smooth_dr``.

    Example:
        >>> loss = CompatibleTverskyLoss(alpha=0.3, beta=0.7, softmax=True, to_onehot_y=True)
        >>> logits = torch.randn(2, 3, 16, 16, requires_grad=True)
        >>> labels = torch.randint(0, 3, (2, 1, 16, 16))
        >>> loss(logits, labels).backward()
        >>> logits.grad.shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, gamma: float = 1.0, **common: Any) -> None:
        """
        Args:
            alpha: weight of the false positives, ``>= 0``.
            beta: weight of the false negatives, ``>= 0``.
            gamma: focal exponent ``>= 1`` on the per-class loss.
            common: ``include_background``, ``to_onehot_y``, ``sigmoid``, ``softmax``, ``other_act``,
                ``reduction``, ``smooth_nr``, ``smooth_dr``, ``batch``, ``weight``, ``ord``, ``log_loss``,
                ``class_agnostic``, ``active_classes``, ``active_threshold``, ``levels``, ``ignore_index``,
                ``sync_stats``, ``fused``: see :func:`monai_jdt.losses.functional.compatible_tversky_loss`.

        Raises:
            ValueError: an option outside its range (e.g. ``alpha < 0``, ``ord < 1``, an unknown
                ``active_classes``, ``sigmoid`` and ``softmax`` both set, a negative level or class weight).
            TypeError: an option of the wrong type (e.g. ``other_act`` not callable).
        """
        super().__init__(alpha=alpha, beta=beta, scale=1.0, gamma=gamma, **common)


class DiceSemimetricLoss(_OverlapLoss):
    """Dice semimetric loss (DML; arXiv 2303.16296), correct for soft labels.

    ``loss_c = 1 - (2 tp + smooth_nr) / (2 tp + fp + fn + smooth_dr)``; for p = 1 it is
    ``1 - (|x| + |y| - |x - y|) / (|x| + |y|)``: zero iff ``x == y``, the classic soft Dice loss on hard labels.
    Equals ``monai.losses.DiceLoss(soft_label=True)`` where the options overlap; it is
    ``CompatibleTverskyLoss(0.5, 0.5)`` with halved smoothing.

    Example:
        >>> loss = DiceSemimetricLoss(softmax=True, active_classes="present")
        >>> target = torch.softmax(torch.randn(2, 3, 8, 8, 8), 1)  # soft labels
        >>> float(loss(torch.randn(2, 3, 8, 8, 8), target)) > 0
        True
    """

    def __init__(self, **common: Any) -> None:
        """
        Args:
            common: the options of :class:`CompatibleTverskyLoss` except ``alpha`` and ``beta``.

        Raises:
            ValueError, TypeError: as :class:`CompatibleTverskyLoss`.
        """
        _refuse_alpha_beta(common, "DiceSemimetricLoss", 0.5)
        super().__init__(alpha=0.5, beta=0.5, scale=2.0, **common)


class JaccardMetricLoss(_OverlapLoss):
    """Jaccard metric loss (JML; arXiv 2302.05666), correct for soft labels.

    ``loss_c = 1 - (2 tp + smooth_nr) / (2 (tp + fp + fn) + smooth_dr)``; for p = 1 it is
    ``1 - (|x| + |y| - |x - y|) / (|x| + |y| + |x - y|)``, a metric on ``[0, 1]^n``. Equals
    ``monai.losses.DiceLoss(jaccard=True, soft_label=True)`` where the options overlap; it is
    ``CompatibleTverskyLoss(1, 1)`` with halved smoothing.

    Example:
        >>> loss = JaccardMetricLoss(softmax=True, to_onehot_y=True, include_background=False)
        >>> float(loss(torch.randn(1, 3, 8, 8), torch.randint(0, 3, (1, 1, 8, 8)))) > 0
        True
    """

    def __init__(self, **common: Any) -> None:
        """
        Args:
            common: the options of :class:`CompatibleTverskyLoss` except ``alpha`` and ``beta``.

        Raises:
            ValueError, TypeError: as :class:`CompatibleTverskyLoss`.
        """
        _refuse_alpha_beta(common, "JaccardMetricLoss", 1.0)
        super().__init__(alpha=1.0, beta=1.0, scale=2.0, **common)


def _refuse_alpha_beta(common: Mapping[str, Any], name: str, value: float) -> None:
    for key in ("alpha", "beta", "scale"):
        if key in common:
            raise TypeError(f"{name} fixes alpha = beta = {value}; use CompatibleTverskyLoss to choose {key}")
