"""monai_jdt: soft-label overlap losses (DML, JML, CTL), soft-label transforms, calibration metrics and
MONAI bundles for medical image segmentation.

Papers:
    * Wang et al., *Jaccard Metric Losses*, NeurIPS 2023, arXiv 2302.05666.
    * Wang et al., *Dice Semimetric Losses*, MICCAI 2023, arXiv 2303.16296.
    * Wang et al., *Revisiting Evaluation Metrics for Semantic Segmentation* (fine-grained mIoU), arXiv 2310.19252.

Subpackages are imported lazily, so ``import monai_jdt`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = ("bundle", "data", "engines", "handlers", "losses", "metrics", "transforms", "utils")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
