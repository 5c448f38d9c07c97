"""nnU-Net v2 integration: DML/JML trainers, boundary label smoothing and class-agnostic mode for nnU-Net.

Importable without nnU-Net: the loss (:class:`NNUNetOverlapCELoss`), the raw-format exporter and the
registration helpers are plain torch/numpy. The trainer classes import ``nnunetv2`` (>= 2.8, the optional extra
``monai_jdt[nnunet]``) on first access and raise an :class:`ImportError` that names the extra and
``scripts/install_nnunet_cpu.sh`` when it is missing. See ``docs/nnunet.md``.
"""

from __future__ import annotations

from typing import Any

from monai_jdt.nnunet._availability import NNUNET_MIN_VERSION, nnunet_available, nnunet_version, require_nnunet
from monai_jdt.nnunet.export import (
    SYNTHETIC_LABELS,
    dataset_folder_name,
    write_nnunet_dataset,
    write_synthetic_nnunet_dataset,
)
from monai_jdt.nnunet.loss import NNUNetOverlapCELoss, nnunet_overlap_ce_loss, nnunet_overlap_ce_parts
from monai_jdt.nnunet.register import (
    TRAINER_NAMES,
    external_trainer_dir,
    is_registered,
    nnunet_trainer_dir,
    register_trainers,
    unregister_trainers,
)

__all__ = [
    "NNUNET_MIN_VERSION",
    "NNUNetOverlapCELoss",
    "SYNTHETIC_LABELS",
    "TRAINER_NAMES",
    "dataset_folder_name",
    "external_trainer_dir",
    "is_registered",
    "nnUNetTrainerDMLCE",
    "nnUNetTrainerDMLCE_BLS",
    "nnUNetTrainerDMLCE_ClassAgnostic",
    "nnUNetTrainerJMLCE",
    "nnunet_available",
    "nnunet_overlap_ce_loss",
    "nnunet_overlap_ce_parts",
    "nnunet_trainer_dir",
    "nnunet_version",
    "register_trainers",
    "require_nnunet",
    "unregister_trainers",
    "write_nnunet_dataset",
    "write_synthetic_nnunet_dataset",
]


def __getattr__(name: str) -> Any:
    """Import the trainer classes (and nnU-Net) only when one is asked for."""
    if name in TRAINER_NAMES or name == "nnUNetTrainerJDT":
        from monai_jdt.nnunet import trainers

        return getattr(trainers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
