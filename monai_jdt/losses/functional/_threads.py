"""A small pool of single-threaded torch workers for the block loops of the fused CPU kernels.

Why: a block loop made of torch operations that each open an OpenMP parallel region pays one thread barrier per
operation. When another process competes for the cores, a descheduled OpenMP thread stalls every barrier and
hundreds of small operations collapse (seconds instead of milliseconds). Here each worker thread runs its own
contiguous range of blocks with intra-op parallelism set to 1 *for that thread only* (OpenMP's thread count is a
per-thread setting), so the operations run inline, the only synchronisation is the final join, and the workers
still use all cores on an idle machine. Torch releases the GIL inside each operation.

The pool is used only where ATen's parallel backend is OpenMP (the standard CPU builds), where that setting is
per thread; elsewhere, and on GPUs, the loop runs in the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

import torch

__all__ = ["parallel_map", "split_range", "worker_count"]

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


@lru_cache(maxsize=1)
def _openmp_backend() -> bool:
    return "ATen parallel backend: OpenMP" in torch.__config__.parallel_info()


def worker_count(device: torch.device) -> int:
    """How many workers the block loop of a CPU tensor should use (1: run in the calling thread)."""
    if device.type != "cpu" or not _openmp_backend():
        return 1
    return max(1, torch.get_num_threads())


def _single_threaded() -> None:
    # torch initialises a thread's intra-op thread count lazily (from the process-wide default) on first use:
    # trigger that first, then pin this worker to one thread.
    torch.get_num_threads()
    torch.set_num_threads(1)


def _make_pool(size: int) -> ThreadPoolExecutor:
    """Start ``size`` workers, each with one intra-op thread, and restore the caller's setting afterwards."""
    caller_threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(max_workers=size, initializer=_single_threaded)
    barrier = threading.Barrier(size)
    for future in [pool.submit(barrier.wait) for _ in range(size)]:  # every worker starts (and initialises) now
        future.result()
    # torch.set_num_threads(1) in a worker sets that thread's OpenMP/MKL count and also torch's process-wide
    # default for threads started later; setting the caller's own value again restores that default.
    torch.set_num_threads(caller_threads)
    return pool


def _get_pool(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < size:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool, _pool_size = _make_pool(size), size
        return _pool


def _forget_pool_after_fork() -> None:  # worker threads do not survive fork()
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def split_range(n: int, step: int, parts: int) -> list[tuple[int, int]]:
    """Split ``[0, n)`` into at most ``parts`` contiguous ranges whose starts are multiples of ``step``."""
    blocks = -(-n // step)
    per = -(-blocks // max(1, parts))
    return [(i * per * step, min(n, (i + 1) * per * step)) for i in range(parts) if i * per * step < n]


def _no_grad_call(fn: Callable[[int, int], T], lo: int, hi: int) -> T:
    with torch.no_grad():  # grad mode is thread-local: the workers run the inside of an autograd.Function
        return fn(lo, hi)


def parallel_map(fn: Callable[[int, int], T], ranges: Sequence[tuple[int, int]], workers: int) -> list[T]:
    """``[fn(lo, hi) for lo, hi in ranges]``, on the worker pool when ``workers > 1``."""
    if workers <= 1 or len(ranges) <= 1:
        return [fn(lo, hi) for lo, hi in ranges]
    pool = _get_pool(workers)
    futures = [pool.submit(_no_grad_call, fn, lo, hi) for lo, hi in ranges]
    return [future.result() for future in futures]
