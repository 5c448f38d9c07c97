"""Ignite handler of the fine-grained Dice/IoU metric, for bundle ``key_metric`` / ``additional_metrics``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monai_jdt.handlers.figure import FigureMetricHandler, _identity
from monai_jdt.metrics.fine_grained import FineGrainedOverlapMetric
from monai_jdt.metrics.functional.fine_grained import OVERLAP_FIGURES
from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE

__all__ = ["FineGrainedOverlapHandler"]

_PER_CLASS_FIGURES = ("dataset", "class", "class_worst")


class FineGrainedOverlapHandler(FigureMetricHandler):
    """Reports one figure of :class:`~monai_jdt.metrics.FineGrainedOverlapMetric` (default: image-level Dice).

    Args:
        kind: ``"dice"`` or ``"iou"``.
        figure: ``"dataset"``, ``"image"`` (default; closest to MONAI's ``MeanDice``, but absent classes are
            excluded instead of being NaN), ``"class"``, ``"image_worst"`` or ``"class_worst"``.
        class_id: report ``per_class[class_id][figure]`` instead (figure ``"dataset"``, ``"class"`` or
            ``"class_worst"``), e.g. the tumour class of LiTS.
        q, include_background, ignore_index, presence, threshold, presence_threshold, num_classes,
            prob_tolerance: see :class:`~monai_jdt.metrics.FineGrainedOverlapMetric`.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``.
        empty_value: reported when the figure has nothing to average; ``None`` raises.

    Example:
        >>> import torch
        >>> from ignite.engine import Engine
        >>> pred = torch.tensor([[[[0.9, 0.2, 0.6]], [[0.1, 0.8, 0.4]]]])
        >>> engine = Engine(lambda e, batch: batch)
        >>> FineGrainedOverlapHandler(kind="iou", figure="dataset").attach(engine, "iou")
        >>> engine.run([(pred, torch.tensor([[[[0, 1, 1]]]]))]).metrics["iou"]
        0.5
    """

    def __init__(
        self,
        kind: str = "dice",
        figure: str = "image",
        q: float = 5.0,
        include_background: bool = True,
        ignore_index: int | None = None,
        presence: str = "reference",
        threshold: float = 0.5,
        presence_threshold: float = 0.5,
        num_classes: int | None = None,
        class_id: int | None = None,
        prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
        output_transform: Callable = _identity,
        empty_value: float | None = None,
    ) -> None:
        metric = FineGrainedOverlapMetric(
            kind=kind,
            q=q,
            include_background=include_background,
            ignore_index=ignore_index,
            presence=presence,
            threshold=threshold,
            presence_threshold=presence_threshold,
            num_classes=num_classes,
            prob_tolerance=prob_tolerance,
        )
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(class_id, int)):
            raise TypeError(f"class_id must be an int or None, got {type(class_id).__name__} {class_id!r}")
        self.class_id = class_id
        figures = OVERLAP_FIGURES if class_id is None else _PER_CLASS_FIGURES
        super().__init__(metric, figure, figures, output_transform=output_transform, empty_value=empty_value)

    def select(self, result: dict[str, Any]) -> float | None:
        if self.class_id is None:
            return result[self.figure]
        if self.class_id not in result["per_class"]:
            raise ValueError(
                f"class_id must be one of the evaluated classes {list(result['per_class'])}, got {self.class_id}"
            )
        return result["per_class"][self.class_id][self.figure]
