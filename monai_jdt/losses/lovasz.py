"""Lovász-softmax and Lovász-hinge losses as ``nn.Module`` (settings stored, computation in the functional form)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn.modules.loss import _Loss

from monai_jdt.losses.functional.lovasz import (
    _check_activation,
    _check_common,
    lovasz_hinge_loss,
    lovasz_softmax_loss,
)

__all__ = ["LovaszHingeLoss", "LovaszSoftmaxLoss"]


def _check_ignore_index(ignore_index: int | None) -> int | None:
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} {ignore_index!r}")
    return ignore_index


class LovaszSoftmaxLoss(_Loss):
    """Lovász-softmax loss (Berman, Rannen Triki & Blaschko, CVPR 2018, arXiv 1705.08790).

    The convex surrogate of the Jaccard (IoU) loss for **hard** labels, the baseline of the JML/DML papers
    (arXiv 2302.05666, 2303.16296). For class ``c`` with errors ``m_i = |y_{ic} - p_{ic}|`` sorted in decreasing
    order ``m_{pi_1} >= m_{pi_2} >= ...``:

    .. math::

        L_c = \\sum_i m_{\\pi_i} \\left(\\Delta_J(\\{\\pi_1..\\pi_i\\}) - \\Delta_J(\\{\\pi_1..\\pi_{i-1}\\})\\right),
        \\qquad \\Delta_J(M) = \\frac{|M|}{|Y_c \\cup M|},

    the Lovász extension of the Jaccard loss ``Delta_J`` (on hard predictions it equals ``1 - IoU_c``). The loss is
    the mean over active classes per image (or over the batch-pooled classes with ``batch=True``), then over
    images. Soft targets raise a ``ValueError``: use :class:`~monai_jdt.losses.JaccardMetricLoss` for them.

    Example:
        >>> loss_fn = LovaszSoftmaxLoss(softmax=True, to_onehot_y=True, active_classes="present")
        >>> logits = torch.randn(2, 3, 8, 8, requires_grad=True)
        >>> labels = torch.randint(0, 3, (2, 1, 8, 8))
        >>> loss = loss_fn(logits, labels)
        >>> loss.backward()
        >>> loss.ndim, bool(0 <= loss.item() <= 1)
        (0, True)
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Callable[[torch.Tensor], torch.Tensor] | None = None,
        reduction: str = "mean",
        batch: bool = False,
        active_classes: str = "all",
        ignore_index: int | None = None,
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 (background) is excluded after the activation.
            to_onehot_y: whether the target is an index map ``(B, 1, *spatial)`` or ``(B, *spatial)``.
            sigmoid: apply a sigmoid to the input (multi-label: each channel its own binary problem).
            softmax: apply a softmax over the channels to the input (logits).
            other_act: another activation callable, e.g. ``torch.tanh``. The three activations are mutually
                exclusive; with none of them the input must hold probabilities in ``[0, 1]``.
            reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per image and class ``(B, C, 1, ...)``, or
                ``(C, 1, ...)`` with ``batch``, as MONAI's ``DiceLoss``; inactive entries are 0).
            batch: pool the voxels of the whole batch per class (Berman et al.'s default) instead of one loss per
                image (``per_image=True`` in their code).
            active_classes: ``"all"`` (MONAI's behaviour, the default here) or ``"present"`` (a class counts only
                where the target has a kept voxel of it; Berman et al.'s default and the papers' recommendation
                for hard labels). Nothing active gives a zero loss that keeps the graph.
            ignore_index: label value (index maps) or channel/sentinel (dense targets) of voxels to exclude.

        Raises:
            ValueError: unknown ``reduction``/``active_classes``, several activations set.
            TypeError: an argument of the wrong type.
        """
        active_classes, reduction = _check_common(include_background, to_onehot_y, batch, active_classes, reduction)
        super().__init__(reduction=reduction)
        _check_activation(sigmoid, softmax, other_act)
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.sigmoid = sigmoid
        self.softmax = softmax
        self.other_act = other_act
        self.batch = batch
        self.active_classes = active_classes
        self.ignore_index = _check_ignore_index(ignore_index)

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, *spatial)`` probabilities, or logits with an activation set.
            target: index map (with ``to_onehot_y``) or ``(B, C, *spatial)`` one-hot / multi-label {0, 1} map.
            mask: optional ``(B, 1, *spatial)`` or ``(B, *spatial)`` bool, ``True`` where a voxel counts.

        Raises:
            ValueError: a soft target (see :class:`~monai_jdt.losses.JaccardMetricLoss`), label values out of range.
            ShapeError: shapes that do not fit.
        """
        return lovasz_softmax_loss(
            input,
            target,
            mask,
            include_background=self.include_background,
            to_onehot_y=self.to_onehot_y,
            sigmoid=self.sigmoid,
            softmax=self.softmax,
            other_act=self.other_act,
            batch=self.batch,
            active_classes=self.active_classes,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class LovaszHingeLoss(_Loss):
    """Lovász-hinge loss (Yu & Blaschko, TPAMI 2018, arXiv 1512.07797; Berman et al., CVPR 2018, arXiv 1705.08790).

    The convex surrogate of the binary Jaccard loss on **logits** ``z``. With signs ``s_i = 2 y_i - 1`` and hinge
    errors ``m_i = max(0, 1 - s_i z_i)`` sorted in decreasing order, the loss of a channel is the Lovász
    extension of the Jaccard loss ``Delta_J(M) = |M| / |Y u M|``:

    .. math::

        L = \\sum_i m_{\\pi_i} \\left(\\Delta_J(\\{\\pi_1..\\pi_i\\}) - \\Delta_J(\\{\\pi_1..\\pi_{i-1}\\})\\right).

    A single-channel input ``(B, 1, ...)`` is the binary foreground-vs-background problem. With ``C > 1``
    channels, every channel is an independent one-vs-rest binary problem (a multi-label head, as with a sigmoid;
    for mutually exclusive classes prefer :class:`LovaszSoftmaxLoss`), and the losses are averaged over channels
    like the other losses of the package. Soft targets raise a ``ValueError``.

    Example:
        >>> loss_fn = LovaszHingeLoss()
        >>> logits = torch.randn(2, 1, 8, 8, requires_grad=True)
        >>> labels = (torch.rand(2, 1, 8, 8) > 0.5).float()
        >>> loss_fn(logits, labels).backward()
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        reduction: str = "mean",
        batch: bool = False,
        active_classes: str = "all",
        ignore_index: int | None = None,
    ) -> None:
        """
        Args:
            include_background: if False, channel 0 is excluded (ignored with a warning for ``C = 1``).
            to_onehot_y: whether the target is an index map (``C > 1``: one-vs-rest per channel).
            reduction: ``"mean"`` | ``"sum"`` | ``"none"``, as in :class:`LovaszSoftmaxLoss`.
            batch: pool the voxels of the whole batch per channel instead of one loss per image (Berman et al.'s
                ``per_image=True``, their default for the hinge, is ``batch=False``).
            active_classes: ``"all"`` or ``"present"`` (a channel counts only where its target has a kept voxel).
            ignore_index: label value (index maps) or channel/sentinel (dense targets) of voxels to exclude.

        Raises:
            ValueError: unknown ``reduction``/``active_classes``.
            TypeError: an argument of the wrong type.
        """
        active_classes, reduction = _check_common(include_background, to_onehot_y, batch, active_classes, reduction)
        super().__init__(reduction=reduction)
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.batch = batch
        self.active_classes = active_classes
        self.ignore_index = _check_ignore_index(ignore_index)

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: ``(B, C, *spatial)`` logits.
            target: index map (with ``to_onehot_y``, ``C > 1``) or ``(B, C, *spatial)`` {0, 1} map.
            mask: optional ``(B, 1, *spatial)`` or ``(B, *spatial)`` bool, ``True`` where a voxel counts.

        Raises:
            ValueError: a soft target, label values out of range.
            ShapeError: shapes that do not fit.
        """
        return lovasz_hinge_loss(
            input,
            target,
            mask,
            include_background=self.include_background,
            to_onehot_y=self.to_onehot_y,
            batch=self.batch,
            active_classes=self.active_classes,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )
