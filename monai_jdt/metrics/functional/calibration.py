"""Calibration errors of probabilistic segmentations: top-label ECE/MCE, class-wise SCE, boundary ECE, Brier, NLL.

Definitions (equal-width bins ``B_k = [k/n, (k+1)/n)``, the last bin closed; ``N`` counted voxels):

* top label: confidence ``conf = max_c p_c``, accuracy ``acc = y_{argmax_c p_c}`` (the reference probability of
  the predicted class, so soft references work; 0/1 for hard ones).
  ``ECE = Σ_k |Σ_{v∈B_k} acc_v − Σ_{v∈B_k} conf_v| / N`` (= ``Σ_k (n_k/N)|acc_k − conf_k|``, Guo et al. 2017),
  ``MCE = max_{k: n_k>0} |acc_k − conf_k|``.
* class-wise static calibration error (Nixon et al. 2019): for class ``c``, bins of ``p_c``,
  ``SCE_c = Σ_k |Σ_{v∈B_k} y_c − Σ_{v∈B_k} p_c| / N`` and ``SCE = mean_c SCE_c``.
* boundary ECE: the top-label ECE over the voxels of a band around the reference boundary.
* Brier score ``mean_v Σ_c (p_c − y_c)²``; NLL ``mean_v −Σ_c y_c log max(p_c, eps)`` (``eps`` the machine epsilon
  of the probabilities' dtype, as scikit-learn's ``log_loss``).

Dataset level pools the bins (and sums) of all images; image level is the mean of the per-image values over the
images with at least one counted voxel (boundary ECE: with a non-empty band). Used for the calibration results of
the JDT papers (arXiv 2302.05666, 2303.16296, 2310.19252).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from monai_jdt.metrics.functional.boundary_band import resolve_band
from monai_jdt.metrics.functional.calibration_stats import CalibrationStatistics, calibration_statistics
from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE
from monai_jdt.utils.checks import check_option

__all__ = [
    "CALIBRATION_FIGURES",
    "binned_errors",
    "calibration_errors",
    "calibration_errors_from_statistics",
    "reliability_bins",
]

#: the scalar figures of :func:`calibration_errors` (``"bece"`` only with a boundary band).
CALIBRATION_FIGURES = ("ece", "mce", "sce", "brier", "nll", "bece")


def binned_errors(bins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Expected and maximum calibration error of ``(..., 3, n_bins)`` statistics (count, Σconf, Σacc).

    Returns:
        ``(ece, mce, defined)``, each of shape ``bins.shape[:-2]``; ``defined`` is ``False`` where no voxel was
        counted (``ece`` and ``mce`` are 0 there and must not be read).
    """
    count, conf, acc = bins.unbind(-2)
    total = count.sum(-1)
    defined = total > 0
    ece = (acc - conf).abs().sum(-1) / total.clamp_min(1)
    gaps = torch.where(count > 0, (acc - conf).abs() / count.clamp_min(1), torch.zeros_like(count))
    return ece, gaps.amax(-1), defined


def _mean_over(values: torch.Tensor, defined: torch.Tensor) -> float | None:
    return float(values[defined].mean()) if bool(defined.any()) else None


def _figures(stats: CalibrationStatistics) -> dict[str, Any]:
    """Per-image figures (vectorised over images) and their validity."""
    ece, mce, defined = binned_errors(stats.top)
    sce_c, _, _ = binned_errors(stats.classwise)
    count = stats.totals[:, 0].clamp_min(1)
    out = {
        "ece": ece,
        "mce": mce,
        "sce": sce_c.mean(-1) if sce_c.shape[-1] else torch.zeros_like(ece),
        "brier": stats.totals[:, 1] / count,
        "nll": stats.totals[:, 2] / count,
        "sce_per_class": sce_c,
        "defined": defined & (stats.totals[:, 0] > 0),
    }
    if stats.band is not None:
        out["bece"], _, out["band_defined"] = binned_errors(stats.band)
    return out


def calibration_errors_from_statistics(stats: CalibrationStatistics, level: str = "dataset") -> dict[str, Any]:
    """Calibration figures of :class:`~monai_jdt.metrics.functional.calibration_stats.CalibrationStatistics`.

    Args:
        stats: per-image statistics.
        level: ``"dataset"`` (pooled bins) or ``"image"`` (mean of per-image values).

    Returns:
        ``{"ece", "mce", "sce", "brier", "nll"}`` (+ ``"bece"`` when the statistics have a band): floats, or
        ``None`` when no voxel (no band voxel for ``"bece"``) was counted; ``"sce_per_class"``:
        ``{class_id: float | None}``; ``"n_images"``: images that contribute (all counted ones for
        ``"dataset"``).
    """
    level = check_option("level", level, ("dataset", "image"))
    figs = _figures(stats.pooled() if level == "dataset" else stats)
    defined = figs["defined"]
    result: dict[str, Any] = {name: _mean_over(figs[name], defined) for name in ("ece", "mce", "sce", "brier", "nll")}
    if stats.band is not None:
        result["bece"] = _mean_over(figs["bece"], figs["band_defined"])
    result["sce_per_class"] = {
        cid: _mean_over(figs["sce_per_class"][:, j], defined) for j, cid in enumerate(stats.class_ids)
    }
    result["n_images"] = int((stats.totals[:, 0] > 0).sum())
    return result


