"""Ignite handler of the calibration metric, for bundle ``key_metric`` / ``additional_metrics``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monai_jdt.handlers.figure import FigureMetricHandler, _identity
from monai_jdt.metrics.calibration import CalibrationMetric
from monai_jdt.metrics.functional.calibration import CALIBRATION_FIGURES
from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE

__all__ = ["CalibrationHandler"]


class CalibrationHandler(FigureMetricHandler):
    """Reports one figure of :class:`~monai_jdt.metrics.CalibrationMetric` (default: dataset-level ECE).

    Lower is better for every calibration figure: as a ``CheckpointSaver`` key metric use
    ``key_metric_negative_sign=True``.

    Args:
        figure: ``"ece"`` (default), ``"mce"``, ``"sce"``, ``"brier"``, ``"nll"`` or ``"bece"`` (needs
            ``boundary_kernel_size`` or ``boundary_radius_mm``).
        n_bins, level, include_background, ignore_index, boundary_kernel_size, boundary_radius_mm, spacing,
            prob_tolerance: see :class:`~monai_jdt.metrics.CalibrationMetric`.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``; ``y_pred`` must be probabilities.
        empty_value: reported when the figure has nothing to average; ``None`` raises.

    Raises:
        ValueError: ``figure="bece"`` without a boundary band, or bad options.

    Example:
        >>> import torch
        >>> from ignite.engine import Engine
        >>> probs = torch.tensor([[[[0.9, 0.3]], [[0.1, 0.7]]]])
        >>> engine = Engine(lambda e, batch: batch)
        >>> CalibrationHandler(figure="brier", n_bins=2).attach(engine, "brier")
        >>> round(engine.run([(probs, torch.tensor([[[[0, 0]]]]))]).metrics["brier"], 4)
        0.5
    """

    def __init__(
        self,
        figure: str = "ece",
        n_bins: int = 15,
        level: str = "dataset",
        include_background: bool = True,
        ignore_index: int | None = None,
        boundary_kernel_size: int | Sequence[int] | None = None,
        boundary_radius_mm: float | Sequence[float] | None = None,
        spacing: Any = None,
        prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
        output_transform: Callable = _identity,
        empty_value: float | None = None,
    ) -> None:
        metric = CalibrationMetric(
            n_bins=n_bins,
            level=level,
            include_background=include_background,
            ignore_index=ignore_index,
            boundary_kernel_size=boundary_kernel_size,
            boundary_radius_mm=boundary_radius_mm,
            spacing=spacing,
            prob_tolerance=prob_tolerance,
        )
        super().__init__(
            metric, figure, CALIBRATION_FIGURES, output_transform=output_transform, empty_value=empty_value
        )
        if self.figure == "bece" and not metric.has_band:
            raise ValueError("figure='bece' needs a boundary band: pass boundary_kernel_size or boundary_radius_mm")
