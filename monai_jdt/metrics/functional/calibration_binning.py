"""Chunk-wise binning of probabilities for the calibration statistics (equal-width bins, bincount sums).

Voxels are processed in chunks of about two million (image, class, voxel) elements per intra-op thread, so that
temporaries stay bounded whatever the volume size and each parallel op has enough work. Each chunk is validated
(probabilities and target values), and a one-hot target takes the same fast path as an index map.
"""

from __future__ import annotations

import torch

from monai_jdt.metrics.functional.inputs import check_probabilities
from monai_jdt.utils.targets import check_target_values

__all__ = ["CHUNK_ELEMENTS", "BinAccumulator", "bin_index", "chunk_elements", "hard_index", "top_label"]

#: (image, class, voxel) elements processed at once per intra-op thread (bounded temporaries, few parallel regions).
CHUNK_ELEMENTS = 1 << 21


def chunk_elements() -> int:
    """Elements per chunk: :data:`CHUNK_ELEMENTS` per intra-op thread, so that every parallel op has enough work."""
    return CHUNK_ELEMENTS * max(1, torch.get_num_threads())


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


def top_label(
    p: torch.Tensor, y_dense: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Top label of ``(B, C, n)`` probabilities: ``(max_c p_c, argmax_c p_c, y_{argmax})``.

    Ties go to the lowest class, as ``torch.argmax``. The third item is the reference probability of the
    predicted class when ``y_dense`` (``(B, C, n)``) is given, else ``None``. Computed as a running maximum over
    the channels with arithmetic selects: on CPU several times faster than ``max(dim=1)`` with indices over the
    strided channel dim.

    Example:
        >>> conf, pred, _ = top_label(torch.tensor([[[0.2, 0.5], [0.5, 0.3], [0.3, 0.2]]]))
        >>> conf.tolist(), pred.tolist()
        ([[0.5, 0.5]], [[1, 0]])
    """
    conf = p[:, 0]
    pred = torch.zeros(conf.shape, dtype=torch.int32, device=p.device)
    acc = None if y_dense is None else y_dense[:, 0]
    for c in range(1, p.shape[1]):
        pc = p[:, c]
        better = pc > conf
        conf = torch.maximum(conf, pc)
        pred += better.to(torch.int32) * (c - pred)
        if acc is not None:
            acc = acc + better.to(acc.dtype) * (y_dense[:, c] - acc)
    return conf, pred, acc


def _route(keys: torch.Tensor, keep: torch.Tensor | None, trash: int) -> torch.Tensor:
    """``keys`` where ``keep``, else the ``trash`` key (an arithmetic select: faster than ``torch.where`` on CPU)."""
    if keep is None:
        return keys
    return keys + (~keep).to(keys.dtype) * (trash - keys)


def hard_index(y_dense: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor | None:
    """``(B, 1, n)`` class indices of a ``(B, C, n)`` target that is one-hot on every counted voxel, else ``None``.

    A voxel is one-hot when its channels sum to 1 and their maximum is 1 (target values are already known to be in
    ``[0, 1]``), i.e. up to float rounding. One-hot targets (e.g. from MONAI's ``AsDiscrete(to_onehot=C)``) then
    take the index path; the statistics are the same.

    Example:
        >>> hard_index(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), None).tolist()
        [[[0, 1]]]
        >>> hard_index(torch.tensor([[[0.9, 0.0], [0.1, 1.0]]]), None) is None
        True
    """
    total = y_dense[:, 0]
    top = y_dense[:, 0]
    index = torch.zeros_like(total)
    for c in range(1, y_dense.shape[1]):
        yc = y_dense[:, c]
        total = total + yc
        top = torch.maximum(top, yc)
        index += c * yc
    ok = (total == 1) & (top == 1)
    if valid is not None:
        ok |= ~valid
    if not bool(ok.all()):
        return None
    return index.to(torch.int64).clamp_(0, y_dense.shape[1] - 1).unsqueeze(1)


def _unsqueeze(mask: torch.Tensor | None) -> torch.Tensor | None:
    return None if mask is None else mask.unsqueeze(1)


class BinAccumulator:
    """Running float64 per-bin sums of a batch, fed chunk by chunk with :meth:`add`.

    Keys past the last real bin collect the excluded voxels (masked, or outside the band) and are dropped.

    Args:
        batch, classes, n_bins: sizes (``classes`` after a single channel was made two classes).
        with_band: also collect the top-label bins of the boundary band.
        prob_tolerance: tolerance of the per-chunk probability check.
        device: device of the sums.
    """

    def __init__(
        self, batch: int, classes: int, n_bins: int, with_band: bool, prob_tolerance: float, device: torch.device
    ) -> None:
        self.n_bins, self.batch, self.classes, self.prob_tolerance = n_bins, batch, classes, prob_tolerance
        f64 = {"dtype": torch.float64, "device": device}
        self.cls = torch.zeros(3, batch * classes * n_bins + 1, **f64)
        self.top = torch.zeros(3, batch * n_bins + 1, **f64)
        self.band = torch.zeros(3, batch * n_bins + 1, **f64) if with_band else None
        self.totals = torch.zeros(batch, 3, **f64)
        i32 = {"dtype": torch.int32, "device": device}
        self.cls_offset = (torch.arange(batch * classes, **i32) * n_bins).reshape(batch, classes, 1)
        self.top_offset = (torch.arange(batch, **i32) * n_bins).reshape(batch, 1)

    @staticmethod
    def _bins(store: torch.Tensor, keys: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor | None) -> None:
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
        """One chunk: ``p`` (B, C, n), ``y_index`` (B, 1, n) int64 or ``y_dense`` (B, C, n), masks (B, n).

        Raises:
            ValueError: invalid probabilities or target values in this chunk.
        """
        check_probabilities(p, "probs", self.prob_tolerance)
        if y_dense is not None:
            check_target_values(y_dense)
            y_index = hard_index(y_dense, valid)
            y_dense = None if y_index is not None else y_dense
        keys = _route(bin_index(p, self.n_bins).add_(self.cls_offset), _unsqueeze(valid), self.cls.shape[1] - 1)
        if y_index is not None:
            self._bins(self.cls, keys, p, None)
            self.cls[2] += torch.bincount(keys.gather(1, y_index).reshape(-1), minlength=self.cls.shape[1])
        else:
            self._bins(self.cls, keys, p, y_dense)
        conf, pred, acc = top_label(p, y_dense)
        if y_index is not None:
            acc = (pred == y_index[:, 0]).to(p.dtype)
        top_keys = bin_index(conf, self.n_bins).add_(self.top_offset)
        trash = self.top.shape[1] - 1
        self._bins(self.top, _route(top_keys, valid, trash), conf, acc)
        if self.band is not None:
            self._bins(self.band, _route(top_keys, band, trash), conf, acc)
        self._scores(p, y_index, y_dense, valid)

    def _scores(
        self, p: torch.Tensor, y_index: torch.Tensor | None, y_dense: torch.Tensor | None, valid: torch.Tensor | None
    ) -> None:
        """Brier ``Σ_c (p_c − y_c)²`` and NLL ``−Σ_c y_c log p_c`` summed over the counted voxels of each image.

        For index targets ``Σ_c (p_c − y_c)² = Σ_c p_c² − 2 p_y + 1``.
        """
        eps = torch.finfo(p.dtype).eps
        if y_index is not None:
            p_true = p.gather(1, y_index)[:, 0]
            log_true = torch.log(p_true.clamp(min=eps))
            if valid is None:
                n = p.shape[2]
                brier = p.square().sum(dim=(1, 2), dtype=torch.float64) - 2 * p_true.sum(1, dtype=torch.float64) + n
                self._add_totals(n, brier, -log_true.sum(1, dtype=torch.float64))
                return
            brier_v = p.square().sum(1) - 2 * p_true + 1
            nll_v = -log_true
        else:
            brier_v = (p - y_dense).square_().sum(1)
            nll_v = -(y_dense * torch.log(p.clamp(min=eps))).sum(1)
        if valid is None:
            self._add_totals(p.shape[2], brier_v.sum(1, dtype=torch.float64), nll_v.sum(1, dtype=torch.float64))
            return
        count = valid.sum(1)
        self._add_totals(
            count, (brier_v * valid).sum(1, dtype=torch.float64), (nll_v * valid).sum(1, dtype=torch.float64)
        )

    def _add_totals(self, count: int | torch.Tensor, brier: torch.Tensor, nll: torch.Tensor) -> None:
        self.totals[:, 0] += count
        self.totals[:, 1] += brier
        self.totals[:, 2] += nll

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(top (B, 3, n_bins), classwise (B, C, 3, n_bins), totals (B, 3), band (B, 3, n_bins) | None)``."""
        b, c, nb = self.batch, self.classes, self.n_bins
        cls = self.cls[:, :-1].reshape(3, b, c, nb).permute(1, 2, 0, 3).contiguous()
        top = self.top[:, :-1].reshape(3, b, nb).permute(1, 0, 2).contiguous()
        band = None if self.band is None else self.band[:, :-1].reshape(3, b, nb).permute(1, 0, 2).contiguous()
        return top, cls, self.totals, band
