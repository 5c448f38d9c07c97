"""Fine-grained overlap, QUBIQ thresholded soft Dice and calibration metrics.

Each metric is a pure function (:mod:`monai_jdt.metrics.functional`) plus a
:class:`monai.metrics.CumulativeIterationMetric` that accumulates per-image statistics over batches.
``plot_reliability`` lives in :mod:`monai_jdt.metrics.plot` (matplotlib is optional) and is re-exported here.
"""

from __future__ import annotations

from monai_jdt.metrics.calibration import CalibrationMetric
from monai_jdt.metrics.fine_grained import FineGrainedOverlapMetric
from monai_jdt.metrics.functional import (
    CalibrationStatistics,
    calibration_errors,
    calibration_statistics,
    fine_grained_overlap,
    thresholded_soft_dice,
)
from monai_jdt.metrics.plot import plot_reliability, reliability_table
from monai_jdt.metrics.soft_dice import ThresholdedSoftDiceMetric

__all__ = [
    "CalibrationMetric",
    "CalibrationStatistics",
    "FineGrainedOverlapMetric",
    "ThresholdedSoftDiceMetric",
    "calibration_errors",
    "calibration_statistics",
    "fine_grained_overlap",
    "plot_reliability",
    "reliability_table",
    "thresholded_soft_dice",
]
