"""Thresholded soft Dice of the QUBIQ challenge (quantification of uncertainties in biomedical image quantification).

QUBIQ scores a predicted probability map against the mean of several raters' binary masks by binarising both at
a series of thresholds and averaging the Dice over the thresholds; used for the multi-rater experiments of the
Dice semimetric loss paper (Wang et al., MICCAI 2023, arXiv 2303.16296).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from monai_jdt.metrics.functional.calibration_binning import chunk_elements
from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE, as_prediction, resolve_target
from monai_jdt.utils.checks import check_bool, check_in_range

__all__ = ["QUBIQ_THRESHOLDS", "check_thresholds", "thresholded_soft_dice"]

#: the QUBIQ thresholds 0.1, 0.2, ..., 0.9.
QUBIQ_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """Check a non-empty sequence of thresholds in ``[0, 1)`` and return it as a tuple of floats."""
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
        raise TypeError(f"thresholds must be a sequence of floats in [0, 1), got {type(thresholds).__name__}")
    if len(thresholds) == 0 or len(thresholds) > 255:
        raise ValueError(f"thresholds must hold 1 to 255 values, got {len(thresholds)}")
    return tuple(check_in_range(f"thresholds[{i}]", t, 0, 1, high_inclusive=False) for i, t in enumerate(thresholds))


def _check_range(name: str, values: torch.Tensor, tolerance: float) -> None:
    lo, hi = torch.aminmax(values.detach())
    if bool(torch.isnan(lo) | torch.isnan(hi)) or float(lo) < -tolerance or float(hi) > 1 + tolerance:
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in [{float(lo):g}, {float(hi):g}]")


def thresholded_soft_dice(
    pred: torch.Tensor,
    target: torch.Tensor,
    thresholds: Sequence[float] = QUBIQ_THRESHOLDS,
    *,
    include_background: bool = True,
    ignore_index: int | None = None,
    mask: torch.Tensor | None = None,
    prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
) -> torch.Tensor:
    """QUBIQ thresholded soft Dice, per case and per sub-task (channel).

    For every threshold ``t``, the prediction and the soft reference of channel ``c`` are binarised as
    ``P_t = p_c > t`` and ``G_t = y_c > t`` (strictly greater, so a rater fraction equal to ``t`` is below it),
    and ``Dice_t = 2|P_t ∩ G_t| / (|P_t| + |G_t|)`` over the counted voxels, with ``Dice_t = 1`` when both are
    empty. The result is ``mean_t Dice_t``.

    Every channel is an independent binary sub-task (QUBIQ's sub-tasks are separate binary segmentations), so the
    channels need not sum to 1; each value must be a probability in ``[0, 1]``.

    Args:
        pred: ``(B, C, *spatial)`` probabilities (sigmoid per sub-task, or softmax channels).
        target: ``(B, C, *spatial)`` soft reference (e.g. the mean of the raters' masks), or an index map
            ``(B, 1, *spatial)`` when ``C > 1`` (then one-hot).
        thresholds: binarisation thresholds in ``[0, 1)``, default 0.1, 0.2, ..., 0.9.
        include_background: keep channel 0 (default ``True``: QUBIQ channels are all sub-tasks; set ``False``
            for a softmax output whose channel 0 is the background).
        ignore_index: label of voxels to exclude (see :func:`~monai_jdt.utils.targets.prepare_target`).
        mask: optional bool voxel mask, ``True`` where a voxel counts.
        prob_tolerance: values may leave ``[0, 1]`` by this much.

    Returns:
        ``(B, C')`` tensor (``C' = C`` or ``C − 1``) in the prediction's floating dtype, never NaN.

    Raises:
        ShapeError: shapes that do not fit.
        ValueError: values outside ``[0, 1]``, bad thresholds.

    Example:
        >>> pred = torch.tensor([[[[0.95, 0.55, 0.15, 0.0]]]])
        >>> ref = torch.tensor([[[[1.0, 2 / 3, 1 / 3, 0.0]]]])   # 3 raters
        >>> thresholded_soft_dice(pred, ref, thresholds=(0.25, 0.5, 0.75))
        tensor([[0.9333]])
    """
    thresholds = check_thresholds(thresholds)
    check_bool("include_background", include_background)
    pred = as_prediction(pred)
    _check_range("pred", pred, check_in_range("prob_tolerance", prob_tolerance, 0, 1, high_inclusive=False))
    seg = resolve_target(pred, target, ignore_index=ignore_index, mask=mask)
    ref = seg.one_hot(pred.dtype)
    if not include_background and pred.shape[1] > 1:
        pred, ref = pred[:, 1:], ref[:, 1:]
    batch, channels = pred.shape[:2]
    valid = None if seg.mask is None else seg.mask.reshape(batch, 1, -1)
    dice = _dice_per_threshold(pred.reshape(batch, channels, -1), ref.reshape(batch, channels, -1), valid, thresholds)
    return dice.mean(dim=-1).to(pred.dtype)


def _level_histogram(levels: torch.Tensor, valid: torch.Tensor | None, n_levels: int) -> torch.Tensor:
    """Per (image, channel), how many counted voxels have each level ``0 .. n_levels - 1``: ``(B, C, n_levels)``."""
    batch, channels = levels.shape[:2]
    offset = torch.arange(batch * channels, dtype=torch.int32, device=levels.device).reshape(batch, channels, 1)
    keys = levels.to(torch.int32) + offset * n_levels
    trash = batch * channels * n_levels
    if valid is not None:
        keys = torch.where(valid, keys, trash)
    counts = torch.bincount(keys.reshape(-1), minlength=trash + 1)[:trash]
    return counts.reshape(batch, channels, n_levels).to(torch.float64)


def _levels(values: torch.Tensor, thresholds: Sequence[float]) -> torch.Tensor:
    """Number of thresholds strictly below each value (uint8, at most 255 thresholds)."""
    level = torch.zeros(values.shape, dtype=torch.uint8, device=values.device)
    for t in thresholds:
        level += values > t
    return level


def _dice_per_threshold(
    pred: torch.Tensor, ref: torch.Tensor, valid: torch.Tensor | None, thresholds: Sequence[float]
) -> torch.Tensor:
    """``(B, C, T)`` Dice of ``pred > t`` against ``ref > t`` for every threshold, in one pass over the voxels.

    The level of a value is the number of thresholds strictly below it, so ``v > t_j`` iff ``level(v) > j`` when
    ``t_j`` is the ``j``-th smallest threshold (the mean over thresholds does not depend on their order).
    ``|P_j|``, ``|G_j|`` and ``|P_j ∩ G_j|`` (the level of ``min(p, g)``) are suffix sums of level histograms.
    """
    n_levels = len(thresholds) + 1
    hist = torch.zeros(3, *pred.shape[:2], n_levels, dtype=torch.float64, device=pred.device)
    step = max(1, chunk_elements() // (pred.shape[0] * pred.shape[1]))
    for s in range(0, pred.shape[2], step):
        chunk_valid = None if valid is None else valid[..., s : s + step]
        level_p = _levels(pred[..., s : s + step], thresholds)
        level_g = _levels(ref[..., s : s + step], thresholds)
        for i, lv in enumerate((level_p, level_g, torch.minimum(level_p, level_g))):
            hist[i] += _level_histogram(lv, chunk_valid, n_levels)
    # above[i][..., j] = number of voxels with level > j
    above = hist.flip(-1).cumsum(-1).flip(-1)[..., 1:]
    size = above[0] + above[1]
    return torch.where(size > 0, 2 * above[2] / size.clamp_min(1), torch.ones_like(size))
