"""Fusion of several raters' label maps of one image into one soft (or hard) label.

All functions take the raters stacked as ``(R, *spatial)`` integer label maps with values in ``[0, C)``
(binary raters: ``C = 2``, values 0/1) and return ``(C, *spatial)`` class probabilities:

* ``"mean"``: ``p_c = (1 / R) sum_r [y_r = c]``, the multi-rater soft label of the papers (QUBIQ "uniform";
  Wang et al., arXiv 2303.16296 and 2302.05666).
* ``"weighted"``: ``p_c = sum_r w_r [y_r = c] / sum_r w_r`` with ``w_r`` the agreement of rater ``r`` with the
  others, see :func:`rater_agreement_weights`.
* ``"majority"``: one-hot of ``argmax_c sum_r [y_r = c]``; ties go to the **lowest class index** (for binary
  raters a 50/50 split is background).
* ``"random"``: one-hot of rater ``rater_index`` (the transforms draw it with MONAI's ``Randomizable``).
* ``"staple"``: SimpleITK STAPLE (Warfield et al., IEEE TMI 2004). Binary raters (``C = 2``): the foreground
  probability of ``sitk.STAPLE`` (``foregroundValue=1``), ``p = (1 - P, P)``. Multi-class (``C > 2``):
  SimpleITK's ``MultiLabelSTAPLE`` gives a hard label map and no probabilities, so the output is its one-hot;
  voxels it leaves undecided get the ``"mean"`` vector. Voxels where STAPLE is undefined (NaN, e.g. when no
  rater marks any foreground) also get the ``"mean"`` vector.
"""

from __future__ import annotations

import numpy as np
import torch

from monai_jdt.utils.checks import check_option

__all__ = ["FUSION_METHODS", "fuse_raters", "rater_agreement_weights"]

FUSION_METHODS = ("mean", "weighted", "majority", "random", "staple")


def _count_dtype(num_raters: int) -> torch.dtype:
    return torch.uint8 if num_raters <= 255 else torch.int32


def _class_counts(raters: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, *spatial)`` number of raters voting for each class (an integer dtype), one rater at a time."""
    counts = torch.zeros((num_classes, *raters.shape[1:]), dtype=_count_dtype(raters.shape[0]), device=raters.device)
    if num_classes == 2:  # binary raters hold 0/1: the foreground count is their sum
        for rater in raters:
            counts[1].add_(rater)
        torch.sub(raters.shape[0], counts[1], out=counts[0])
        return counts
    for rater in raters:
        for c in range(num_classes):
            counts[c].add_(rater == c)
    return counts


def _one_hot(index: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.stack([(index == c).to(dtype) for c in range(num_classes)])


def _first_argmax(counts: torch.Tensor) -> torch.Tensor:
    """``argmax`` over dim 0 that keeps the lowest index on ties (a strict ``>`` scan over the classes)."""
    best = counts[0].clone()
    arg = torch.zeros(counts.shape[1:], dtype=torch.int64, device=counts.device)
    for c in range(1, counts.shape[0]):
        better = counts[c] > best
        arg.masked_fill_(better, c)
        torch.maximum(best, counts[c], out=best)
    return arg


def rater_agreement_weights(raters: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Weight of each rater: its mean foreground Dice against the leave-one-out mean of the other raters.

    For rater ``r`` and foreground class ``c >= 1``, with ``a = [y_r = c]`` and ``m = mean_{s != r} [y_s = c]``
    (soft)::

        D_rc = 2 sum(a * m) / (sum(a) + sum(m))

    ``w_r`` is the mean of ``D_rc`` over the foreground classes with ``sum(a) + sum(m) > 0``, or 1 when there is
    none (nobody marks any foreground: full agreement). A single rater gets weight 1. With two raters both get
    the same weight (their Dice is symmetric), so ``"weighted"`` equals ``"mean"``. If every weight is 0 (the
    raters never overlap), all weights become 1 (``"mean"``).

    Args:
        raters: ``(R, *spatial)`` integer labels in ``[0, num_classes)``.
        num_classes: ``C >= 2``.

    Returns:
        ``(R,)`` float64 weights in ``[0, 1]`` (not normalised).

    Example:
        >>> r = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]])
        >>> rater_agreement_weights(r, 2)
        tensor([0.5000, 0.5000, 0.0000], dtype=torch.float64)
    """
    n = raters.shape[0]
    if n == 1:
        return torch.ones(1, dtype=torch.float64)
    total = torch.zeros(n, dtype=torch.float64)
    used = torch.zeros(n, dtype=torch.float64)
    for c in range(1, num_classes):
        votes = [rater == c for rater in raters]
        a = [int(torch.count_nonzero(v)) for v in votes]  # sum(a) per rater
        overlap = [0] * n  # (R - 1) * sum(a * m) = sum over the other raters of the intersection sizes
        for r in range(n):
            for s in range(r + 1, n):
                both = int(torch.count_nonzero(votes[r] & votes[s]))
                overlap[r] += both
                overlap[s] += both
        for r in range(n):
            denom = (n - 1) * a[r] + (sum(a) - a[r])  # (R - 1) * (sum(a) + sum(m))
            if denom > 0:
                total[r] += 2 * overlap[r] / denom
                used[r] += 1
    weights = torch.where(used > 0, total / used.clamp_min(1), 1.0)
    return weights if bool((weights > 0).any()) else torch.ones(n, dtype=torch.float64)


def _staple(raters: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    import SimpleITK as sitk

    arrays = raters.cpu().numpy().astype(np.uint8 if num_classes < 255 else np.uint16)
    images = [sitk.GetImageFromArray(a) for a in arrays]
    mean = fuse_raters(raters, "mean", num_classes, dtype=dtype)
    if num_classes == 2:
        fg = torch.from_numpy(sitk.GetArrayFromImage(sitk.STAPLE(images, 1.0, 1.0))).to(raters.device, dtype)
        out = torch.stack([1 - fg, fg])
        undefined = torch.isnan(fg)
    else:
        hard = sitk.GetArrayFromImage(sitk.MultiLabelSTAPLE(images, num_classes))
        hard_t = torch.from_numpy(hard.astype(np.int64)).to(raters.device)
        out = _one_hot(hard_t, num_classes, dtype)
        undefined = hard_t >= num_classes
    return torch.where(undefined.unsqueeze(0), mean, out)


def fuse_raters(
    raters: torch.Tensor,
    method: str = "mean",
    num_classes: int = 2,
    rater_index: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Fuse ``(R, *spatial)`` rater label maps into ``(C, *spatial)`` class probabilities (see module docstring).

    The raters must already be validated (integer labels in ``[0, num_classes)``); the transforms
    :class:`~monai_jdt.transforms.FuseRaters` / :class:`~monai_jdt.transforms.FuseRatersd` do that and name the
    offending rater.

    Args:
        raters: ``(R, *spatial)`` integer label maps, ``R >= 1``.
        method: one of ``"mean"``, ``"weighted"``, ``"majority"``, ``"random"``, ``"staple"``.
        num_classes: ``C >= 2`` (2 for binary raters).
        rater_index: the rater ``"random"`` returns (required by it, ignored otherwise).
        dtype: floating dtype of the output.

    Returns:
        ``(C, *spatial)`` probabilities summing to 1 at every voxel.

    Raises:
        ValueError: an unknown method, ``R < 1``, a missing or out-of-range ``rater_index``.

    Example:
        >>> r = torch.tensor([[0, 1, 1], [0, 0, 1], [1, 0, 1]])
        >>> fuse_raters(r, "mean")[1]
        tensor([0.3333, 0.3333, 1.0000])
        >>> fuse_raters(r, "majority")[1]
        tensor([0., 0., 1.])
    """
    method = check_option("method", method, FUSION_METHODS)
    n = raters.shape[0] if raters.ndim > 0 else 0
    if n < 1:
        raise ValueError(f"fusion needs at least 1 rater, got {n} (raters of shape {tuple(raters.shape)})")
    if method == "random":
        if rater_index is None or not 0 <= rater_index < n:
            raise ValueError(f"rater_index must be in [0, {n}) for method 'random', got {rater_index!r}")
        return _one_hot(raters[rater_index], num_classes, dtype)
    if method == "staple":
        return _staple(raters, num_classes, dtype)
    if method == "majority":
        return _one_hot(_first_argmax(_class_counts(raters, num_classes)), num_classes, dtype)
    if method == "mean":
        return _class_counts(raters, num_classes).to(dtype) / n
    weights = rater_agreement_weights(raters, num_classes)
    weights = (weights / weights.sum()).tolist()
    out = torch.zeros((num_classes, *raters.shape[1:]), dtype=dtype, device=raters.device)
    for w, rater in zip(weights, raters):
        for c in range(num_classes):
            out[c].add_(rater == c, alpha=w)
    return out
