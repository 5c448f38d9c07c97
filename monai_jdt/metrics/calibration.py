"""Cumulative calibration metric: ECE, MCE, SCE, boundary ECE, Brier and NLL over a whole evaluation set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.data import MetaTensor
from monai.metrics import CumulativeIterationMetric

from monai_jdt.metrics.functional.boundary_band import resolve_band
from monai_jdt.metrics.functional.calibration import calibration_errors_from_statistics, reliability_bins
from monai_jdt.metrics.functional.calibration_stats import CalibrationStatistics, calibration_statistics
from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE
from monai_jdt.utils.checks import check_bool, check_in_range, check_option, check_positive_int
from monai_jdt.utils.errors import ShapeError

__all__ = ["CalibrationMetric"]


def _spacing_of(y: torch.Tensor) -> Any:
    """Voxel spacing of a MetaTensor target: ``(S,)`` or ``(B, S)``; ``None`` for a plain tensor."""
    if not isinstance(y, MetaTensor):
        return None
    pixdim = y.pixdim
    return torch.stack(list(pixdim)) if isinstance(pixdim, (list, tuple)) else pixdim


class CalibrationMetric(CumulativeIterationMetric):
    """Top-label ECE/MCE, class-wise SCE, Brier, NLL and boundary ECE, accumulated over batches.

    Each call stores, per image, the binned statistics of
    :func:`~monai_jdt.metrics.functional.calibration_stats.calibration_statistics`:
    ``3·n_bins·(classes + 1 [+ 1 with a band]) + 3`` float64 numbers, never voxels, so a whole 3D test set fits
    (50 volumes of 3 classes with 15 bins: 50 x 183 x 8 bytes = 73 kB). :meth:`aggregate` returns the figures of
    :func:`~monai_jdt.metrics.functional.calibration.calibration_errors_from_statistics`, at dataset level (bins
    pooled over all images) or image level (mean of per-image values); exactly what
    :func:`~monai_jdt.metrics.functional.calibration.calibration_errors` gives on all images at once.

    Definitions (equal-width bins ``[k/n, (k+1)/n)``, last bin closed, ``N`` counted voxels):
    ``ECE = Σ_k |Σ_{B_k} acc − Σ_{B_k} conf| / N`` with ``conf = max_c p_c`` and ``acc = y_{argmax p}``;
    ``MCE = max_k |acc_k − conf_k|``; ``SCE = mean_c Σ_k |Σ_{B_k^c} y_c − Σ_{B_k^c} p_c| / N``;
    ``BECE`` = ECE over the boundary band; ``Brier = mean_v Σ_c (p_c − y_c)²``; ``NLL = mean_v −Σ_c y_c log p_c``.

    Args:
        n_bins: number of equal-width bins, ``>= 1`` (default 15).
        level: default level of :meth:`aggregate`: ``"dataset"`` or ``"image"``.
        include_background: keep class 0 in SCE.
        ignore_index: label of voxels to exclude.
        boundary_kernel_size: compute ``"bece"`` over the voxels within ``kernel_size // 2`` voxels of a
            reference label change (odd window size, one value or one per axis).
        boundary_radius_mm: compute ``"bece"`` with the window half-size in mm; the spacing is ``spacing``, the
            ``spacing=`` keyword of a call, or the ``pixdim`` of a MetaTensor target.
        spacing: default voxel spacing in mm for ``boundary_radius_mm``.
        prob_tolerance: tolerance of the "probabilities in [0, 1] summing to 1" check.

    Example:
        >>> metric = CalibrationMetric(n_bins=2)
        >>> probs = torch.tensor([[[[0.9, 0.3]], [[0.1, 0.7]]]])
        >>> _ = metric(probs, torch.tensor([[[[0, 0]]]]))
        >>> _ = metric(probs, torch.tensor([[[[0, 1]]]]))
        >>> r = metric.aggregate()
        >>> round(r["ece"], 4), round(metric.aggregate(level="image")["ece"], 4)
        (0.05, 0.25)
    """

    def __init__(
        self,
        n_bins: int = 15,
        level: str = "dataset",
        include_background: bool = True,
        ignore_index: int | None = None,
        boundary_kernel_size: int | Sequence[int] | None = None,
        boundary_radius_mm: float | Sequence[float] | None = None,
        spacing: Any = None,
        prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
    ) -> None:
        super().__init__()
        self.n_bins = check_positive_int("n_bins", n_bins)
        self.level = check_option("level", level, ("dataset", "image"))
        self.include_background = check_bool("include_background", include_background)
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} {ignore_index!r}")
        self.ignore_index = ignore_index
        if boundary_kernel_size is not None and boundary_radius_mm is not None:
            raise ValueError("pass boundary_kernel_size or boundary_radius_mm, not both")
        if spacing is not None and boundary_radius_mm is None:
            raise ValueError(
                "spacing is only used with boundary_radius_mm; pass boundary_radius_mm or leave spacing=None"
            )
        self.boundary_kernel_size = boundary_kernel_size
        self.boundary_radius_mm = boundary_radius_mm
        self.spacing = spacing
        self.prob_tolerance = check_in_range("prob_tolerance", prob_tolerance, 0, 1, high_inclusive=False)
        self._class_ids: tuple[int, ...] | None = None

    @property
    def has_band(self) -> bool:
        """Whether the boundary ECE is computed."""
        return self.boundary_kernel_size is not None or self.boundary_radius_mm is not None

    def reset(self) -> None:
        super().reset()
        self._class_ids = None

    def _band(self, y_pred: torch.Tensor, y: torch.Tensor, mask: Any, spacing: Any) -> torch.Tensor | None:
        if not self.has_band:
            return None
        if self.boundary_radius_mm is not None:
            spacing = spacing if spacing is not None else self.spacing
            spacing = spacing if spacing is not None else _spacing_of(y)
            if spacing is None:
                raise ValueError(
                    "boundary_radius_mm needs the voxel spacing: pass spacing= to the metric or the call, "
                    "or targets as MetaTensors with an affine"
                )
        return resolve_band(
            y_pred,
            y,
            kernel_size=self.boundary_kernel_size,
            radius_mm=self.boundary_radius_mm,
            spacing=spacing if self.boundary_radius_mm is not None else None,
            ignore_index=self.ignore_index,
            mask=mask,
        )

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """Packed per-image statistics ``(B, F)``; ``mask=`` and ``spacing=`` may be passed as keywords."""
        if y is None:
            raise ValueError("CalibrationMetric needs a target y, got None")
        mask = kwargs.get("mask")
        stats = calibration_statistics(
            y_pred,
            y,
            self.n_bins,
            include_background=self.include_background,
            ignore_index=self.ignore_index,
            mask=mask,
            band=self._band(y_pred, y, mask, kwargs.get("spacing")),
            prob_tolerance=self.prob_tolerance,
        )
        if self._class_ids is not None and stats.class_ids != self._class_ids:
            raise ShapeError(
                f"every batch must have the same classes {list(self._class_ids)}, got {list(stats.class_ids)}"
            )
        self._class_ids = stats.class_ids
        return stats.pack()

    def statistics(self) -> CalibrationStatistics:
        """The per-image statistics of all images seen since :meth:`reset`.

        Raises:
            ValueError: the metric has not been called since the last reset.
        """
        packed = self.get_buffer()
        if not isinstance(packed, torch.Tensor) or packed.numel() == 0 or self._class_ids is None:
            raise ValueError("CalibrationMetric has no data: call it on a batch before aggregate()")
        return CalibrationStatistics.unpack(packed, self.n_bins, self._class_ids, self.has_band)

    def aggregate(self, level: str | None = None) -> dict[str, Any]:  # type: ignore[override]
        """Calibration figures (``"ece"``, ``"mce"``, ``"sce"``, ``"brier"``, ``"nll"``, ``"bece"`` with a band).

        Args:
            level: ``"dataset"`` or ``"image"``; default: the constructor's ``level``.

        Raises:
            ValueError: the metric has not been called since the last reset, or a bad ``level``.
        """
        return calibration_errors_from_statistics(self.statistics(), self.level if level is None else level)

    def reliability(self, which: str | int = "top") -> dict[str, Any]:
        """Dataset-level reliability table (see :func:`~monai_jdt.metrics.functional.calibration.reliability_bins`)."""
        return reliability_bins(self.statistics(), which)
