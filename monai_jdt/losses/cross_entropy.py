"""Soft-label cross-entropy as an ``nn.Module`` (settings stored, computation in the functional form)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.modules.loss import _Loss

from monai_jdt.losses.functional.cross_entropy import REDUCTIONS, check_class_weight, soft_cross_entropy
from monai_jdt.utils.checks import check_bool, check_option

__all__ = ["SoftCrossEntropyLoss"]


class SoftCrossEntropyLoss(_Loss):
    r"""Cross-entropy on logits that accepts index maps, one-hot and soft (probability) targets and a voxel mask.

    Softmax form: :math:`L = \sum_{i \in K} -\sum_c w_c y_{ic} \log \mathrm{softmax}(z_i)_c \,/\,
    \sum_{i \in K} \sum_c w_c y_{ic}` over the kept voxels ``K`` (``|K|`` without weights), which equals
    :func:`torch.nn.functional.cross_entropy` on index maps (weights, ``ignore_index``) and on probability
    targets (no weights). Sigmoid form (``sigmoid=True`` or one channel): the mean binary cross-entropy with
    logits over kept voxels and channels. See :mod:`monai_jdt.losses.functional.cross_entropy`.

    Unlike ``torch.nn.CrossEntropyLoss`` it takes MONAI-style ``(B, 1, ...)`` index maps, a ``mask`` for any
    target form, and gives a zero loss with a graph (not NaN) when every voxel is excluded.

    Example:
        >>> loss_fn = SoftCrossEntropyLoss(to_onehot_y=True, ignore_index=255)
        >>> logits = torch.randn(2, 3, 8, 8, requires_grad=True)
        >>> labels = torch.randint(0, 3, (2, 1, 8, 8))
        >>> labels[:, :, :2] = 255
        >>> ref = torch.nn.functional.cross_entropy(logits, labels[:, 0], ignore_index=255)
        >>> bool(torch.isclose(loss_fn(logits, labels), ref))
        True
    """

    weight: torch.Tensor | None

    def __init__(
        self,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        include_background: bool = True,
        weight: Sequence[float] | torch.Tensor | None = None,
        ignore_index: int | None = None,
        reduction: str = "mean",
    ) -> None:
        """
        Args:
            to_onehot_y: whether the target is an index map ``(B, 1, *spatial)`` or ``(B, *spatial)``.
            sigmoid: binary / multi-label form (one sigmoid per channel); always used for a single channel.
            include_background: sigmoid form only; if False channel 0 is excluded. Must stay True for the softmax
                form, which always covers every class.
            weight: per-class weights (``>= 0``), stored as a buffer (moves with ``.to(device)``).
            ignore_index: label value (index maps) or channel/sentinel (dense targets) of voxels to exclude.
            reduction: ``"mean"`` (weighted mean over kept voxels), ``"sum"`` or ``"none"`` (per voxel).

        Raises:
            ValueError: unknown ``reduction``, negative or non-finite weights, ``include_background=False``
                without ``sigmoid``.
            TypeError: an argument of the wrong type.
        """
        super().__init__(reduction=check_option("reduction", reduction, REDUCTIONS))
        self.to_onehot_y = check_bool("to_onehot_y", to_onehot_y)
        self.sigmoid = check_bool("sigmoid", sigmoid)
        self.include_background = check_bool("include_background", include_background)
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} {ignore_index!r}")
        self.ignore_index = ignore_index
        self.register_buffer("weight", check_class_weight(weight))

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, *spatial)`` logits.
            target: index map (with ``to_onehot_y``) or ``(B, C, *spatial)`` one-hot / soft probabilities.
            mask: optional ``(B, 1, *spatial)`` or ``(B, *spatial)`` bool, ``True`` where a voxel counts.

        Raises:
            ValueError: soft values outside ``[0, 1]``, labels out of range, a weight of the wrong length.
            ShapeError: shapes that do not fit.
        """
        return soft_cross_entropy(
            input,
            target,
            mask,
            to_onehot_y=self.to_onehot_y,
            sigmoid=self.sigmoid,
            include_background=self.include_background,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )
