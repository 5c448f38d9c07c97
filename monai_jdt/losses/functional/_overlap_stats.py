"""Per-(image, class) L^p cardinalities of the prediction, the target and their difference (generic autograd path).

For a prediction ``x`` and a target ``y`` (``B, C, N`` after flattening the spatial dims) and a voxel mask ``m``,
the overlap losses only need, per image ``b`` and class ``c``:

* ``P = sum_n m |x|^p``, ``G = sum_n m |y|^p`` and ``D = sum_n m |x - y|^p``;
* optionally ``max_n m y`` and ``max_n m x`` (for ``active_classes``).

For an index-map target ``y`` is never expanded to one-hot: with ``l_n`` the label of voxel ``n``,
``D_c = P_c + sum_{n: l_n = c} m (|x_{c,n} - 1|^p - |x_{c,n}|^p)`` (a gather and a scatter-add) and ``G_c`` is the
number of valid voxels labelled ``c``. Statistics are returned in float64 whatever the input's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

from monai_jdt.utils.targets import SegTarget

__all__ = ["OverlapStats", "elementwise_power", "generic_stats"]


@dataclass(frozen=True)
class OverlapStats:
    """Cardinalities per image and class, each ``(B, C)`` float64.

    Attributes:
        pred: ``|x|_p^p``, differentiable with respect to the prediction.
        target: ``|y|_p^p``.
        diff: ``|x - y|_p^p``, differentiable with respect to the prediction.
        target_max: max of the (masked) target per image and class, or ``None`` when not requested.
        pred_max: max of the (masked) prediction per image and class, or ``None`` when not requested.
    """

    pred: torch.Tensor
    target: torch.Tensor
    diff: torch.Tensor
    target_max: torch.Tensor | None = None
    pred_max: torch.Tensor | None = None

    def drop_first_class(self) -> OverlapStats:
        """The statistics without class 0 (``include_background=False``)."""

        def cut(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[:, 1:]

        return OverlapStats(
            pred=self.pred[:, 1:],
            target=self.target[:, 1:],
            diff=self.diff[:, 1:],
            target_max=cut(self.target_max),
            pred_max=cut(self.pred_max),
        )


def elementwise_power(v: torch.Tensor, p: float) -> torch.Tensor:
    """``|v|^p`` with a gradient that is finite at 0 (``sign(v)`` for p = 1, ``2v`` for p = 2)."""
    if p == 1:
        return v.abs()
    if p == 2:
        return v.square()
    return v.abs().pow(p)


def _card(v: torch.Tensor, p: float, nonneg: bool = False) -> torch.Tensor:
    if p == 1 and nonneg:  # |v| = v: no temporary for the absolute values
        return v.sum(-1).to(torch.float64)
    return elementwise_power(v, p).sum(-1).to(torch.float64)


def _masked_max(v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None:
        v = torch.where(mask[:, None], v, torch.full((), float("-inf"), dtype=v.dtype, device=v.device))
    return v.detach().amax(-1).to(torch.float64)


def _dense_stats(
    x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, p: float, want_target_max: bool, nonneg: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    if mask is not None:
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        x = torch.where(mask[:, None], x, zero)
        y = torch.where(mask[:, None], y, zero)
    target_max = y.detach().amax(-1).to(torch.float64) if want_target_max else None
    return _card(x, p, nonneg), _card(y, p, nonneg=True), _card(x - y, p), target_max


def _index_stats(
    x: torch.Tensor, label: torch.Tensor, mask: torch.Tensor | None, p: float, nonneg: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, num_classes = x.shape[:2]
    if mask is not None:
        x = torch.where(mask[:, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
    card_pred = _card(x, p, nonneg)
    x_at_label = x.gather(1, label[:, None])[:, 0]
    delta = (elementwise_power(x_at_label - 1, p) - elementwise_power(x_at_label, p)).to(torch.float64)
    counts = torch.ones_like(delta) if mask is None else mask.to(torch.float64)
    if mask is not None:
        delta = delta * counts
    zeros = torch.zeros(batch, num_classes, dtype=torch.float64, device=x.device)
    card_diff = card_pred + zeros.scatter_add(1, label, delta)
    card_target = zeros.scatter_add(1, label, counts)
    target_max = (card_target > 0).to(torch.float64)
    return card_pred, card_target, card_diff, target_max


def generic_stats(
    x: torch.Tensor, target: SegTarget, p: float, *, want_max: tuple[bool, bool], nonneg: bool = False
) -> OverlapStats:
    """Cardinalities of an activated prediction ``x`` (``B, C, *spatial``) against a validated target.

    Args:
        x: the prediction after the activation.
        target: the output of :func:`monai_jdt.utils.targets.prepare_target` for ``x`` (dense values in [0, 1]).
        p: the exponent of the L^p cardinalities (``>= 1``).
        want_max: whether to return the target's and the prediction's maxima (for ``active_classes``).
        nonneg: ``x`` is known to be non-negative (sigmoid/softmax output), so ``|x| = x``.
    """
    batch, num_classes = x.shape[:2]
    xf = x.reshape(batch, num_classes, -1)
    mask = None if target.mask is None else target.mask.reshape(batch, -1)
    want_target_max, want_pred_max = want_max
    if target.index is not None:
        label = target.index.reshape(batch, -1)
        card_pred, card_target, card_diff, target_max = _index_stats(xf, label, mask, p, nonneg)
    else:
        yf = cast(torch.Tensor, target.dense).reshape(batch, num_classes, -1)
        card_pred, card_target, card_diff, target_max = _dense_stats(xf, yf, mask, p, want_target_max, nonneg)
    return OverlapStats(
        pred=card_pred,
        target=card_target,
        diff=card_diff,
        target_max=target_max if want_target_max else None,
        pred_max=_masked_max(xf, mask) if want_pred_max else None,
    )
