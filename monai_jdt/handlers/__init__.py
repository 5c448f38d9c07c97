"""Ignite handlers (MONAI ``IgniteMetricHandler`` wrappers) so bundles can use the metrics of
:mod:`monai_jdt.metrics` as ``key_metric`` / ``additional_metrics``.

Use fully qualified targets in bundle configs, e.g. ``"_target_": "monai_jdt.handlers.CalibrationHandler"``.
"""

from __future__ import annotations

from monai_jdt.handlers.calibration import CalibrationHandler
from monai_jdt.handlers.figure import FigureMetricHandler
from monai_jdt.handlers.overlap import FineGrainedOverlapHandler
from monai_jdt.handlers.soft_dice import ThresholdedSoftDiceHandler

__all__ = ["CalibrationHandler", "FigureMetricHandler", "FineGrainedOverlapHandler", "ThresholdedSoftDiceHandler"]
