"""Soft-label sources as MONAI transforms: boundary label smoothing, label smoothing, multi-rater fusion.

Also :func:`weak_strong_views`, the voxel-aligned weak/strong views of semi-supervised (mean-teacher) training.

Array transforms take one channel-first image; dictionary transforms (``...d`` with ``...D``/``...Dict`` aliases,
like MONAI) work on a data dict. Pure batched functional forms live in :mod:`monai_jdt.transforms.functional`.
"""

from __future__ import annotations

from monai_jdt.transforms.boundary_smoothing import (
    BoundaryLabelSmoothing,
    BoundaryLabelSmoothingD,
    BoundaryLabelSmoothingd,
    BoundaryLabelSmoothingDict,
)
from monai_jdt.transforms.functional import boundary_label_smoothing, boundary_mask, fuse_raters, label_smoothing
from monai_jdt.transforms.rater_fusion import (
    FuseRaters,
    FuseRatersD,
    FuseRatersd,
    FuseRatersDict,
    RandFuseRaters,
    RandFuseRatersD,
    RandFuseRatersd,
    RandFuseRatersDict,
)
from monai_jdt.transforms.uniform_smoothing import LabelSmoothing, LabelSmoothingD, LabelSmoothingd, LabelSmoothingDict
from monai_jdt.transforms.views import check_intensity_chain, weak_strong_views

__all__ = [
    "BoundaryLabelSmoothing",
    "BoundaryLabelSmoothingD",
    "BoundaryLabelSmoothingDict",
    "BoundaryLabelSmoothingd",
    "FuseRaters",
    "FuseRatersD",
    "FuseRatersDict",
    "FuseRatersd",
    "LabelSmoothing",
    "LabelSmoothingD",
    "LabelSmoothingDict",
    "LabelSmoothingd",
    "RandFuseRaters",
    "RandFuseRatersD",
    "RandFuseRatersDict",
    "RandFuseRatersd",
    "boundary_label_smoothing",
    "boundary_mask",
    "fuse_raters",
    "label_smoothing",
    "check_intensity_chain",
    "weak_strong_views",
]
