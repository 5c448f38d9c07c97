"""Python support of the MONAI bundles in ``bundles/`` (QUBIQ, LiTS, KiTS): what their configs call.

* :func:`bundle_datalists`, :func:`inference_datalist`, :func:`require_file`: data and fold selection, with
  one-line ``error: ...`` exits for bad ``--dataset_dir`` / ``--datalist`` values.
* :func:`qubiq_targets`, :func:`ct_targets`: the transforms of each ``--label_mode``.
* :func:`make_loss`: the loss of each ``--loss_name``; :func:`make_trainer`: the trainer of each label mode.
* :func:`ssl_split`, :func:`make_mean_teacher_trainer`: ``--label_mode ssl`` (semi-supervised mean teacher).
* :func:`make_dataset`: ``CacheDataset`` / ``PersistentDataset`` / ``Dataset`` by ``--dataset_type``.
* :class:`CheckpointResume`, :class:`BestModelSaver`, :func:`atomic_torch_save`: atomic checkpoints and resume.
* :func:`end_distributed`: the end of a torchrun run (frees DDP's reducers before destroying the process group).
* :class:`EvaluationReport`: per-case and summary CSV and the reliability diagram of ``evaluate.json``.
* :class:`ThreadSafeLoadImaged`, :class:`EnsureSpatialDimsd`, :class:`SelectTargetd`, :class:`FillBackgroundd`:
  small transforms the configs need.
* :func:`bundles_root`, :func:`bundle_dir`: where the bundles are.

See ``docs/bundles.md``.
"""

from __future__ import annotations

from monai_jdt.bundle.checkpoint import BestModelSaver, CheckpointResume, atomic_torch_save, is_main_process, unwrap
from monai_jdt.bundle.datalists import (
    BASE_KEYS,
    DATASETS,
    bundle_datalists,
    dataset_entries,
    inference_datalist,
    one_line_error,
    require_file,
)
from monai_jdt.bundle.datasets import DATASET_TYPES, make_dataset
from monai_jdt.bundle.distributed import end_distributed
from monai_jdt.bundle.label_modes import (
    CT_LABEL_MODES,
    QUBIQ_LABEL_MODES,
    SOFT_KEY,
    TargetTransforms,
    ct_targets,
    qubiq_targets,
)
from monai_jdt.bundle.losses import LOSS_NAMES, CEOverlapLoss, make_loss
from monai_jdt.bundle.paths import BUNDLE_NAMES, BUNDLES_ENV, bundle_dir, bundles_root
from monai_jdt.bundle.report import EvaluationReport, atomic_write_text, region_dice
from monai_jdt.bundle.ssl import SSL_LABEL_MODE, make_mean_teacher_trainer, ssl_split
from monai_jdt.bundle.trainers import make_trainer
from monai_jdt.bundle.transforms import (
    EnsureSpatialDimsd,
    FillBackgroundd,
    SelectTargetd,
    ThreadSafeLoadImaged,
    drop_spatial_axis,
)

__all__ = [
    "BASE_KEYS",
    "BUNDLES_ENV",
    "BUNDLE_NAMES",
    "CT_LABEL_MODES",
    "DATASETS",
    "DATASET_TYPES",
    "LOSS_NAMES",
    "QUBIQ_LABEL_MODES",
    "SOFT_KEY",
    "BestModelSaver",
    "CEOverlapLoss",
    "CheckpointResume",
    "EnsureSpatialDimsd",
    "EvaluationReport",
    "FillBackgroundd",
    "SelectTargetd",
    "TargetTransforms",
    "ThreadSafeLoadImaged",
    "atomic_torch_save",
    "atomic_write_text",
    "bundle_datalists",
    "bundle_dir",
    "bundles_root",
    "ct_targets",
    "dataset_entries",
    "drop_spatial_axis",
    "end_distributed",
    "inference_datalist",
    "is_main_process",
    "make_dataset",
    "make_loss",
    "make_trainer",
    "one_line_error",
    "qubiq_targets",
    "region_dice",
    "require_file",
    "unwrap",
    "SSL_LABEL_MODE",
    "make_mean_teacher_trainer",
    "ssl_split",
]
