"""Presets (data and run sizes) and the training recipe of the study, fixed before any result was looked at."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["PRESETS", "RECIPE", "Preset", "Recipe", "preset", "recipe_with"]


@dataclass(frozen=True)
class Recipe:
    """Optimisation and label settings shared by every run (see docs/study.md, "Recipe")."""

    lr: float = 1e-3  # AdamW; from scratch, so larger than the papers' 6e-5 on a pretrained encoder
    weight_decay: float = 1e-2  # the papers' AdamW weight decay
    warmup_fraction: float = 0.01  # linear warm-up over the first 1 % of the iterations, then poly (power 1) to 0
    lambda_ce: float = 0.25  # the papers' 0.25 CE + 0.75 overlap (DML or SDL)
    lambda_overlap: float = 0.75
    ls_epsilon: float = 0.1  # uniform label smoothing
    bls_epsilon: float = 0.5  # boundary label smoothing, the papers' setting
    bls_kernel: int = 3
    kd_temperature: float = 1.0  # the papers' KD setting (label and teacher weights 0.5 / 0.5)
    ema_decay: float = 0.99  # mean teacher
    unsup_weight: float = 1.0
    rampup_fraction: float = 0.2  # sigmoid ramp of the unsupervised weight over the first 20 % of the iterations
    unsup_lambda_overlap: float = 0.75  # unsupervised loss: 0.25 soft CE + 0.75 image-level DML on the teacher's
    unsup_batch: bool = False  # probabilities, present classes (MeanTeacherTrainer's default loss)
    labelled_fraction: float = 0.1  # SSL arm: 10 % of the training cases keep their labels
    ece_bins: int = 10  # the papers' ECE: 10 equal-width bins
    band_kernel: int = 5  # BECE: voxels within 2 pixels of a reference label change
    lits_window: tuple[float, float] = (-60.0, 140.0)  # the papers' LiTS HU window, mapped to [-1, 1]


RECIPE = Recipe()


def recipe_with(overrides: list[str]) -> Recipe:
    """The default recipe with ``key=value`` overrides (ablations from the command line).

    Raises:
        ValueError: an unknown key, a malformed item or a value of the wrong type.
    """
    fields = {f.name: getattr(RECIPE, f.name) for f in dataclasses.fields(Recipe)}
    changes: dict[str, object] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or key not in fields or isinstance(fields[key], tuple):
            scalar = sorted(k for k, v in fields.items() if not isinstance(v, tuple))
            raise ValueError(f"recipe overrides must be key=value with a key in {scalar}, got {item!r}")
        kind = type(fields[key])
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"recipe {key} must be true or false, got {text!r}")
            changes[key] = text.lower() in ("true", "1")
        else:
            try:
                changes[key] = kind(text)
            except ValueError as err:
                raise ValueError(f"recipe {key} must be a {kind.__name__}, got {text!r}") from err
    return dataclasses.replace(RECIPE, **changes)


@dataclass(frozen=True)
class Preset:
    """Sizes of one study setting."""

    name: str
    seeds: int
    qubiq_tasks: tuple[str, ...]
    qubiq_train: int  # cases per task
    qubiq_test: int
    qubiq_size: int  # 2D slice side (pixels)
    lits_train: int  # cases (volumes); every axial slice with tumour is one sample
    lits_test: int
    lits_size: tuple[int, int, int]
    crop: int  # training crop side of the LiTS-like slices (the papers crop 384 of 512)
    channels: tuple[int, ...]
    res_units: int
    batch_size: int
    iterations: int  # optimizer steps per run (the same for every arm of a part)
    epoch_iterations: int  # iterations per nominal epoch (loader length)
    data_seed: int = 0


PRESETS = {
    "quick": Preset(
        name="quick",
        seeds=2,
        qubiq_tasks=("kidney",),
        qubiq_train=8,
        qubiq_test=4,
        qubiq_size=32,
        lits_train=6,
        lits_test=2,
        lits_size=(48, 48, 16),
        crop=32,
        channels=(4, 8, 16),
        res_units=0,
        batch_size=4,
        iterations=40,
        epoch_iterations=10,
    ),
    "default": Preset(
        name="default",
        seeds=3,
        qubiq_tasks=("brain-growth", "kidney"),
        qubiq_train=48,
        qubiq_test=32,
        qubiq_size=64,
        lits_train=40,
        lits_test=20,
        lits_size=(96, 96, 32),
        crop=64,
        channels=(16, 32, 64, 128),
        res_units=1,
        batch_size=8,
        iterations=1000,
        epoch_iterations=50,
    ),
    "large": Preset(  # for a GPU (--device cuda); not run on the 2-core CPU
        name="large",
        seeds=5,
        qubiq_tasks=("brain-growth", "kidney", "prostate"),
        qubiq_train=160,
        qubiq_test=80,
        qubiq_size=128,
        lits_train=100,
        lits_test=31,
        lits_size=(192, 192, 48),
        crop=128,
        channels=(32, 64, 128, 256),
        res_units=2,
        batch_size=16,
        iterations=4000,
        epoch_iterations=100,
    ),
}


def preset(name: str, **overrides: object) -> Preset:
    """The preset ``name`` with some fields replaced (``None`` values are ignored).

    Raises:
        ValueError: an unknown preset name.
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return dataclasses.replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
