"""The single-threaded worker pool behind the fused CPU kernel."""

from __future__ import annotations

import threading

import pytest
import torch

from monai_jdt.losses.functional import _threads


@pytest.mark.parametrize(("n", "step", "parts"), [(10, 3, 2), (10, 3, 5), (7, 10, 2), (96, 8, 3), (1, 1, 4)])
def test_split_range_covers_and_aligns(n, step, parts):
    ranges = _threads.split_range(n, step, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == n and len(ranges) <= parts
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert all(lo % step == 0 and lo < hi for lo, hi in ranges)


def test_parallel_map_runs_single_threaded_workers_and_keeps_the_callers_setting():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = _threads.parallel_map(
            lambda lo, hi: (lo, hi, torch.get_num_threads(), threading.get_ident(), torch.is_grad_enabled()),
            [(0, 5), (5, 9)],
            workers=2,
        )
        assert [(s[0], s[1]) for s in seen] == [(0, 5), (5, 9)]  # results in the order of the ranges
        assert all(s[2] == 1 for s in seen)  # one intra-op thread inside each worker
        assert all(s[3] != threading.get_ident() for s in seen)
        assert not any(s[4] for s in seen)  # workers run without autograd recording
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_parallel_map_propagates_errors():
    def boom(lo: int, hi: int) -> int:
        if lo == 3:
            raise ValueError(f"bad range {lo}-{hi}")
        return lo

    with pytest.raises(ValueError, match="bad range 3-4"):
        _threads.parallel_map(boom, [(0, 3), (3, 4)], workers=2)


def test_worker_count_is_one_off_cpu():
    assert _threads.worker_count(torch.device("meta")) == 1
