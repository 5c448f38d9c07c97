"""The bundles' loss, chosen by one override key (``--loss_name``).

| ``loss_name`` | loss (``lambda_ce = 0.25``, ``lambda_overlap = 0.75`` by default) |
|---|---|
| ``dml_ce`` (default) | :class:`~monai_jdt.losses.DiceSemimetricCELoss`: CE + Dice semimetric loss (arXiv 2303.16296) |
| ``jml_ce`` | :class:`~monai_jdt.losses.JaccardMetricCELoss`: CE + Jaccard metric loss (arXiv 2302.05666) |
| ``ctl_ce`` | :class:`CEOverlapLoss` of :class:`~monai_jdt.losses.SoftCrossEntropyLoss` and
  :class:`~monai_jdt.losses.CompatibleTverskyLoss` (``alpha = 0.3``, ``beta = 0.7`` by default) |
| ``ce`` | :class:`~monai_jdt.losses.SoftCrossEntropyLoss` (soft-label CE) |
| ``sdl_ce`` | MONAI ``DiceCELoss`` as is: the classic soft Dice loss (its Dice term is not soft-label correct) |

With distillation (``label_mode=kd``) the overlap name picks the overlap of
:class:`~monai_jdt.losses.DistillationLoss` (``dml_ce`` -> ``"dml"``, ...); ``ce``/``sdl_ce`` are refused there.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.losses import DiceCELoss
from torch.nn.modules.loss import _Loss

from monai_jdt.losses import (
    CompatibleTverskyLoss,
    DiceSemimetricCELoss,
    DistillationLoss,
    JaccardMetricCELoss,
    SoftCrossEntropyLoss,
)
from monai_jdt.utils.checks import check_bool, check_non_negative, check_option

__all__ = ["ACTIVE_CLASSES_AUTO", "LOSS_NAMES", "CEOverlapLoss", "make_loss"]

#: the ``--loss_name`` choices.
LOSS_NAMES = ("dml_ce", "jml_ce", "ctl_ce", "ce", "sdl_ce")

#: ``active_classes="auto"``: ``"present"`` for index (hard) targets, ``"all"`` for soft ones (the papers' choice).
ACTIVE_CLASSES_AUTO = "auto"

_KD_OVERLAP = {"dml_ce": "dml", "jml_ce": "jml", "ctl_ce": "ctl"}


class CEOverlapLoss(_Loss):
    """``lambda_ce * SoftCrossEntropyLoss + lambda_overlap * overlap``, with the terms kept for logging.

    Args:
        overlap: an overlap loss that applies its own activation (e.g. ``CompatibleTverskyLoss(softmax=True)``).
        lambda_ce: weight of the CE term, ``>= 0``.
        lambda_overlap: weight of the overlap term, ``>= 0``.
        to_onehot_y: the target is an index map (passed to the CE term; the overlap loss has its own flag).
        ignore_index: label of voxels to exclude from the CE term (the overlap loss has its own).

    Example:
        >>> loss = CEOverlapLoss(CompatibleTverskyLoss(alpha=0.3, beta=0.7, softmax=True, to_onehot_y=True),
        ...                      to_onehot_y=True)
        >>> value = loss(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 1, 8, 8)))
        >>> sorted(loss.last_parts), bool(value > 0)
        (['ce', 'overlap'], True)
    """

    def __init__(
        self,
        overlap: torch.nn.Module,
        lambda_ce: float = 0.25,
        lambda_overlap: float = 0.75,
        to_onehot_y: bool = False,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        self.overlap = overlap
        self.ce = SoftCrossEntropyLoss(to_onehot_y=check_bool("to_onehot_y", to_onehot_y), ignore_index=ignore_index)
        self.lambda_ce = check_non_negative("lambda_ce", lambda_ce)
        self.lambda_overlap = check_non_negative("lambda_overlap", lambda_overlap)
        self.last_parts: dict[str, torch.Tensor] = {}

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``lambda_ce * CE(input, target) + lambda_overlap * overlap(input, target)`` on logits ``input``."""
        ce = self.ce(input, target, mask)
        overlap = self.overlap(input, target, mask)
        self.last_parts = {"ce": ce.detach(), "overlap": overlap.detach()}
        return self.lambda_ce * ce + self.lambda_overlap * overlap


def _active(active_classes: str, to_onehot_y: bool) -> str:
    if active_classes == ACTIVE_CLASSES_AUTO:
        return "present" if to_onehot_y else "all"
    return check_option("active_classes", active_classes, ("all", "present", "prob", "both"))