def reliability_bins(stats: CalibrationStatistics, which: str | int = "top") -> dict[str, Any]:
    """The dataset-level reliability table of ``stats``.

    Args:
        stats: per-image statistics (pooled here).
        which: ``"top"`` (top label), ``"band"`` (top label in the boundary band) or a class id (class-wise).

    Returns:
        ``{"which", "n_bins", "ece", "mce", "bins": [{"lower", "upper", "count", "confidence", "accuracy",
        "gap"}, ...]}`` where confidence/accuracy/gap (``accuracy − confidence``) are ``None`` for empty bins
        and ``ece``/``mce`` are ``None`` when nothing was counted.

    Raises:
        ValueError: an unknown ``which`` or ``"band"`` without a band.
    """
    pooled = stats.pooled()
    if which == "top":
        bins = pooled.top[0]
    elif which == "band":
        if pooled.band is None:
            raise ValueError("which='band' needs statistics computed with a boundary band, got none")
        bins = pooled.band[0]
    elif isinstance(which, int) and not isinstance(which, bool) and which in stats.class_ids:
        bins = pooled.classwise[0, stats.class_ids.index(which)]
    else:
        raise ValueError(f"which must be 'top', 'band' or one of the class ids {list(stats.class_ids)}, got {which!r}")
    ece, mce, defined = binned_errors(bins)
    n = stats.n_bins
    rows = []
    for k in range(n):
        cnt, sconf, sacc = (float(v) for v in bins[:, k])
        conf = sconf / cnt if cnt > 0 else None
        acc = sacc / cnt if cnt > 0 else None
        gap = acc - conf if cnt > 0 else None
        rows.append(
            {"lower": k / n, "upper": (k + 1) / n, "count": cnt, "confidence": conf, "accuracy": acc, "gap": gap}
        )
    ok = bool(defined)
    return {
        "which": which,
        "n_bins": n,
        "ece": float(ece) if ok else None,
        "mce": float(mce) if ok else None,
        "bins": rows,
    }


def calibration_errors(
    probs: torch.Tensor,
    target: torch.Tensor,
    n_bins: int = 15,
    *,
    level: str = "dataset",
    include_background: bool = True,
    ignore_index: int | None = None,
    mask: torch.Tensor | None = None,
    band: torch.Tensor | None = None,
    boundary_kernel_size: int | Sequence[int] | None = None,
    boundary_radius_mm: float | Sequence[float] | None = None,
    spacing: Any = None,
    prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
) -> dict[str, Any]:
    """Top-label ECE and MCE, class-wise SCE, Brier score, NLL and optionally boundary ECE of a batch.

    See the module docstring for the exact formulas. The figures are computed in one pass over the voxels from
    the statistics of :func:`~monai_jdt.metrics.functional.calibration_stats.calibration_statistics`.

    Args:
        probs: ``(B, C, *spatial)`` probabilities summing to 1 over channels (a single channel is a foreground
            probability ``p``, read as the two classes ``(1 − p, p)``).
        target: index map ``(B, 1, *spatial)`` / ``(B, *spatial)`` (``C > 1``) or one-hot/soft ``(B, C, *spatial)``.
        n_bins: number of equal-width bins, ``>= 1`` (default 15).
        level: ``"dataset"`` (bins pooled over the batch) or ``"image"`` (mean of per-image values).
        include_background: keep class 0 in SCE (ECE, MCE, Brier and NLL always use every class).
        ignore_index: label of voxels to exclude.
        mask: optional bool voxel mask, ``True`` where a voxel counts.
        band: optional bool ``(B, 1, *spatial)`` voxels for ``"bece"`` (instead of the two options below).
        boundary_kernel_size: request ``"bece"`` over the band of voxels whose odd box window of this size (in
            voxels, one value or one per axis) holds a different reference label, i.e. within
            ``kernel_size // 2`` voxels of a label change (see
            :func:`~monai_jdt.metrics.functional.boundary_band.reference_band`).
        boundary_radius_mm: the same band with a window half-size in mm (needs ``spacing``).
        spacing: voxel size in mm, ``(S,)`` or ``(B, S)``; only with ``boundary_radius_mm``.
        prob_tolerance: tolerance of the "probabilities in [0, 1] summing to 1" check.

    Returns:
        See :func:`calibration_errors_from_statistics`: ``"ece"``, ``"mce"``, ``"sce"``, ``"brier"``, ``"nll"``,
        ``"bece"`` when a band is requested (floats, ``None`` when nothing was counted), ``"sce_per_class"``,
        ``"n_images"``.

    Raises:
        ShapeError: shapes that do not fit.
        ValueError: ``n_bins < 1``, probabilities outside ``[0, 1]`` or not summing to 1, bad options.

    Example:
        >>> probs = torch.tensor([[[[0.9, 0.3]], [[0.1, 0.7]]]])   # confidences 0.9 and 0.7, both in bin [0.5, 1]
        >>> r = calibration_errors(probs, torch.tensor([[[[0, 0]]]]), n_bins=2)
        >>> round(r["ece"], 4), round(r["mce"], 4), round(r["brier"], 4)   # |1/2 - 0.8|; (0.02 + 0.98) / 2
        (0.3, 0.3, 0.5)
    """
    band = resolve_band(
        probs,
        target,
        band=band,
        kernel_size=boundary_kernel_size,
        radius_mm=boundary_radius_mm,
        spacing=spacing,
        ignore_index=ignore_index,
        mask=mask,
    )
    stats = calibration_statistics(
        probs,
        target,
        n_bins,
        include_background=include_background,
        ignore_index=ignore_index,
        mask=mask,
        band=band,
        prob_tolerance=prob_tolerance,
    )
    return calibration_errors_from_statistics(stats, level)
