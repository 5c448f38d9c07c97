"""Fine-grained Dice/IoU (dataset, image, class and worst-case levels) of arXiv 2310.19252.

Wang et al., *Revisiting Evaluation Metrics for Semantic Segmentation: Optimization and Evaluation of Fine-grained
Intersection over Union*, NeurIPS 2023 Datasets and Benchmarks, arXiv 2310.19252.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE
from monai_jdt.metrics.functional.overlap_counts import COUNT_FIELDS, overlap_class_ids, overlap_counts
from monai_jdt.utils.checks import check_in_range, check_option
from monai_jdt.utils.errors import ShapeError

__all__ = ["OVERLAP_FIGURES", "fine_grained_from_counts", "fine_grained_overlap", "overlap_scores", "worst_mean"]

#: the scalar figures of :func:`fine_grained_overlap`.
OVERLAP_FIGURES = ("dataset", "image", "class", "image_worst", "class_worst")


def overlap_scores(tp: torch.Tensor, pred_sum: torch.Tensor, ref_sum: torch.Tensor, kind: str) -> torch.Tensor:
    """Dice ``2tp / (pred_sum + ref_sum)`` or IoU ``tp / (pred_sum + ref_sum − tp)``; 0 where undefined.

    Callers only read entries whose denominator is positive.
    """
    den = pred_sum + ref_sum if kind == "dice" else pred_sum + ref_sum - tp
    num = 2 * tp if kind == "dice" else tp
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.zeros_like(num))


def worst_mean(values: torch.Tensor, q: float) -> float:
    """Mean of the lowest ``max(1, floor(q · n / 100))`` of ``n >= 1`` values."""
    k = max(1, math.floor(q * values.numel() / 100 + 1e-9))
    return float(torch.sort(values).values[:k].mean())


def _none_or_float(value: torch.Tensor, defined: bool) -> float | None:
    return float(value) if defined else None


def _class_level(scores: torch.Tensor, active: torch.Tensor, q: float) -> tuple[list, list, list]:
    """Per class: mean over images where active, worst-q mean, number of such images."""
    means, worsts, counts = [], [], []
    for c in range(scores.shape[1]):
        vals = scores[active[:, c], c]
        counts.append(int(vals.numel()))
        means.append(float(vals.mean()) if vals.numel() else None)
        worsts.append(worst_mean(vals, q) if vals.numel() else None)
    return means, worsts, counts


def _mean_defined(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def fine_grained_from_counts(
    counts: torch.Tensor,
    class_ids: Sequence[int] | None = None,
    *,
    kind: str = "dice",
    q: float = 5.0,
    presence: str = "reference",
) -> dict[str, Any]:
    """Fine-grained overlap figures from the per-image counts of :func:`overlap_counts`.

    With ``S_ic`` the Dice (or IoU) of class ``c`` in image ``i`` and ``A_ic`` whether ``c`` is *active* in image
    ``i`` (present in its reference; with ``presence="either"`` present in its reference or its prediction):

    * ``dataset``: ``mean_c S_c`` with ``S_c`` from the counts pooled over all images, over the classes that
      occur in the pooled reference or prediction (positive pooled denominator).
    * ``image``: ``mean_i (mean_{c: A_ic} S_ic)`` over the images with at least one active class.
    * ``class``: ``mean_c (mean_{i: A_ic} S_ic)`` over the classes active in at least one image.
    * ``image_worst`` / ``class_worst``: the same with each inner mean over images replaced by the mean of the
      worst (lowest) ``max(1, floor(q·n/100))`` of the ``n`` values.

    Absent classes and images are excluded, never filled in: a figure with nothing to average is ``None``.

    Args:
        counts: ``(N, 5, K)`` counts, rows :data:`~monai_jdt.metrics.functional.overlap_counts.COUNT_FIELDS`.
        class_ids: label of each of the ``K`` columns (default ``0 .. K-1``).
        kind: ``"dice"`` or ``"iou"``.
        q: worst-case percentage in ``(0, 100]``.
        presence: ``"reference"`` (default, the multi-class rule of the paper) or ``"either"`` (its binary rule:
            a class predicted in an image where its reference is empty counts, with score 0).

    Returns:
        ``{"dataset", "image", "class", "image_worst", "class_worst"}`` floats or ``None``, ``"n_images"``
        (images in the image level) and ``"per_class"``: ``{class_id: {"dataset", "class", "class_worst",
        "n_images"}}``.

    Raises:
        ShapeError: ``counts`` is not ``(N, 5, K)`` or ``class_ids`` has the wrong length.
        ValueError: a bad ``kind``, ``q`` or ``presence``.

    Example:
        >>> # one image, class 0: tp=1, pred 2, ref 1; class 1: tp=1, pred 1, ref 2 (both present)
        >>> c = torch.tensor([[[1.0, 1], [2, 1], [1, 2], [1, 1], [1, 1]]])
        >>> r = fine_grained_from_counts(c)
        >>> round(r["dataset"], 4), round(r["image"], 4), r["per_class"][1]["class"]
        (0.6667, 0.6667, 0.6666666666666666)
    """
    kind = check_option("kind", kind, ("dice", "iou"))
    presence = check_option("presence", presence, ("reference", "either"))
    q = check_in_range("q", q, 0, 100, low_inclusive=False)
    if not isinstance(counts, torch.Tensor) or counts.ndim != 3 or counts.shape[1] != len(COUNT_FIELDS):
        got = tuple(counts.shape) if isinstance(counts, torch.Tensor) else type(counts).__name__
        raise ShapeError(f"counts must have shape (N, {len(COUNT_FIELDS)}, K), got {got}")
    class_ids = list(range(counts.shape[2])) if class_ids is None else [int(c) for c in class_ids]
    if len(class_ids) != counts.shape[2]:
        raise ShapeError(f"class_ids must have {counts.shape[2]} entries, got {len(class_ids)}")
    counts = counts.to(torch.float64)
    tp, pred_sum, ref_sum, ref_present, pred_present = counts.unbind(1)
    active = ref_present > 0
    if presence == "either":
        active = active | (pred_present > 0)

    pooled = overlap_scores(tp.sum(0), pred_sum.sum(0), ref_sum.sum(0), kind)
    pooled_defined = (pred_sum.sum(0) + ref_sum.sum(0)) > 0
    dataset_pc = [_none_or_float(pooled[c], bool(pooled_defined[c])) for c in range(len(class_ids))]

    scores = overlap_scores(tp, pred_sum, ref_sum, kind)
    n_active = active.sum(1)
    image_values = (scores * active).sum(1)[n_active > 0] / n_active[n_active > 0]
    class_means, class_worsts, class_counts = _class_level(scores, active, q)
    return {
        "dataset": _mean_defined(dataset_pc),
        "image": float(image_values.mean()) if image_values.numel() else None,
        "class": _mean_defined(class_means),
        "image_worst": worst_mean(image_values, q) if image_values.numel() else None,
        "class_worst": _mean_defined(class_worsts),
        "n_images": int(image_values.numel()),
        "per_class": {
            cid: {
                "dataset": dataset_pc[j],
                "class": class_means[j],
                "class_worst": class_worsts[j],
                "n_images": class_counts[j],
            }
            for j, cid in enumerate(class_ids)
        },
    }


def fine_grained_overlap(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: str = "dice",
    *,
    q: float = 5.0,
    include_background: bool = True,
    ignore_index: int | None = None,
    mask: torch.Tensor | None = None,
    presence: str = "reference",
    threshold: float = 0.5,
    presence_threshold: float = 0.5,
    num_classes: int | None = None,
    prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
) -> dict[str, Any]:
    """Fine-grained Dice or IoU of a batch of images (arXiv 2310.19252), each image one sample.

    ``pred`` probabilities are made hard first: argmax over channels for ``C > 1``, ``pred >= threshold`` for a
    single foreground channel (see :func:`~monai_jdt.metrics.functional.overlap_counts.prediction_labels`).
    Then, per image ``i`` and class ``c``, ``Dice = 2TP/(2TP+FP+FN)`` and ``IoU = TP/(TP+FP+FN)`` with the counts
    of :func:`~monai_jdt.metrics.functional.overlap_counts.overlap_counts`, reduced as in
    :func:`fine_grained_from_counts` (dataset, image, class and worst-case levels; absent classes excluded, a
    figure with nothing to average is ``None``).

    Args:
        pred: ``(B, C, *spatial)`` probabilities or one-hot (or a 1-channel index map with ``num_classes``).
        target: index map ``(B, 1, *spatial)`` / ``(B, *spatial)`` or one-hot/soft ``(B, C, *spatial)``.
        kind: ``"dice"`` or ``"iou"``.
        q: worst-case percentage in ``(0, 100]`` (default 5).
        include_background: keep class 0 (the argmax still uses all channels).
        ignore_index: label of voxels to exclude.
        mask: optional bool voxel mask, ``True`` where a voxel counts.
        presence: ``"reference"`` or ``"either"``, see :func:`fine_grained_from_counts`.
        threshold: foreground threshold of a single-channel probability.
        presence_threshold: reference probability from which a class counts as present (soft references).
        num_classes: number of classes of a single-channel index-map ``pred``.
        prob_tolerance: tolerance of the "probabilities in [0, 1] summing to 1" check.

    Returns:
        The dict of :func:`fine_grained_from_counts`; ``per_class`` is keyed by class label (a single foreground
        channel is class 1).

    Raises:
        ShapeError: shapes that do not fit.
        ValueError: probabilities outside ``[0, 1]`` or not summing to 1 over classes, bad options.

    Example:
        >>> pred = torch.tensor([[[[0.9, 0.2, 0.6]], [[0.1, 0.8, 0.4]]]])   # argmax: 0, 1, 0
        >>> r = fine_grained_overlap(pred, torch.tensor([[[[0, 1, 1]]]]), kind="iou")
        >>> r["dataset"], r["image"], r["class_worst"]
        (0.5, 0.5, 0.5)
    """
    counts = overlap_counts(
        pred,
        target,
        include_background=include_background,
        ignore_index=ignore_index,
        mask=mask,
        threshold=threshold,
        presence_threshold=presence_threshold,
        num_classes=num_classes,
        prob_tolerance=prob_tolerance,
    )
    n_cls = num_classes if (num_classes is not None and pred.shape[1] == 1) else int(pred.shape[1])
    ids = overlap_class_ids(n_cls, include_background)
    return fine_grained_from_counts(counts, ids, kind=kind, q=q, presence=presence)
