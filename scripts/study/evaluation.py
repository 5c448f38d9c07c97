"""Metrics of one trained network on a test set, computed with monai_jdt.metrics (percentages, as in the papers)."""

from __future__ import annotations

import math

import torch

from monai_jdt.metrics import calibration_errors, fine_grained_overlap, thresholded_soft_dice

from . import config

__all__ = ["METRIC_NAMES", "evaluate", "predict"]

#: per reference: image-level and dataset-level foreground Dice (hard prediction), QUBIQ thresholded soft Dice,
#: top-label ECE, boundary ECE, Brier score.
METRIC_NAMES = ("dice_image", "dice_dataset", "soft_dice", "ece", "bece", "brier")


@torch.no_grad()
def predict(net: torch.nn.Module, images: torch.Tensor, device: torch.device, batch: int = 32) -> torch.Tensor:
    """Softmax probabilities ``(N, 2, H, W)`` in eval mode, on the CPU in float32."""
    net.eval()
    out = [net(images[i : i + batch].to(device)).float().softmax(1).cpu() for i in range(0, len(images), batch)]
    return torch.cat(out)


def _percent(value: float | None) -> float:
    return math.nan if value is None else 100.0 * float(value)


def evaluate(probs: torch.Tensor, references: dict[str, torch.Tensor]) -> dict[str, float]:
    """``{"<metric>_<reference>": value}`` for every reference (``(N, 2, H, W)`` one-hot or soft), in percent.

    Dice: foreground only, per image (mean over images, ``presence="either"``: a foreground predicted in an image
    without reference foreground counts as 0, the papers' binary rule) and pooled over the test set. Soft Dice: the
    QUBIQ metric (thresholds 0.1, ..., 0.9) on the foreground channel. ECE / BECE: top-label, 10 bins, pooled over
    the test set; BECE over the pixels within ``band_kernel // 2`` pixels of a reference label change. Brier:
    mean over pixels of the squared error summed over the two classes.
    """
    r = config.RECIPE
    out: dict[str, float] = {}
    for name, ref in references.items():
        dice = fine_grained_overlap(probs, ref, include_background=False, presence="either")
        cal = calibration_errors(probs, ref, n_bins=r.ece_bins, boundary_kernel_size=r.band_kernel)
        soft = thresholded_soft_dice(probs, ref, include_background=False)
        out[f"dice_image_{name}"] = _percent(dice["image"])
        out[f"dice_dataset_{name}"] = _percent(dice["dataset"])
        out[f"soft_dice_{name}"] = _percent(float(soft.mean()))
        out[f"ece_{name}"] = _percent(cal["ece"])
        out[f"bece_{name}"] = _percent(cal.get("bece"))
        out[f"brier_{name}"] = _percent(cal["brier"])
    return out
