"""Pure functional forms of the losses."""

from __future__ import annotations

from monai_jdt.losses.functional.compound import (
    CEOverlapParts,
    ce_overlap_loss,
    dice_semimetric_ce_loss,
    jaccard_metric_ce_loss,
)
from monai_jdt.losses.functional.cross_entropy import soft_cross_entropy
from monai_jdt.losses.functional.distillation import (
    DistillationParts,
    distillation_kl_div,
    distillation_loss,
    distillation_loss_parts,
)
from monai_jdt.losses.functional.lovasz import lovasz_hinge_loss, lovasz_jaccard_extension, lovasz_softmax_loss
from monai_jdt.losses.functional.overlap import (
    compatible_tversky_loss,
    dice_semimetric_loss,
    jaccard_metric_loss,
)

__all__ = [
    "compatible_tversky_loss",
    "dice_semimetric_loss",
    "jaccard_metric_loss",
    "CEOverlapParts",
    "ce_overlap_loss",
    "dice_semimetric_ce_loss",
    "jaccard_metric_ce_loss",
    "lovasz_hinge_loss",
    "lovasz_jaccard_extension",
    "lovasz_softmax_loss",
    "soft_cross_entropy",
    "DistillationParts",
    "distillation_kl_div",
    "distillation_loss",
    "distillation_loss_parts",
]
