"""nnU-Net v2 trainers that train with DML/JML (+ CE), boundary label smoothing or the class-agnostic overlap.

Select one with ``nnUNetv2_train DATASET CONFIG FOLD -tr nnUNetTrainerDMLCE`` after making the trainers visible
to nnU-Net (``nnUNet_extTrainer`` or ``python -m monai_jdt nnunet-register``; see ``docs/nnunet.md``).

Each trainer is nnU-Net's default ``nnUNetTrainer`` with only the loss changed: ``_build_loss`` builds nnU-Net's
own loss (so its deep-supervision weights ``1/2^i``, last level 0, normalised to 1, stay exactly nnU-Net's) and
swaps the inner ``DC_and_CE_loss`` / ``DC_and_BCE_loss`` for :class:`~monai_jdt.nnunet.loss.NNUNetOverlapCELoss`
with the same ``batch_dice`` (from the plans), ``do_bg``, ``smooth = 1e-5``, ignore label, region mode and, under
DDP with ``batch_dice``, synchronised counts (``sync_stats``, nnU-Net's all-gather). Everything else (network,
augmentation, schedule, validation, inference, cascade) is nnU-Net's.

Trainers (the class attributes ``jdt_*`` are the knobs; subclass to change them):

* ``nnUNetTrainerDMLCE``: CE + Dice semimetric loss (arXiv 2303.16296). Equals nnU-Net's default loss + 1 on
  hard labels (nnU-Net's Dice term is ``-dice``, ours ``1 - dice``), so it trains identically there.
* ``nnUNetTrainerJMLCE``: CE + Jaccard metric loss (arXiv 2302.05666).
* ``nnUNetTrainerDMLCE_BLS``: boundary label smoothing (epsilon 0.5, 3-voxel window: the papers' setting) of the
  integer target of every deep-supervision level, on the training device, fed to the soft CE and to DML.
* ``nnUNetTrainerDMLCE_ClassAgnostic``: DML on tp/fp/fn pooled over the foreground classes (regions).

For short smoke runs, ``MONAI_JDT_NNUNET_EPOCHS``, ``MONAI_JDT_NNUNET_ITERATIONS`` and
``MONAI_JDT_NNUNET_VAL_ITERATIONS`` override ``num_epochs``, ``num_iterations_per_epoch`` and
``num_val_iterations_per_epoch`` of these trainers (positive integers).
"""

from __future__ import annotations

import os

from monai_jdt.nnunet._availability import require_nnunet

require_nnunet("monai_jdt.nnunet.trainers")

import torch  # noqa: E402
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper  # noqa: E402
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: E402

from monai_jdt.nnunet.loss import NNUNetOverlapCELoss  # noqa: E402

__all__ = [
    "LENGTH_ENV_VARS",
    "nnUNetTrainerDMLCE",
    "nnUNetTrainerDMLCE_BLS",
    "nnUNetTrainerDMLCE_ClassAgnostic",
    "nnUNetTrainerJDT",
    "nnUNetTrainerJMLCE",
]

#: environment variables that shorten a training run (smoke tests), and the trainer attribute each sets.
LENGTH_ENV_VARS = {
    "MONAI_JDT_NNUNET_EPOCHS": "num_epochs",
    "MONAI_JDT_NNUNET_ITERATIONS": "num_iterations_per_epoch",
    "MONAI_JDT_NNUNET_VAL_ITERATIONS": "num_val_iterations_per_epoch",
}


def _env_positive_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"environment variable {name} must be a positive integer, got {raw!r}")
    return value


class nnUNetTrainerJDT(nnUNetTrainer):
    """Base of the monai_jdt trainers: nnU-Net's trainer with :class:`NNUNetOverlapCELoss` as the loss.

    Class attributes (override in a subclass):
        jdt_overlap: ``"dice"`` (DML) or ``"jaccard"`` (JML).
        jdt_class_agnostic: pool the counts of the kept classes before the ratio.
        jdt_active_classes: ``"all"`` (nnU-Net's mean over every foreground class) or ``"present"``.
        jdt_smoothing_epsilon: boundary label smoothing strength (0: hard labels).
        jdt_smoothing_kernel_size: odd boundary window in voxels at every deep-supervision level.
        jdt_weight_ce: weight of the CE/BCE term (nnU-Net: 1).
        jdt_weight_dice: weight of the overlap term (nnU-Net: 1).
    """

    jdt_overlap: str = "dice"
    jdt_class_agnostic: bool = False
    jdt_active_classes: str = "all"
    jdt_smoothing_epsilon: float = 0.0
    jdt_smoothing_kernel_size: int = 3
    jdt_weight_ce: float = 1.0
    jdt_weight_dice: float = 1.0

    def __init__(
        self, plans: dict, configuration: str, fold: int, dataset_json: dict,
        device: torch.device = torch.device("cuda"),  # noqa: B008  (nnU-Net's signature)
    ) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        for env, attribute in LENGTH_ENV_VARS.items():
            value = _env_positive_int(env)
            if value is not None:
                setattr(self, attribute, value)

    def build_jdt_loss(self) -> NNUNetOverlapCELoss:
        """The loss of one deep-supervision level, with this data set's and plan's nnU-Net settings."""
        lm = self.label_manager
        batch_dice = bool(self.configuration_manager.batch_dice)
        return NNUNetOverlapCELoss(
            self.jdt_overlap,
            regions=bool(lm.has_regions),
            batch_dice=batch_dice,
            do_bg=bool(lm.has_regions),
            smooth=1e-5,
            ignore_label=lm.ignore_label,
            weight_ce=self.jdt_weight_ce,
            weight_dice=self.jdt_weight_dice,
            class_agnostic=self.jdt_class_agnostic,
            active_classes=self.jdt_active_classes,
            sync_stats=bool(self.is_ddp and batch_dice),
            smoothing_epsilon=self.jdt_smoothing_epsilon,
            smoothing_kernel_size=self.jdt_smoothing_kernel_size,
        )

    def _build_loss(self):
        original = super()._build_loss()
        ours = self.build_jdt_loss()
        self.print_to_log_file(f"monai_jdt loss: {ours.extra_repr()}", also_print_to_console=False)
        if isinstance(original, DeepSupervisionWrapper):
            original.loss = ours  # keep nnU-Net's deep-supervision weights
            return original
        return ours


class nnUNetTrainerDMLCE(nnUNetTrainerJDT):
    """CE + Dice semimetric loss (DML, arXiv 2303.16296) in place of nnU-Net's CE + soft Dice."""

    jdt_overlap = "dice"


class nnUNetTrainerJMLCE(nnUNetTrainerJDT):
    """CE + Jaccard metric loss (JML, arXiv 2302.05666) in place of nnU-Net's CE + soft Dice."""

    jdt_overlap = "jaccard"


class nnUNetTrainerDMLCE_BLS(nnUNetTrainerJDT):
    """CE + DML on boundary-label-smoothed targets (epsilon 0.5, 3-voxel window), made on the fly per level."""

    jdt_overlap = "dice"
    jdt_smoothing_epsilon = 0.5
    jdt_smoothing_kernel_size = 3


class nnUNetTrainerDMLCE_ClassAgnostic(nnUNetTrainerJDT):
    """CE + class-agnostic DML: tp/fp/fn pooled over the foreground classes (regions) before the ratio."""

    jdt_overlap = "dice"
    jdt_class_agnostic = True
