"""Per-image, per-class overlap counts (TP, predicted and reference volume, presence) of a segmentation.

These counts are everything the fine-grained Dice/IoU of arXiv 2310.19252 needs, so a whole test set is stored as a
``(num_images, 5, num_classes)`` tensor and the figures are computed once at the end.
"""

from __future__ import annotations

from typing import cast

import torch

from monai_jdt.metrics.functional.calibration_binning import top_label
from monai_jdt.metrics.functional.inputs import (
    DEFAULT_PROB_TOLERANCE,
    as_prediction,
    check_probabilities,
    resolve_target,
)
from monai_jdt.utils.checks import check_bool, check_in_range, check_positive_int
from monai_jdt.utils.errors import ShapeError
from monai_jdt.utils.targets import SegTarget

__all__ = ["COUNT_FIELDS", "overlap_class_ids", "overlap_counts", "prediction_labels"]

#: rows of the count tensor returned by :func:`overlap_counts`.
COUNT_FIELDS = ("tp", "pred_sum", "ref_sum", "ref_present", "pred_present")


def overlap_class_ids(num_classes: int, include_background: bool) -> list[int]:
    """The class label of every column of :func:`overlap_counts`.

    A single-channel prediction is a binary foreground probability: its one column is class ``1``.
    """
    if num_classes == 1:
        return [1]
    return list(range(0 if include_background else 1, num_classes))


def prediction_labels(
    pred: torch.Tensor,
    *,
    num_classes: int | None = None,
    threshold: float = 0.5,
    prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
) -> tuple[torch.Tensor, int]:
    """Hard prediction of ``pred`` and the number of classes.

    * ``C > 1`` probabilities or one-hot: ``argmax`` over channels (ties go to the lowest class index), returned as
      ``(B, *spatial)`` int64 labels.
    * ``C == 1`` and ``num_classes`` None or 1: ``pred`` is a foreground probability; the foreground is
      ``pred >= threshold``, returned as ``(B, *spatial)`` int64 labels in ``{0, 1}`` with ``num_classes = 1``.
    * ``C == 1`` and ``num_classes > 1``: ``pred`` is already an index map with values in ``[0, num_classes)``.

    Raises:
        ValueError: probabilities out of range or not summing to 1, bad indices.
    """
    pred = as_prediction(pred)
    if num_classes is not None:
        num_classes = check_positive_int("num_classes", num_classes)
    if pred.shape[1] == 1 and num_classes is not None and num_classes > 1:
        labels = pred[:, 0]
        bad = (labels != torch.round(labels)) | (labels < 0) | (labels >= num_classes)
        if bool(bad.any()):
            raise ValueError(
                f"pred with 1 channel and num_classes={num_classes} must be an index map with integer values in "
                f"[0, {num_classes}), got value {labels[bad].flatten()[0].item():g}"
            )
        return labels.long(), num_classes
    if num_classes is not None and num_classes != pred.shape[1] and pred.shape[1] != 1:
        raise ShapeError(f"num_classes={num_classes} does not match the {pred.shape[1]} channels of pred")
    check_probabilities(pred, "pred", prob_tolerance)
    if pred.shape[1] == 1:
        threshold = check_in_range("threshold", threshold, 0, 1)
        return (pred[:, 0] >= threshold).long(), 1
    return top_label(pred)[1].long(), int(pred.shape[1])


def _flat(t: torch.Tensor | None, batch: int) -> torch.Tensor | None:
    return None if t is None else t.reshape(batch, -1)


