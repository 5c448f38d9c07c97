"""Run a function on several CPU (gloo) ranks from a test, with a deadline and a deadlock-free exit."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["end_rank", "spawn_ranks"]


def spawn_ranks(fn: Callable[..., None], args: tuple[Any, ...], nprocs: int = 2, timeout: float = 300.0) -> None:
    """``torch.multiprocessing.spawn`` with a deadline: a hung rank fails the test instead of hanging CI."""
    context = mp.start_processes(fn, args=args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"{nprocs} gloo ranks did not finish within {timeout:.0f} s")


def end_rank() -> None:
    """Leave a spawned rank without running object destructors.

    torch's gloo teardown can deadlock when a DDP ``Reducer`` or a finished all-reduce is freed after
    ``destroy_process_group``: ``~ProcessGroupGloo`` joins its worker thread while holding the GIL, and that
    thread waits for the GIL to free a Python object (seen with torch 2.13). Results must be saved before this.
    """
    if dist.is_initialized():
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
