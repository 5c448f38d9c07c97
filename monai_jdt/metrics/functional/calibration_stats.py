"""Per-image binned calibration statistics: everything the calibration errors need, in O(classes x bins) memory.

For every image the statistics hold, per equal-width confidence bin, the voxel count and the sums of the
confidence and of the accuracy (top label and class-wise), plus the sums of the Brier score and of the negative
log-likelihood. Summing them over images gives the dataset-level (pooled) statistics exactly, so a whole 3D test
set is reduced batch by batch without keeping any voxel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch

from monai_jdt.metrics.functional.calibration_binning import BinAccumulator, chunk_elements
from monai_jdt.metrics.functional.inputs import DEFAULT_PROB_TOLERANCE, as_prediction, resolve_target
from monai_jdt.utils.checks import check_bool, check_in_range, check_positive_int
from monai_jdt.utils.errors import ShapeError
from monai_jdt.utils.targets import prepare_mask

__all__ = ["CalibrationStatistics", "calibration_statistics"]


@dataclass(frozen=True)
class CalibrationStatistics:
    """Binned calibration statistics of ``N`` images (float64 tensors).

    Attributes:
        top: ``(N, 3, n_bins)``: per top-label confidence bin the voxel count, the sum of the confidences
            ``max_c p_c`` and the sum of the accuracies ``y_{argmax p}`` (the reference probability of the
            predicted class: 0/1 for hard references).
        classwise: ``(N, K, 3, n_bins)``: per class ``c`` and bin of ``p_c`` the count, ``Σ p_c`` and ``Σ y_c``.
        totals: ``(N, 3)``: counted voxels, ``Σ_v Σ_c (p_c − y_c)²`` and ``Σ_v −Σ_c y_c log p_c``.
        band: ``(N, 3, n_bins)`` top-label statistics of the voxels in the boundary band, or ``None``.
        class_ids: label of each of the ``K`` classes of ``classwise``.
    """

    top: torch.Tensor
    classwise: torch.Tensor
    totals: torch.Tensor
    band: torch.Tensor | None
    class_ids: tuple[int, ...]

    @property
    def n_bins(self) -> int:
        return int(self.top.shape[-1])

    @property
    def num_images(self) -> int:
        return int(self.top.shape[0])

    def pooled(self) -> CalibrationStatistics:
        """The dataset-level statistics: the sum over images, as one image."""
        band = None if self.band is None else self.band.sum(0, keepdim=True)
        return CalibrationStatistics(
            self.top.sum(0, keepdim=True),
            self.classwise.sum(0, keepdim=True),
            self.totals.sum(0, keepdim=True),
            band,
            self.class_ids,
        )

    def pack(self) -> torch.Tensor:
        """All statistics as one ``(N, F)`` float64 tensor (a row per image, for MONAI's cumulative buffers)."""
        parts = [self.top.flatten(1), self.classwise.flatten(1), self.totals]
        if self.band is not None:
            parts.append(self.band.flatten(1))
        return torch.cat(parts, dim=1)

    @classmethod
    def unpack(
        cls, packed: torch.Tensor, n_bins: int, class_ids: Sequence[int], has_band: bool
    ) -> CalibrationStatistics:
        """Inverse of :meth:`pack`."""
        num_k = len(class_ids)
        sizes = [3 * n_bins, num_k * 3 * n_bins, 3] + ([3 * n_bins] if has_band else [])
        if packed.ndim != 2 or packed.shape[1] != sum(sizes):
            raise ShapeError(f"packed statistics must have shape (N, {sum(sizes)}), got {tuple(packed.shape)}")
        parts = torch.split(packed.to(torch.float64), sizes, dim=1)
        n = packed.shape[0]
        band = parts[3].reshape(n, 3, n_bins) if has_band else None
        return cls(
            parts[0].reshape(n, 3, n_bins),
            parts[1].reshape(n, num_k, 3, n_bins),
            parts[2],
            band,
            tuple(int(c) for c in class_ids),
        )


def _binary_to_two_class(p: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([1 - p, p], dim=1), torch.cat([1 - y, y], dim=1)


def calibration_statistics(
    probs: torch.Tensor,
    target: torch.Tensor,
    n_bins: int = 15,
    *,
    include_background: bool = True,
    ignore_index: int | None = None,
    mask: torch.Tensor | None = None,
    band: torch.Tensor | None = None,
    prob_tolerance: float = DEFAULT_PROB_TOLERANCE,
) -> CalibrationStatistics:
    """Binned calibration statistics of each image of a batch (see :class:`CalibrationStatistics`).

    Bins are equal-width, ``bin_index(v) = min(floor(v · n_bins), n_bins − 1)`` (see ``calibration_binning.bin_index``).
    A single-channel ``probs`` is a foreground probability ``p`` and is read as the two classes ``(1 − p, p)``
    (its reference ``y`` as ``(1 − y, y)``).

    Args:
        probs: ``(B, C, *spatial)`` probabilities summing to 1 over channels (or one foreground channel).
        target: index map ``(B, 1, *spatial)`` / ``(B, *spatial)`` (``C > 1``) or one-hot/soft ``(B, C, *spatial)``.
        n_bins: number of equal-width bins, ``>= 1``.
        include_background: keep class 0 in the class-wise statistics (the top label always uses all classes).
        ignore_index: label of voxels to exclude (see :func:`~monai_jdt.utils.targets.prepare_target`).
        mask: optional bool voxel mask ``(B, 1, *spatial)``, ``True`` where a voxel counts.
        band: optional bool ``(B, 1, *spatial)`` boundary band; fills :attr:`CalibrationStatistics.band`.
        prob_tolerance: tolerance of the "probabilities in [0, 1] summing to 1" check.

    Raises:
        ShapeError: shapes that do not fit.
        ValueError: ``n_bins < 1``, probabilities out of range or not summing to 1.

    Example:
        >>> probs = torch.tensor([[[[0.75, 0.375]], [[0.25, 0.625]]]])       # (1, 2, 1, 2)
        >>> s = calibration_statistics(probs, torch.tensor([[[[0, 0]]]]), n_bins=2)
        >>> s.top[0].tolist()   # bins [0, .5), [.5, 1]: count, sum of confidences, sum of accuracies
        [[0.0, 2.0], [0.0, 1.375], [0.0, 1.0]]
    """
    n_bins = check_positive_int("n_bins", n_bins)
    check_bool("include_background", include_background)
    probs = as_prediction(probs, "probs")
    prob_tolerance = check_in_range("prob_tolerance", prob_tolerance, 0, 1, high_inclusive=False)
    seg = resolve_target(probs, target, ignore_index=ignore_index, mask=mask, check_values=False)
    band_mask = prepare_mask(band, probs, "band")
    batch = probs.shape[0]
    p, y_dense = probs, seg.dense
    if probs.shape[1] == 1:
        p, y_dense = _binary_to_two_class(probs, cast(torch.Tensor, y_dense))  # C == 1 targets are always dense
    classes = p.shape[1]
    p = p.reshape(batch, classes, -1)
    y_index = None if seg.index is None else seg.index.reshape(batch, 1, -1)
    y_dense = None if y_dense is None else y_dense.reshape(batch, classes, -1)
    valid = None if seg.mask is None else seg.mask.reshape(batch, -1)
    if band_mask is not None:
        band_mask = band_mask.reshape(batch, -1)
        band_mask = band_mask if valid is None else band_mask & valid
    acc = BinAccumulator(batch, classes, n_bins, band_mask is not None, prob_tolerance, p.device)
    step = max(1, chunk_elements() // (batch * classes))
    for s in range(0, p.shape[2], step):
        e = s + step
        acc.add(
            p[:, :, s:e],
            None if y_index is None else y_index[:, :, s:e],
            None if y_dense is None else y_dense[:, :, s:e],
            None if valid is None else valid[:, s:e],
            None if band_mask is None else band_mask[:, s:e],
        )
    top, cls, totals, band_bins = acc.result()
    first = 0 if include_background else 1
    return CalibrationStatistics(top, cls[:, first:].contiguous(), totals, band_bins, tuple(range(first, classes)))
