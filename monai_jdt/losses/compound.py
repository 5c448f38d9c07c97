"""``DiceSemimetricCELoss`` and ``JaccardMetricCELoss``: ``0.25 CE + 0.75 DML/JML`` as ``nn.Module``.

Thin wrappers that check and store the settings once and call
:func:`monai_jdt.losses.functional.compound.ce_overlap_loss`; the last two terms are kept for logging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn.modules.loss import _Loss

from monai_jdt.losses.functional.compound import COMPOUND_REDUCTIONS, ce_overlap_loss, resolve_activation
from monai_jdt.losses.functional.cross_entropy import check_class_weight
from monai_jdt.losses.overlap import DiceSemimetricLoss, JaccardMetricLoss
from monai_jdt.utils.checks import check_bool, check_non_negative, check_option

__all__ = ["DiceSemimetricCELoss", "JaccardMetricCELoss"]

_OVERLAP_MODULES = {"dice": DiceSemimetricLoss, "jaccard": JaccardMetricLoss}


class _CEOverlapLoss(_Loss):
    """Shared storage and ``forward`` of the two compound losses."""

    weight: torch.Tensor | None
    ce_weight: torch.Tensor | None

    def __init__(
        self,
        overlap: str,
        lambda_ce: float = 0.25,
        lambda_overlap: float = 0.75,
        ce_weight: Any = None,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool | None = None,
        other_act: Callable[[torch.Tensor], torch.Tensor] | None = None,
        reduction: str = "mean",
        ignore_index: int | None = None,
        weight: Any = None,
        **overlap_options: Any,
    ) -> None:
        super().__init__(reduction=check_option("reduction", reduction, COMPOUND_REDUCTIONS))
        self.overlap = overlap
        self.lambda_ce = check_non_negative("lambda_ce", lambda_ce)
        self.lambda_overlap = check_non_negative("lambda_overlap", lambda_overlap)
        resolve_activation(2, softmax, sigmoid, other_act)  # checks the flags (the channel count is checked later)
        self.include_background = check_bool("include_background", include_background)
        self.to_onehot_y = check_bool("to_onehot_y", to_onehot_y)
        self.sigmoid = sigmoid
        self.softmax = softmax
        self.other_act = other_act
        self.ignore_index = ignore_index
        # let the overlap loss check its own options now rather than at the first forward
        probe = _OVERLAP_MODULES[overlap](
            softmax=bool(softmax) if softmax is not None else not sigmoid and other_act is None,
            sigmoid=sigmoid,
            other_act=other_act,
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            ignore_index=ignore_index,
            reduction=reduction,
            weight=weight,
            **overlap_options,
        )
        self.overlap_options = dict(overlap_options)
        self.register_buffer("weight", probe.class_weight)
        self.register_buffer("ce_weight", check_class_weight(ce_weight, "ce_weight"))
        self.last_parts: dict[str, torch.Tensor] = {}

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute ``lambda_ce * CE + lambda_overlap * overlap``; ``last_parts`` then holds both terms (detached).

        Args:
            input: ``(B, C, *spatial)`` logits.
            target: ``(B, C, *spatial)`` one-hot/soft target, or an index map with ``to_onehot_y=True``.
            mask: optional bool ``(B, 1, *spatial)``/``(B, *spatial)`` voxel mask, ``True`` where a voxel counts.

        Raises:
            ShapeError, ValueError, TypeError: as the two terms (see :func:`ce_overlap_loss`).
        """
        parts = ce_overlap_loss(
            input,
            target,
            mask,
            overlap=self.overlap,
            lambda_ce=self.lambda_ce,
            lambda_overlap=self.lambda_overlap,
            ce_weight=self.ce_weight,
            softmax=self.softmax,
            sigmoid=self.sigmoid,
            other_act=self.other_act,
            to_onehot_y=self.to_onehot_y,
            include_background=self.include_background,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            weight=self.weight,
            **self.overlap_options,
        )
        self.last_parts = {"ce": parts.ce.detach(), "overlap": parts.overlap.detach()}
        return parts.total

    def extra_repr(self) -> str:
        return f"lambda_ce={self.lambda_ce}, lambda_overlap={self.lambda_overlap}, reduction={self.reduction!r}"


