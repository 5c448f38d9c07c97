"""Round-robin wall-clock timing shared by the benchmark scripts (imported as ``from _timing import ...``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch

__all__ = ["medians", "round_robin"]


def _sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def round_robin(
    fns: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    device: str | torch.device = "cpu",
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds of each of ``repeats`` calls of every function, after ``warmup`` untimed rounds.

    The functions run in turn within each round, so a change of the machine's load hits all of them alike.
    On CUDA the device is synchronised before and after each call. ``clock`` is wall-clock time by default
    (``time.process_time`` measures the CPU time of the whole process instead).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = clock()
            fn()
            _sync(device)
            samples[name].append(clock() - start)
    return samples


def medians(samples: Mapping[str, list[float]]) -> dict[str, float]:
    """The median of each list of :func:`round_robin` samples."""
    return {name: statistics.median(values) for name, values in samples.items()}
