"""Deterministic k-fold split of a datalist by blocks of cases, and selection of one fold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from monai_jdt.utils.checks import check_positive_int

__all__ = ["assign_folds", "fold_sizes", "select_fold"]


def fold_sizes(num_cases: int, folds: int) -> list[int]:
    """Sizes of the ``folds`` contiguous blocks for ``num_cases`` cases.

    Every fold holds ``num_cases // folds`` cases and the last fold also takes the remainder, as in the reference
    code of the DML paper (arXiv 2303.16296), so the LiTS (131 cases) and KiTS19 (210 cases) folds reproduce the
    paper's split when the cases are in numeric order.

    Raises:
        ValueError: when ``folds`` is not an integer >= 1 or there are fewer cases than folds.

    Example:
        >>> fold_sizes(131, 5)
        [26, 26, 26, 26, 27]
    """
    folds = check_positive_int("folds", folds)
    num_cases = check_positive_int("num_cases", num_cases, minimum=0)
    if num_cases < folds:
        raise ValueError(f"folds must be <= the number of cases ({num_cases}), got {folds}")
    size = num_cases // folds
    return [size] * (folds - 1) + [num_cases - size * (folds - 1)]


def assign_folds(num_cases: int, folds: int = 5, shuffle_seed: int | None = None) -> list[int]:
    """Fold index of each of ``num_cases`` cases given in their canonical (numeric case id) order.

    With ``shuffle_seed=None`` fold ``k`` is the ``k``-th contiguous block of cases (sizes from :func:`fold_sizes`).
    With a seed, the cases are first permuted by ``numpy.random.default_rng(shuffle_seed).permutation`` and the
    blocks are taken in that permuted order, so the split is reproducible from the seed alone.

    Raises:
        ValueError: bad ``folds`` (see :func:`fold_sizes`) or a negative ``shuffle_seed``.
        TypeError: ``shuffle_seed`` is not an integer.

    Example:
        >>> assign_folds(7, 3)
        [0, 0, 1, 1, 2, 2, 2]
    """
    sizes = fold_sizes(num_cases, folds)
    order = np.arange(num_cases)
    if shuffle_seed is not None:
        seed = check_positive_int("shuffle_seed", shuffle_seed, minimum=0)
        order = np.random.default_rng(seed).permutation(num_cases)
    result = [0] * num_cases
    start = 0
    for fold, size in enumerate(sizes):
        for position in order[start : start + size]:
            result[int(position)] = fold
        start += size
    return result


def select_fold(datalist: Sequence[dict[str, Any]], fold: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split a datalist whose entries carry a ``"fold"`` key into ``(train, val)`` for validation fold ``fold``.

    Raises:
        ValueError: when an entry has no ``"fold"`` key, or ``fold`` is not one of the folds in the datalist.

    Example:
        >>> data = [{"image": "a", "fold": 0}, {"image": "b", "fold": 1}, {"image": "c", "fold": 1}]
        >>> train, val = select_fold(data, 1)
        >>> [d["image"] for d in train], [d["image"] for d in val]
        (['a'], ['b', 'c'])
    """
    fold = check_positive_int("fold", fold, minimum=0)
    missing = [i for i, d in enumerate(datalist) if "fold" not in d]
    if missing:
        raise ValueError(f"datalist entries must carry a 'fold' key, entries {missing[:10]} have none")
    present = sorted({int(d["fold"]) for d in datalist})
    if fold not in present:
        raise ValueError(f"fold must be one of {present}, got {fold}")
    train = [dict(d) for d in datalist if int(d["fold"]) != fold]
    val = [dict(d) for d in datalist if int(d["fold"]) == fold]
    return train, val
