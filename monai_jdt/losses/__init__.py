"""Soft-label overlap losses (DML, JML, CTL), their CE compounds and the Lovász baselines."""

from __future__ import annotations

from monai_jdt.losses.compound import DiceSemimetricCELoss, JaccardMetricCELoss
from monai_jdt.losses.cross_entropy import SoftCrossEntropyLoss
from monai_jdt.losses.distillation import DistillationLoss
from monai_jdt.losses.lovasz import LovaszHingeLoss, LovaszSoftmaxLoss
from monai_jdt.losses.overlap import CompatibleTverskyLoss, DiceSemimetricLoss, JaccardMetricLoss

__all__ = [
    "CompatibleTverskyLoss",
    "DiceSemimetricLoss",
    "JaccardMetricLoss",
    "DiceSemimetricCELoss",
    "JaccardMetricCELoss",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "SoftCrossEntropyLoss",
    "DistillationLoss",
]
