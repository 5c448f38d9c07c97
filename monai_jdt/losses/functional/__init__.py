"""Pure functional forms of the losses."""

from __future__ import annotations

from monai_jdt.losses.functional.overlap import (
    compatible_tversky_loss,
    dice_semimetric_loss,
    jaccard_metric_loss,
)

__all__ = [
    "compatible_tversky_loss",
    "dice_semimetric_loss",
    "jaccard_metric_loss",
]
