"""Pure functional forms of the soft-label transforms (batched ``(B, ...)`` tensors, any device)."""

from __future__ import annotations

from monai_jdt.transforms.functional.boundary import boundary_mask, box_half_widths, spacing_half_widths
from monai_jdt.transforms.functional.fusion import FUSION_METHODS, fuse_raters, rater_agreement_weights
from monai_jdt.transforms.functional.smoothing import boundary_label_smoothing, label_smoothing

__all__ = [
    "FUSION_METHODS",
    "boundary_label_smoothing",
    "boundary_mask",
    "box_half_widths",
    "fuse_raters",
    "label_smoothing",
    "rater_agreement_weights",
    "spacing_half_widths",
]
