"""Cumulative fine-grained Dice/IoU metric (arXiv 2310.19252) over a whole evaluation set."""

from __future__ import annotations

from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric

from monai_jdt.metrics.functional.fine_grained import fine_grained_from_counts
from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE
from monai_jdt.metrics.functional.overlap_counts import overlap_class_ids, overlap_counts
from monai_jdt.utils.checks import check_bool, check_in_range, check_option, check_positive_int
from monai_jdt.utils.errors import ShapeError

__all__ = ["FineGrainedOverlapMetric"]


class FineGrainedOverlapMetric(CumulativeIterationMetric):
    """Fine-grained Dice or IoU (dataset, image, class and worst-case levels) accumulated over batches.

    Every call stores the per-image counts of
    :func:`~monai_jdt.metrics.functional.overlap_counts.overlap_counts` (``5 x classes`` numbers per image, never
    voxels); :meth:`aggregate` returns the dict of
    :func:`~monai_jdt.metrics.functional.fine_grained.fine_grained_from_counts` for all images seen since the last
    :meth:`reset`, which is exactly what :func:`~monai_jdt.metrics.functional.fine_grained.fine_grained_overlap`
    returns on all of them at once. Absent classes are excluded; a figure with nothing to average is ``None``.

    Definitions (Wang et al., NeurIPS 2023 D&B, arXiv 2310.19252), ``S_ic`` the score of class ``c`` in image ``i``:
    ``dataset = mean_c S(Σ_i counts)``, ``image = mean_i mean_{c present in i} S_ic``,
    ``class = mean_c mean_{i: c present} S_ic``, ``*_worst``: inner means over the worst
    ``max(1, floor(q·n/100))`` values. ``Dice = 2TP/(2TP+FP+FN)``, ``IoU = TP/(TP+FP+FN)``.

    Args:
        kind: ``"dice"`` or ``"iou"``.
        q: worst-case percentage in ``(0, 100]`` (default 5).
        include_background: keep class 0 (the argmax always uses all channels).
        ignore_index: label of voxels to exclude.
        presence: ``"reference"`` (a class counts in an image where its reference is present) or ``"either"``
            (present in the reference or predicted).
        threshold: foreground threshold of a single-channel probability (``pred >= threshold``).
        presence_threshold: reference probability from which a class counts as present (soft references).
        num_classes: number of classes when predictions are single-channel index maps.
        prob_tolerance: tolerance of the "probabilities in [0, 1] summing to 1" check.

    Example:
        >>> metric = FineGrainedOverlapMetric(kind="dice")
        >>> pred = torch.tensor([[[[0.9, 0.2, 0.6]], [[0.1, 0.8, 0.4]]]])   # argmax 0, 1, 0
        >>> _ = metric(pred, torch.tensor([[[[0, 1, 1]]]]))
        >>> _ = metric(pred, torch.tensor([[[[0, 0, 0]]]]))                # class 1 absent in image 2
        >>> r = metric.aggregate()
        >>> r["per_class"][1]["n_images"], round(r["class"], 4)
        (1, 0.7)
    """

    def __init__(
        self,
        kind: str = "dice",
        q: float = 5.0,
        include_background: bool = True,
        ignore_index: int | None = None,
        presence: str = "reference",
        threshold: float = 0.5,
        presence_threshold: float = 0.5,
        num_classes: int | None = None,
        prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
    ) -> None:
        super().__init__()
        self.kind = check_option("kind", kind, ("dice", "iou"))
        self.q = check_in_range("q", q, 0, 100, low_inclusive=False)
        self.include_background = check_bool("include_background", include_background)
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} {ignore_index!r}")
        self.ignore_index = ignore_index
        self.presence = check_option("presence", presence, ("reference", "either"))
        self.threshold = check_in_range("threshold", threshold, 0, 1)
        self.presence_threshold = check_in_range("presence_threshold", presence_threshold, 0, 1, low_inclusive=False)
        self.num_classes = None if num_classes is None else check_positive_int("num_classes", num_classes)
        self.prob_tolerance = check_in_range("prob_tolerance", prob_tolerance, 0, 1, high_inclusive=False)
        self._class_ids: list[int] | None = None

    def reset(self) -> None:
        super().reset()
        self._class_ids = None

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """Per-image counts ``(B, 5, K)`` of a batch; ``mask=`` may be passed as a keyword."""
        if y is None:
            raise ValueError("FineGrainedOverlapMetric needs a target y, got None")
        counts = overlap_counts(
            y_pred,
            y,
            include_background=self.include_background,
            ignore_index=self.ignore_index,
            mask=kwargs.get("mask"),
            threshold=self.threshold,
            presence_threshold=self.presence_threshold,
            num_classes=self.num_classes,
            prob_tolerance=self.prob_tolerance,
        )
        n_cls = self.num_classes if (self.num_classes is not None and y_pred.shape[1] == 1) else int(y_pred.shape[1])
        ids = overlap_class_ids(n_cls, self.include_background)
        if self._class_ids is not None and ids != self._class_ids:
            raise ShapeError(f"every batch must have the same classes {self._class_ids}, got {ids}")
        self._class_ids = ids
        return counts

    def aggregate(self) -> dict[str, Any]:  # type: ignore[override]
        """Figures of all images seen since :meth:`reset` (see the class docstring).

        Raises:
            ValueError: the metric has not been called since the last reset.
        """
        counts = self.get_buffer()
        if not isinstance(counts, torch.Tensor) or counts.numel() == 0:
            raise ValueError("FineGrainedOverlapMetric has no data: call it on a batch before aggregate()")
        return fine_grained_from_counts(counts, self._class_ids, kind=self.kind, q=self.q, presence=self.presence)