def make_loss(
    name: str = "dml_ce",
    *,
    to_onehot_y: bool = False,
    include_background: bool = True,
    batch: bool = True,
    active_classes: str = ACTIVE_CLASSES_AUTO,
    lambda_ce: float = 0.25,
    lambda_overlap: float = 0.75,
    tversky_alpha: float = 0.3,
    tversky_beta: float = 0.7,
    sync_stats: bool = False,
    distillation: bool = False,
    temperature: float = 1.0,
    teacher_is_logits: bool = True,
    **overlap_options: Any,
) -> torch.nn.Module:
    """Build the loss ``name`` for logits ``(B, C, *spatial)`` and the target of the label mode.

    Args:
        name: one of :data:`LOSS_NAMES`.
        to_onehot_y: the target is an index map ``(B, 1, ...)`` (hard labels); ``False`` for soft targets.
        include_background: keep channel 0 in the overlap term.
        batch: pool the overlap statistics over the batch (the papers' dataset-level D term; ``False``: per image).
        active_classes: classes the overlap term averages over: ``"auto"`` (``"present"`` for hard targets,
            ``"all"`` for soft ones), ``"all"``, ``"present"``, ``"prob"`` or ``"both"``; not used by ``ce``/
            ``sdl_ce``.
        lambda_ce, lambda_overlap: weights of the two terms.
        tversky_alpha, tversky_beta: false-positive and false-negative weights of ``ctl_ce``.
        sync_stats: all-reduce the overlap statistics over the ranks (``torch.distributed``; ignored by ``ce``,
            not available for MONAI's ``sdl_ce``).
        distillation: build :class:`~monai_jdt.losses.DistillationLoss` with this overlap (``label_mode=kd``).
        temperature: distillation temperature.
        teacher_is_logits: the teacher is a network's logits (online) or probabilities (offline teacher maps).
        overlap_options: more options of the overlap loss (e.g. ``smooth_nr``, ``ignore_index``, ``log_loss``).

    Raises:
        ValueError: an unknown name, ``ce``/``sdl_ce`` with ``distillation=True``, or any loss option error.

    Example:
        >>> type(make_loss("jml_ce", to_onehot_y=True)).__name__, type(make_loss("sdl_ce")).__name__
        ('JaccardMetricCELoss', 'DiceCELoss')
    """
    name = check_option("name", name, LOSS_NAMES)
    to_onehot_y = check_bool("to_onehot_y", to_onehot_y)
    common: dict[str, Any] = dict(to_onehot_y=to_onehot_y, include_background=include_background, batch=batch)
    if distillation:
        if name not in _KD_OVERLAP:
            raise ValueError(f"loss_name must be one of {sorted(_KD_OVERLAP)} with label_mode='kd', got {name!r}")
        extra = dict(alpha=tversky_alpha, beta=tversky_beta) if name == "ctl_ce" else {}
        return DistillationLoss(
            overlap=_KD_OVERLAP[name],
            temperature=temperature,
            teacher_is_logits=check_bool("teacher_is_logits", teacher_is_logits),
            lambda_ce=lambda_ce,
            lambda_overlap=lambda_overlap,
            active_classes=_active(active_classes, to_onehot_y),
            sync_stats=sync_stats,
            **common,
            **extra,
            **overlap_options,
        )
    if name == "ce":
        return SoftCrossEntropyLoss(to_onehot_y=to_onehot_y, ignore_index=overlap_options.get("ignore_index"))
    if name == "sdl_ce":
        return DiceCELoss(softmax=True, lambda_ce=lambda_ce, lambda_dice=lambda_overlap, **common)
    overlap = dict(
        common, active_classes=_active(active_classes, to_onehot_y), sync_stats=sync_stats, **overlap_options
    )
    if name == "dml_ce":
        return DiceSemimetricCELoss(lambda_ce=lambda_ce, lambda_overlap=lambda_overlap, **overlap)
    if name == "jml_ce":
        return JaccardMetricCELoss(lambda_ce=lambda_ce, lambda_overlap=lambda_overlap, **overlap)
    tversky = CompatibleTverskyLoss(alpha=tversky_alpha, beta=tversky_beta, softmax=True, **overlap)
    return CEOverlapLoss(tversky, lambda_ce, lambda_overlap, to_onehot_y, overlap_options.get("ignore_index"))
