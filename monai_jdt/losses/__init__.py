"""Soft-label overlap losses (DML, JML, CTL), their CE compounds and the Lovász baselines."""

from __future__ import annotations

from monai_jdt.losses.overlap import CompatibleTverskyLoss, DiceSemimetricLoss, JaccardMetricLoss

__all__ = [
    "CompatibleTverskyLoss",
    "DiceSemimetricLoss",
    "JaccardMetricLoss",
]
