"""The bundles' dataset: MONAI ``CacheDataset`` (default) or ``PersistentDataset``, picked by one override key."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from monai.data import CacheDataset, Dataset, PersistentDataset

from monai_jdt.utils.checks import check_in_range, check_option, check_positive_int

__all__ = ["DATASET_TYPES", "make_dataset"]

#: ``--dataset_type`` choices.
DATASET_TYPES = ("cache", "persistent", "plain")


def make_dataset(
    data: Sequence[dict[str, Any]],
    transform: Callable,
    dataset_type: str = "cache",
    *,
    cache_rate: float = 1.0,
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """A MONAI dataset over ``data``.

    * ``"cache"``: :class:`monai.data.CacheDataset` keeps the result of the deterministic transforms of
      ``cache_rate`` of the cases in memory (``num_workers`` threads fill it).
    * ``"persistent"``: :class:`monai.data.PersistentDataset` stores them as files under ``cache_dir`` (for data
      sets larger than the memory; the cache is reused by later runs: delete it when the transforms change).
    * ``"plain"``: :class:`monai.data.Dataset`, no caching.

    Raises:
        ValueError: an unknown ``dataset_type``, a bad ``cache_rate``, or ``"persistent"`` without ``cache_dir``.

    Example:
        >>> type(make_dataset([{"x": 1}], lambda d: d, "plain")).__name__
        'Dataset'
    """
    dataset_type = check_option("dataset_type", dataset_type, DATASET_TYPES)
    if dataset_type == "cache":
        rate = check_in_range("cache_rate", cache_rate, 0, 1)
        workers = check_positive_int("num_workers", num_workers, minimum=0)
        return CacheDataset(data, transform, cache_rate=rate, num_workers=workers or None, progress=False)
    if dataset_type == "persistent":
        if not cache_dir:
            raise ValueError("cache_dir must name a folder with dataset_type='persistent', got None")
        return PersistentDataset(data, transform, cache_dir=cache_dir)
    return Dataset(data, transform)
