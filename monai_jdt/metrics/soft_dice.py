"""Cumulative QUBIQ thresholded soft Dice metric."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE
from monai_jdt.metrics.functional.soft_dice import QUBIQ_THRESHOLDS, check_thresholds, thresholded_soft_dice
from monai_jdt.utils.checks import check_bool, check_in_range, check_option

__all__ = ["ThresholdedSoftDiceMetric"]

_REDUCTIONS = tuple(r.value for r in MetricReduction)


class ThresholdedSoftDiceMetric(CumulativeIterationMetric):
    """QUBIQ thresholded soft Dice per case and sub-task, accumulated over batches.

    Each call stores the ``(B, C)`` values of
    :func:`~monai_jdt.metrics.functional.soft_dice.thresholded_soft_dice` (binarise prediction and soft reference
    at each threshold with ``> t``, Dice per threshold with ``Dice = 1`` when both are empty, mean over
    thresholds); :meth:`aggregate` reduces them with MONAI's ``do_metric_reduction`` (no value is ever NaN).

    Args:
        thresholds: binarisation thresholds in ``[0, 1)``, default 0.1, ..., 0.9.
        include_background: keep channel 0 (default ``True``: QUBIQ channels are sub-tasks).
        reduction: MONAI reduction of the ``(cases, sub-tasks)`` values: ``"mean"`` (default), ``"sum"``,
            ``"mean_batch"`` (per sub-task), ``"sum_batch"``, ``"mean_channel"`` (per case), ``"sum_channel"``,
            ``"none"``.
        get_not_nans: also return the number of values, as MONAI's metrics do.
        ignore_index: label of voxels to exclude.
        prob_tolerance: values may leave ``[0, 1]`` by this much.

    Example:
        >>> metric = ThresholdedSoftDiceMetric(thresholds=(0.25, 0.5, 0.75))
        >>> _ = metric(torch.tensor([[[[0.95, 0.55, 0.15, 0.0]]]]), torch.tensor([[[[1.0, 2 / 3, 1 / 3, 0.0]]]]))
        >>> metric.aggregate()
        tensor([0.9333])
    """

    def __init__(
        self,
        thresholds: Sequence[float] = QUBIQ_THRESHOLDS,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        ignore_index: int | None = None,
        prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
    ) -> None:
        super().__init__()
        self.thresholds = check_thresholds(thresholds)
        self.include_background = check_bool("include_background", include_background)
        self.reduction = check_option("reduction", str(reduction), _REDUCTIONS)
        self.get_not_nans = check_bool("get_not_nans", get_not_nans)
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} {ignore_index!r}")
        self.ignore_index = ignore_index
        self.prob_tolerance = check_in_range("prob_tolerance", prob_tolerance, 0, 1, high_inclusive=False)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """``(B, C)`` thresholded soft Dice of a batch; ``mask=`` may be passed as a keyword."""
        if y is None:
            raise ValueError("ThresholdedSoftDiceMetric needs a target y, got None")
        return thresholded_soft_dice(
            y_pred,
            y,
            self.thresholds,
            include_background=self.include_background,
            ignore_index=self.ignore_index,
            mask=kwargs.get("mask"),
            prob_tolerance=self.prob_tolerance,
        )

    def aggregate(
        self, reduction: MetricReduction | str | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Reduce the stored ``(cases, sub-tasks)`` values (``reduction`` overrides the constructor's).

        Raises:
            ValueError: the metric has not been called since the last reset.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            raise ValueError("ThresholdedSoftDiceMetric has no data: call it on a batch before aggregate()")
        red = self.reduction if reduction is None else check_option("reduction", str(reduction), _REDUCTIONS)
        f, not_nans = do_metric_reduction(data, red)
        return (f, not_nans) if self.get_not_nans else f
