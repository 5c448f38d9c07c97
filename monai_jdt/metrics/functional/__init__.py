"""Pure functional forms of the metrics."""

from __future__ import annotations

from monai_jdt.metrics.functional.boundary_band import reference_band, resolve_band
from monai_jdt.metrics.functional.calibration import (
    CALIBRATION_FIGURES,
    binned_errors,
    calibration_errors,
    calibration_errors_from_statistics,
    reliability_bins,
)
from monai_jdt.metrics.functional.calibration_binning import bin_index, hard_index, top_label
from monai_jdt.metrics.functional.calibration_stats import CalibrationStatistics, calibration_statistics
from monai_jdt.metrics.functional.fine_grained import (
    OVERLAP_FIGURES,
    fine_grained_from_counts,
    fine_grained_overlap,
    overlap_scores,
    worst_mean,
)
from monai_jdt.metrics.functional.inputs import (
    DEFAULT_PROB_TOLERANCE,
    as_prediction,
    check_probabilities,
    resolve_target,
    target_is_index,
)
from monai_jdt.metrics.functional.overlap_counts import (
    COUNT_FIELDS,
    overlap_class_ids,
    overlap_counts,
    prediction_labels,
)
from monai_jdt.metrics.functional.soft_dice import QUBIQ_THRESHOLDS, check_thresholds, thresholded_soft_dice

__all__ = [
    "CALIBRATION_FIGURES",
    "COUNT_FIELDS",
    "DEFAULT_PROB_TOLERANCE",
    "OVERLAP_FIGURES",
    "QUBIQ_THRESHOLDS",
    "CalibrationStatistics",
    "as_prediction",
    "bin_index",
    "binned_errors",
    "calibration_errors",
    "calibration_errors_from_statistics",
    "calibration_statistics",
    "check_probabilities",
    "check_thresholds",
    "fine_grained_from_counts",
    "fine_grained_overlap",
    "hard_index",
    "overlap_class_ids",
    "overlap_counts",
    "overlap_scores",
    "prediction_labels",
    "reference_band",
    "reliability_bins",
    "resolve_band",
    "resolve_target",
    "target_is_index",
    "thresholded_soft_dice",
    "top_label",
    "worst_mean",
]