def _bincount_bc(labels: torch.Tensor, weights: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """Per (image, class) sums: ``labels`` (B, N) class indices, ``weights`` (B, N) or None (counts)."""
    batch = labels.shape[0]
    keys = labels + num_classes * torch.arange(batch, device=labels.device).unsqueeze(1)
    w = None if weights is None else weights.reshape(-1).to(torch.float64)
    out = torch.bincount(keys.reshape(-1), weights=w, minlength=batch * num_classes)
    return out.to(torch.float64).reshape(batch, num_classes)


def _counts_index(labels: torch.Tensor, ref: torch.Tensor, valid: torch.Tensor | None, num_classes: int) -> list:
    weight = None if valid is None else valid.to(torch.float64)
    hit = labels == ref if valid is None else (labels == ref) & valid
    ref_sum = _bincount_bc(ref, weight, num_classes)
    return [_bincount_bc(ref, hit.to(torch.float64), num_classes), ref_sum, ref_sum > 0]


def _counts_dense(
    labels: torch.Tensor, ref: torch.Tensor, valid: torch.Tensor | None, presence_threshold: float
) -> list:
    """``ref`` (B, C, N) one-hot/soft; tp = sum over voxels predicted as c of the reference probability of c."""
    if valid is not None:
        ref = ref * valid.unsqueeze(1).to(ref.dtype)
    at_pred = ref.gather(1, labels.unsqueeze(1))[:, 0]
    tp = _bincount_bc(labels, at_pred, ref.shape[1])
    ref_sum = ref.to(torch.float64).sum(dim=2)
    return [tp, ref_sum, ref.amax(dim=2) >= presence_threshold]


def _binary_counts(
    fg: torch.Tensor, ref: torch.Tensor, valid: torch.Tensor | None, presence_threshold: float
) -> torch.Tensor:
    """Single foreground channel: ``fg`` (B, N) in {0, 1}, ``ref`` (B, N) in [0, 1]."""
    fg = fg.to(torch.float64)
    ref = ref.to(torch.float64)
    if valid is not None:
        fg, ref = fg * valid, ref * valid
    pred_sum = fg.sum(1)
    rows = [(fg * ref).sum(1), pred_sum, ref.sum(1), ref.amax(1) >= presence_threshold, pred_sum > 0]
    return torch.stack([r.to(torch.float64) for r in rows], dim=1).unsqueeze(2)


def _resolve_against(labels: torch.Tensor, num_classes: int, target: torch.Tensor, ignore_index, mask) -> SegTarget:
    # a zero-stride stand-in with the prediction's (B, C, *spatial) shape: prepare_target only reads shape and dtype
    like = torch.zeros((), dtype=torch.float32, device=labels.device).expand(
        labels.shape[0], num_classes, *labels.shape[1:]
    )
    return resolve_target(like, target, ignore_index=ignore_index, mask=mask)


def overlap_counts(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    include_background: bool = True,
    ignore_index: int | None = None,
    mask: torch.Tensor | None = None,
    threshold: float = 0.5,
    presence_threshold: float = 0.5,
    num_classes: int | None = None,
    prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
) -> torch.Tensor:
    """Per-image, per-class overlap counts of a hard prediction against a hard or soft reference.

    With the hard prediction ``ŷ`` of :func:`prediction_labels` and the reference probabilities ``y`` (one-hot for
    index maps), over the counted voxels ``v`` of image ``i`` (not ignored, inside ``mask``):

    ``tp = Σ_v ŷ_c·y_c``, ``pred_sum = Σ_v ŷ_c``, ``ref_sum = Σ_v y_c`` (so ``fp = pred_sum − tp`` and
    ``fn = ref_sum − tp``; with a soft reference this is MONAI ``DiceMetric``'s convention),
    ``ref_present = max_v y_c >= presence_threshold`` and ``pred_present = pred_sum > 0``.

    Args:
        pred: ``(B, C, *spatial)`` probabilities or one-hot (or a ``(B, 1, *spatial)`` index map with
            ``num_classes``); see :func:`prediction_labels` for the argmax/threshold rule.
        target: index map ``(B, 1, *spatial)``/``(B, *spatial)`` or one-hot/soft ``(B, C, *spatial)``.
        include_background: keep class 0. The argmax always runs over all channels; ignored for ``C == 1``.
        ignore_index: label of voxels to exclude (dense targets: see :func:`~monai_jdt.utils.targets.prepare_target`).
        mask: optional bool ``(B, 1, *spatial)`` voxel mask, ``True`` where a voxel counts.
        threshold: foreground threshold of a single-channel probability (``pred >= threshold``).
        presence_threshold: a class is present in an image's reference when some counted voxel has
            ``y_c >= presence_threshold`` (any occurrence for one-hot and index maps), in ``(0, 1]``.
        num_classes: number of classes when ``pred`` is a single-channel index map.
        prob_tolerance: tolerance of the probability checks.

    Returns:
        ``(B, 5, K)`` float64 tensor, rows :data:`COUNT_FIELDS`, columns :func:`overlap_class_ids`.

    Raises:
        ShapeError: shapes that do not fit.
        ValueError: invalid probabilities, class indices or options.

    Example:
        >>> pred = torch.tensor([[[[0.9, 0.2, 0.6]], [[0.1, 0.8, 0.4]]]])   # (1, 2, 1, 3)
        >>> overlap_counts(pred, torch.tensor([[[[0, 1, 1]]]]))[0, :3]
        tensor([[1., 1.],
                [2., 1.],
                [1., 2.]], dtype=torch.float64)
    """
    check_bool("include_background", include_background)
    presence_threshold = check_in_range("presence_threshold", presence_threshold, 0, 1, low_inclusive=False)
    labels, n_cls = prediction_labels(pred, num_classes=num_classes, threshold=threshold, prob_tolerance=prob_tolerance)
    seg = _resolve_against(labels, n_cls, target, ignore_index, mask)
    batch = labels.shape[0]
    flat_labels, valid = _flat(labels, batch), _flat(seg.mask, batch)
    if n_cls == 1:
        dense = cast(torch.Tensor, seg.dense)  # C == 1 targets are always dense
        return _binary_counts(flat_labels, _flat(dense[:, 0], batch), valid, presence_threshold)
    if seg.index is not None:
        rows = _counts_index(flat_labels, _flat(seg.index, batch), valid, n_cls)
    else:
        dense = cast(torch.Tensor, seg.dense)
        rows = _counts_dense(flat_labels, dense.reshape(batch, n_cls, -1), valid, presence_threshold)
    weight = None if valid is None else valid.to(torch.float64)
    pred_sum = _bincount_bc(flat_labels, weight, n_cls)
    counts = torch.stack([r.to(torch.float64) for r in (rows[0], pred_sum, rows[1], rows[2], pred_sum > 0)], dim=1)
    return counts if include_background else counts[:, :, 1:]