class DiceSemimetricCELoss(_CEOverlapLoss):
    r"""Cross-entropy plus Dice semimetric loss: :math:`\lambda_{ce} \mathrm{CE} + \lambda_{overlap} \mathrm{DML}`.

    The recipe of the DML paper (arXiv 2303.16296): ``0.25 * CE + 0.75 * DML`` by default, where the CE accepts
    soft (probability) targets (:func:`~monai_jdt.losses.functional.soft_cross_entropy`) and
    ``DML = 1 - (2 tp + smooth_nr) / (2 tp + fp + fn + smooth_dr)`` with ``tp = (|x| + |y| - |x - y|) / 2``
    (:class:`~monai_jdt.losses.DiceSemimetricLoss`). Unlike MONAI's ``DiceCELoss`` it is correct on soft labels,
    applies a softmax by default (the input is logits), and takes ``ignore_index`` and a ``mask`` for both terms.
    After each call ``last_parts`` holds ``{"ce": ..., "overlap": ...}`` (detached) for logging. See
    :mod:`monai_jdt.losses.functional.compound` for the activation / background / weight choices.

    Example:
        >>> loss_fn = DiceSemimetricCELoss(to_onehot_y=True, active_classes="present")
        >>> logits = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
        >>> labels = torch.randint(0, 3, (2, 1, 8, 8, 8))
        >>> loss = loss_fn(logits, labels)
        >>> loss.backward()
        >>> sorted(loss_fn.last_parts)
        ['ce', 'overlap']
    """

    def __init__(
        self,
        lambda_ce: float = 0.25,
        lambda_overlap: float = 0.75,
        ce_weight: Any = None,
        softmax: bool | None = None,
        **common: Any,
    ) -> None:
        """
        Args:
            lambda_ce: weight of the CE term, ``>= 0``.
            lambda_overlap: weight of the DML term, ``>= 0``.
            ce_weight: per-class weights of the CE term (``C`` entries, ``C - 1`` in the sigmoid form without
                background); ``weight`` (in ``common``) is the DML term's class weight.
            softmax: None (default: softmax for ``C > 1``, sigmoid for ``C = 1``, unless ``sigmoid`` or
                ``other_act`` is set), True or False (then ``sigmoid`` or ``other_act`` must be set).
            common: the options of :class:`~monai_jdt.losses.DiceSemimetricLoss` (``include_background``,
                ``to_onehot_y``, ``sigmoid``, ``other_act``, ``reduction`` (``"mean"``/``"sum"`` only),
                ``smooth_nr``, ``smooth_dr``, ``batch``, ``weight``, ``ord``, ``log_loss``, ``gamma``,
                ``class_agnostic``, ``active_classes``, ``active_threshold``, ``levels``, ``ignore_index``,
                ``sync_stats``, ``fused``). ``include_background``, ``to_onehot_y``, ``sigmoid``,
                ``ignore_index`` and ``reduction`` apply to the CE term too.

        Raises:
            ValueError: negative ``lambda_*``, ``reduction="none"``, no activation, and every option error of
                :class:`~monai_jdt.losses.DiceSemimetricLoss`.
            TypeError: options of the wrong type.
        """
        super().__init__("dice", lambda_ce, lambda_overlap, ce_weight, softmax=softmax, **common)


class JaccardMetricCELoss(_CEOverlapLoss):
    r"""Cross-entropy plus Jaccard metric loss: :math:`\lambda_{ce} \mathrm{CE} + \lambda_{overlap} \mathrm{JML}`.

    The recipe of the JML paper (arXiv 2302.05666): ``0.25 * CE + 0.75 * JML`` by default, with
    ``JML = 1 - (2 tp + smooth_nr) / (2 (tp + fp + fn) + smooth_dr)`` (:class:`~monai_jdt.losses.JaccardMetricLoss`)
    and the soft-label CE. Same arguments and behaviour as :class:`DiceSemimetricCELoss`.

    Example:
        >>> loss_fn = JaccardMetricCELoss(include_background=False)
        >>> soft = torch.softmax(torch.randn(2, 3, 8, 8), 1)
        >>> loss = loss_fn(torch.randn(2, 3, 8, 8), soft)
        >>> bool(loss > 0)
        True
    """

    def __init__(
        self,
        lambda_ce: float = 0.25,
        lambda_overlap: float = 0.75,
        ce_weight: Any = None,
        softmax: bool | None = None,
        **common: Any,
    ) -> None:
        """
        Args:
            lambda_ce: weight of the CE term, ``>= 0``.
            lambda_overlap: weight of the JML term, ``>= 0``.
            ce_weight: per-class weights of the CE term; ``weight`` (in ``common``) is the JML term's.
            softmax: None (auto), True or False, as in :class:`DiceSemimetricCELoss`.
            common: the options of :class:`~monai_jdt.losses.JaccardMetricLoss`, as in
                :class:`DiceSemimetricCELoss`.

        Raises:
            ValueError, TypeError: as :class:`DiceSemimetricCELoss`.
        """
        super().__init__("jaccard", lambda_ce, lambda_overlap, ce_weight, softmax=softmax, **common)
