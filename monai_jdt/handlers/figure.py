"""Base ignite handler for metrics whose ``aggregate()`` returns a dict of figures: it reports one as a float."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monai.handlers import IgniteMetricHandler
from monai.metrics import CumulativeIterationMetric

from monai_jdt.utils.checks import check_option, check_real

__all__ = ["FigureMetricHandler"]


def _identity(x: Any) -> Any:
    return x


class FigureMetricHandler(IgniteMetricHandler):
    """:class:`monai.handlers.IgniteMetricHandler` that reports one figure of a dict-valued metric.

    ``engine.state.metrics[name]`` receives ``float(result[figure])`` so the handler works as a bundle
    ``key_metric`` / ``additional_metrics`` (e.g. with ``CheckpointSaver``); the whole dict of the last epoch is
    kept in :attr:`last_result`. A figure with nothing to average (``None``, e.g. no image with a present class)
    raises a ``ValueError`` unless ``empty_value`` says which number to report instead.

    Args:
        metric_fn: the cumulative metric (its ``aggregate()`` returns a dict).
        figure: the key of the figure to report.
        figures: the allowed keys.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``, e.g. ``from_engine(["pred", "label"])``.
        empty_value: number reported when the figure has nothing to average; ``None`` (default) raises instead.
    """

    def __init__(
        self,
        metric_fn: CumulativeIterationMetric,
        figure: str,
        figures: Sequence[str],
        output_transform: Callable = _identity,
        empty_value: float | None = None,
    ) -> None:
        self.figure = check_option("figure", figure, tuple(figures))
        self.empty_value = None if empty_value is None else check_real("empty_value", empty_value)
        self.last_result: dict[str, Any] | None = None
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=False)

    def select(self, result: dict[str, Any]) -> float | None:
        """The reported figure of an ``aggregate()`` result (``None`` when it has nothing to average)."""
        return result[self.figure]

    def compute(self) -> float:
        """Aggregate the metric and return the selected figure.

        Raises:
            ValueError: the figure has nothing to average and ``empty_value`` is ``None``.
        """
        result = self.metric_fn.aggregate()
        self._is_reduced = True
        self.last_result = result
        value = self.select(result)
        if value is None:
            if self.empty_value is None:
                raise ValueError(
                    f"{type(self).__name__}: figure {self.figure!r} has nothing to average in this run "
                    "(no image/class/voxel qualifies); pass empty_value=<number> to report a number instead"
                )
            return self.empty_value
        return float(value)
