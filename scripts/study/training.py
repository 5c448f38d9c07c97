"""One training run: a MONAI UNet trained with a MONAI / monai_jdt trainer on prepared tensors.

The same seed gives the same initial weights, the same sample order and the same augmentations in every arm of a
part, so the arms differ only in their labels and loss (paired comparisons across seeds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.data import Dataset
from monai.engines import SupervisedTrainer
from monai.handlers import LrScheduleHandler
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandFlipd,
    RandGaussianNoised,
    RandRotate90d,
    RandSpatialCropd,
)
from monai.utils import set_determinism
from torch.utils.data import DataLoader, RandomSampler

from monai_jdt.engines import DistillationTrainer
from monai_jdt.losses import DiceSemimetricCELoss, DistillationLoss, SoftCrossEntropyLoss
from monai_jdt.transforms import weak_strong_views

from . import config
from .config import Preset

__all__ = ["LOSSES", "make_loss", "make_network", "make_unsup_loss", "train"]

#: the losses of the study: CE alone, CE + classic soft Dice (MONAI), CE + Dice semimetric loss (monai_jdt).
LOSSES = ("ce", "ce+sdl", "ce+dml")


def make_network(cfg: Preset, device: torch.device) -> UNet:
    """MONAI 2D UNet, 1 input channel, 2 output channels (background, foreground)."""
    strides = (2,) * (len(cfg.channels) - 1)
    net = UNet(2, 1, 2, channels=cfg.channels, strides=strides, num_res_units=cfg.res_units)
    return net.to(device)


def make_loss(loss: str, hard: bool, kd: bool = False) -> torch.nn.Module:
    """The loss of an arm on dense (one-hot or soft) ``(B, 2, H, W)`` targets.

    Overlap terms are batch-level (the papers' mIoU^D loss) and count the classes present in the batch for hard
    labels and every class for soft labels (the papers' choice).

    Raises:
        ValueError: an unknown loss, or CE + SDL with a teacher.
    """
    r = config.RECIPE
    mix = {"lambda_ce": r.lambda_ce, "lambda_overlap": r.lambda_overlap}
    overlap = {"batch": True, "active_classes": "present" if hard else "all"}
    if kd:
        if loss == "ce":
            return DistillationLoss(temperature=r.kd_temperature, lambda_ce=1.0, lambda_overlap=0.0)
        if loss == "ce+dml":
            return DistillationLoss(temperature=r.kd_temperature, **mix, **overlap)
        raise ValueError(f"loss with a teacher must be 'ce' or 'ce+dml', got {loss!r}")
    if loss == "ce":
        return SoftCrossEntropyLoss()
    if loss == "ce+dml":
        return DiceSemimetricCELoss(**mix, **overlap)
    if loss == "ce+sdl":  # MONAI's CE + soft Dice; its Dice term is the classic x.y soft Dice (no soft_label)
        return DiceCELoss(softmax=True, batch=True, lambda_ce=r.lambda_ce, lambda_dice=r.lambda_overlap)
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def make_unsup_loss() -> torch.nn.Module:
    """Mean-teacher loss on the teacher's probabilities (default: ``MeanTeacherTrainer``'s own default loss)."""
    r = config.RECIPE
    return DiceSemimetricCELoss(
        lambda_ce=r.lambda_ce, lambda_overlap=r.unsup_lambda_overlap, batch=r.unsup_batch, active_classes="present"
    )


def _poly_with_warmup(total: int) -> Callable[[int], float]:
    warm = max(1, round(config.RECIPE.warmup_fraction * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, 1.0 - (step - warm) / max(1, total - warm))

    return factor


def _augment(cfg: Preset, keys: list[str], crop: bool) -> list[Any]:
    """Label-safe augmentations (no interpolation of soft labels): a random crop (LiTS-like) or rot90, and flips."""
    first = [RandSpatialCropd(keys, (cfg.crop, cfg.crop), random_size=False)] if crop else [RandRotate90d(keys, 0.5)]
    return [*first, RandFlipd(keys, 0.5, spatial_axis=0), RandFlipd(keys, 0.5, spatial_axis=1)]


def _loader(items: list[dict], transform: Compose, cfg: Preset, seed: int) -> DataLoader:
    """Random order, ``epoch_iterations`` batches per nominal epoch, deterministic by seed."""
    transform.set_random_state(seed)
    sampler = RandomSampler(
        items, num_samples=cfg.epoch_iterations * cfg.batch_size, generator=torch.Generator().manual_seed(seed)
    )
    return DataLoader(Dataset(items, transform), batch_size=cfg.batch_size, sampler=sampler, num_workers=0)


def _strong_views(cfg: Preset, crop: bool) -> Compose:
    """Weak view: the spatial augmentation only; strong view: the same voxels plus noise and a contrast change."""
    strong = [
        RandGaussianNoised("image_strong", prob=1.0, std=0.1),
        RandAdjustContrastd("image_strong", prob=0.5, gamma=(0.7, 1.5)),
    ]
    return weak_strong_views(spatial=_augment(cfg, ["image"], crop), weak=[], strong=strong)


def train(
    cfg: Preset,
    seed: int,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    loss: torch.nn.Module,
    device: torch.device,
    *,
    crop: bool,
    teacher: torch.nn.Module | None = None,
    unlabelled: torch.Tensor | None = None,
) -> dict[str, torch.nn.Module]:
    """Train a fresh network and return ``{"student": net}`` (plus ``"ema_teacher"`` for the mean-teacher arm).

    Args:
        cfg: sizes (iterations, batch, network).
        seed: training seed (initial weights, sample order, augmentation).
        images: ``(N, 1, H, W)`` training images; labels: ``(N, 2, H, W)`` dense targets.
        loss: the supervised loss (a distillation loss with ``teacher``).
        device: where to train.
        crop: random crops (LiTS-like slices) instead of rot90 (QUBIQ-like slices).
        teacher: a trained network for online knowledge distillation (:class:`DistillationTrainer`).
        unlabelled: ``(M, 1, H, W)`` images for the mean-teacher arm (:class:`MeanTeacherTrainer`).
    """
    set_determinism(seed)
    net = make_network(cfg, device)
    r = config.RECIPE
    opt = torch.optim.AdamW(net.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _poly_with_warmup(cfg.iterations))
    items = [{"image": im, "label": lab} for im, lab in zip(images, labels)]
    loader = _loader(items, Compose(_augment(cfg, ["image", "label"], crop)), cfg, seed)
    epochs = max(1, cfg.iterations // cfg.epoch_iterations)
    common: dict[str, Any] = {"train_handlers": [LrScheduleHandler(sched, print_lr=False, epoch_level=False)]}
    args = (device, epochs, loader, net, opt, loss)
    if teacher is not None:
        trainer = DistillationTrainer(*args, teacher_network=teacher, **common)
    elif unlabelled is not None:
        from monai_jdt.engines import MeanTeacherTrainer  # issue 10 (semi-supervised arm)

        u_items = [{"image": im} for im in unlabelled]
        u_loader = _loader(u_items, _strong_views(cfg, crop), cfg, seed + 10_000)
        trainer = MeanTeacherTrainer(
            *args,
            u_loader,
            ema_decay=r.ema_decay,
            unsup_weight=r.unsup_weight,
            rampup_epochs=r.rampup_fraction * epochs,
            unsup_loss_function=make_unsup_loss(),
            **common,
        )
    else:
        trainer = SupervisedTrainer(*args, **common)
    trainer.run()
    models = {"student": net}
    if unlabelled is not None:
        models["ema_teacher"] = trainer.teacher
    return models
