"""Ignite handler of the QUBIQ thresholded soft Dice metric."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monai.handlers import IgniteMetricHandler
from monai.utils import MetricReduction

from monai_jdt.handlers.figure import _identity
from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE
from monai_jdt.metrics.functional.soft_dice import QUBIQ_THRESHOLDS
from monai_jdt.metrics.soft_dice import ThresholdedSoftDiceMetric

__all__ = ["ThresholdedSoftDiceHandler"]


class ThresholdedSoftDiceHandler(IgniteMetricHandler):
    """Mean QUBIQ thresholded soft Dice over cases and sub-tasks, as an ignite metric (like MONAI's ``MeanDice``).

    Args:
        thresholds, include_background, reduction, ignore_index, prob_tolerance: see
            :class:`~monai_jdt.metrics.ThresholdedSoftDiceMetric`.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``.
        save_details: store the per-case, per-sub-task values in ``engine.state.metric_details[name]`` (as
            MONAI's handlers do, e.g. for ``MetricsSaver``).

    Example:
        >>> import torch
        >>> from ignite.engine import Engine
        >>> engine = Engine(lambda e, batch: batch)
        >>> ThresholdedSoftDiceHandler(thresholds=(0.25, 0.5, 0.75)).attach(engine, "qubiq")
        >>> batch = (torch.tensor([[[[0.95, 0.55, 0.15, 0.0]]]]), torch.tensor([[[[1.0, 2 / 3, 1 / 3, 0.0]]]]))
        >>> round(engine.run([batch]).metrics["qubiq"], 4)
        0.9333
    """

    def __init__(
        self,
        thresholds: Sequence[float] = QUBIQ_THRESHOLDS,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        ignore_index: int | None = None,
        prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
        output_transform: Callable = _identity,
        save_details: bool = True,
    ) -> None:
        metric = ThresholdedSoftDiceMetric(
            thresholds=thresholds,
            include_background=include_background,
            reduction=reduction,
            ignore_index=ignore_index,
            prob_tolerance=prob_tolerance,
        )
        super().__init__(metric_fn=metric, output_transform=output_transform, save_details=save_details)
