"""Training engines and tools for teacher-student knowledge distillation.

* :class:`DistillationTrainer`: MONAI ``SupervisedTrainer`` with a frozen teacher (online distillation), or with
  precomputed teacher maps from the batch (offline distillation).
* :func:`load_teacher`: a frozen teacher from a network object or a bundle config, and a checkpoint.
* :func:`write_teacher_maps`: the teacher's probabilities over a datalist as NIfTI maps (offline distillation);
  also ``python -m monai_jdt teacher-maps``.
* :class:`MeanTeacherTrainer`: semi-supervised training with an EMA teacher's soft pseudo-labels
  (:func:`make_ema_teacher`, :func:`update_ema_teacher`, :func:`sigmoid_rampup`); see ``docs/semi_supervised.md``.

See ``docs/distillation.md``.
"""

from __future__ import annotations

from monai_jdt.engines.bundle_config import BundleConfig, find_bundle_config, read_bundle_config
from monai_jdt.engines.distillation_trainer import TEACHER_KEY, DistillationTrainer
from monai_jdt.engines.ema import check_ema_pair, make_ema_teacher, update_ema_teacher
from monai_jdt.engines.mean_teacher import MeanTeacherTrainer
from monai_jdt.engines.probability_nifti import MAP_DTYPES, quantize_probabilities, save_probability_map
from monai_jdt.engines.ramps import linear_rampup, sigmoid_rampup
from monai_jdt.engines.teacher import load_checkpoint_state, load_teacher
from monai_jdt.engines.teacher_maps import TeacherMapReport, map_names, renormalize_probabilities, write_teacher_maps

__all__ = [
    "MAP_DTYPES",
    "TEACHER_KEY",
    "BundleConfig",
    "DistillationTrainer",
    "TeacherMapReport",
    "find_bundle_config",
    "load_checkpoint_state",
    "load_teacher",
    "map_names",
    "quantize_probabilities",
    "read_bundle_config",
    "renormalize_probabilities",
    "save_probability_map",
    "write_teacher_maps",
    "MeanTeacherTrainer",
    "check_ema_pair",
    "linear_rampup",
    "make_ema_teacher",
    "sigmoid_rampup",
    "update_ema_teacher",
]
