"""Per-image binned calibration statistics: everything the calibration errors need, in O(classes x bins) memory.

For every image the statistics hold, per equal-width confidence bin, the voxel count and the sums of the
confidence and of the accuracy (top label and class-wise), plus the sums of the Brier score and of the negative
log-likelihood. Summing them over images gives the dataset-level (pooled) statistics exactly, so a whole 3D test
set is reduced batch by batch without keeping any voxel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from monai_jdt.metrics.functional.inputs import (
    DEFAULT_PROB_TOLERANCE,
    as_prediction,
    check_probabilities,
    resolve_target,
)
from monai_jdt.utils.checks import check_bool, check_positive_int
from monai_jdt.utils.errors import ShapeError
from monai_jdt.utils.targets import prepare_mask

__all__ = ["CalibrationStatistics", "bin_index", "calibration_statistics"]

#: about this many (image, class, voxel) elements are processed at once (keeps temporaries in cache).
_CHUNK_ELEMENTS = 1 << 20


def bin_index(values: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Equal-width bin of each value in ``[0, 1]``: ``min(floor(v · n_bins), n_bins − 1)`` as int32.

    Bin ``k`` holds ``[k/n, (k+1)/n)``; ``v = 1`` falls in the last bin and values a tolerance below 0 in the
    first. The product is evaluated in the values' floating dtype, so a value within one rounding error of an
    interior edge may land on either side (as with any floating-point edge list).

    Example:
        >>> bin_index(torch.tensor([0.0, 0.25, 0.5, 0.999, 1.0]), 4).tolist()
        [0, 1, 2, 3, 3]
    """
    return (values * n_bins).to(torch.int32).clamp_(0, n_bins - 1)


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


class _Accumulator:
    """Running float64 sums over voxel chunks; keys beyond the last real bin collect excluded voxels."""

    def __init__(self, batch: int, classes: int, n_bins: int, with_band: bool, device: torch.device) -> None:
        self.n_bins, self.batch, self.classes = n_bins, batch, classes
        f64 = {"dtype": torch.float64, "device": device}
        self.cls = torch.zeros(3, batch * classes * n_bins + 1, **f64)
        self.top = torch.zeros(3, batch * n_bins + 1, **f64)
        self.band = torch.zeros(3, batch * n_bins + 1, **f64) if with_band else None
        self.totals = torch.zeros(batch, 3, **f64)
        i32 = {"dtype": torch.int32, "device": device}
        self.cls_offset = (torch.arange(batch * classes, **i32) * n_bins).reshape(batch, classes, 1)
        self.top_offset = (torch.arange(batch, **i32) * n_bins).reshape(batch, 1)

    def _bins(self, store: torch.Tensor, keys: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor | None) -> None:
        size = store.shape[1]
        flat = keys.reshape(-1)
        store[0] += torch.bincount(flat, minlength=size)
        store[1] += torch.bincount(flat, weights=w1.reshape(-1), minlength=size)
        if w2 is not None:
            store[2] += torch.bincount(flat, weights=w2.reshape(-1), minlength=size)

    def add(
        self,
        p: torch.Tensor,
        y_index: torch.Tensor | None,
        y_dense: torch.Tensor | None,
        valid: torch.Tensor | None,
        band: torch.Tensor | None,
    ) -> None:
        """One chunk: ``p`` (B, C, n), ``y_index`` (B, 1, n) int64 or ``y_dense`` (B, C, n), masks (B, n)."""
        keys = bin_index(p, self.n_bins).add_(self.cls_offset)
        if valid is not None:
            keys = torch.where(valid.unsqueeze(1), keys, self.cls.shape[1] - 1)
        if y_index is not None:
            self._bins(self.cls, keys, p, None)
            self.cls[2] += torch.bincount(keys.gather(1, y_index).reshape(-1), minlength=self.cls.shape[1])
        else:
            self._bins(self.cls, keys, p, y_dense)
        conf, pred = p.max(dim=1)
        if y_index is not None:
            acc = (pred == y_index[:, 0]).to(p.dtype)
        else:
            acc = y_dense.gather(1, pred.unsqueeze(1))[:, 0]
        top_keys = bin_index(conf, self.n_bins).add_(self.top_offset)
        trash = self.top.shape[1] - 1
        self._bins(self.top, top_keys if valid is None else torch.where(valid, top_keys, trash), conf, acc)
        if self.band is not None:
            self._bins(self.band, torch.where(band, top_keys, trash), conf, acc)
        self._scores(p, y_index, y_dense, valid)

    def _scores(
        self, p: torch.Tensor, y_index: torch.Tensor | None, y_dense: torch.Tensor | None, valid: torch.Tensor | None
    ) -> None:
        eps = torch.finfo(p.dtype).eps
        if y_index is not None:
            p_true = p.gather(1, y_index)[:, 0]
            brier = (p * p).sum(1) - 2 * p_true + 1
            nll = -torch.log(p_true.clamp(min=eps))
        else:
            brier = (p - y_dense).square_().sum(1)
            nll = -(y_dense * torch.log(p.clamp(min=eps))).sum(1)
        if valid is not None:
            brier, nll = brier * valid, nll * valid
            self.totals[:, 0] += valid.sum(1)
        else:
            self.totals[:, 0] += p.shape[2]
        self.totals[:, 1] += brier.sum(1, dtype=torch.float64)
        self.totals[:, 2] += nll.sum(1, dtype=torch.float64)

    def result(self, class_ids: tuple[int, ...], keep: slice) -> CalibrationStatistics:
        b, c, nb = self.batch, self.classes, self.n_bins
        cls = self.cls[:, :-1].reshape(3, b, c, nb).permute(1, 2, 0, 3)[:, keep]
        top = self.top[:, :-1].reshape(3, b, nb).permute(1, 0, 2)
        band = None if self.band is None else self.band[:, :-1].reshape(3, b, nb).permute(1, 0, 2)
        return CalibrationStatistics(top.contiguous(), cls.contiguous(), self.totals, band, class_ids)


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

    Bins are equal-width, ``bin_index(v) = min(floor(v · n_bins), n_bins − 1)`` (see :func:`bin_index`).
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
    check_probabilities(probs, "probs", prob_tolerance)
    seg = resolve_target(probs, target, ignore_index=ignore_index, mask=mask)
    band_mask = prepare_mask(band, probs, "band")
    batch = probs.shape[0]
    p, y_index, y_dense = probs, None, seg.dense
    if probs.shape[1] == 1:
        assert y_dense is not None  # C == 1 targets are always dense
        p, y_dense = _binary_to_two_class(probs, y_dense)
    classes = p.shape[1]
    p = p.reshape(batch, classes, -1)
    if seg.index is not None:
        y_index = seg.index.reshape(batch, 1, -1)
    else:
        y_dense = y_dense.reshape(batch, classes, -1)
    valid = None if seg.mask is None else seg.mask.reshape(batch, -1)
    if band_mask is not None:
        band_mask = band_mask.reshape(batch, -1)
        band_mask = band_mask if valid is None else band_mask & valid
    acc = _Accumulator(batch, classes, n_bins, band_mask is not None, p.device)
    step = max(1, _CHUNK_ELEMENTS // (batch * classes))
    for s in range(0, p.shape[2], step):
        e = s + step
        acc.add(
            p[:, :, s:e],
            None if y_index is None else y_index[:, :, s:e],
            None if y_dense is None else y_dense[:, :, s:e],
            None if valid is None else valid[:, s:e],
            None if band_mask is None else band_mask[:, s:e],
        )
    first = 0 if include_background else 1
    return acc.result(tuple(range(first, classes)), slice(first, None))
