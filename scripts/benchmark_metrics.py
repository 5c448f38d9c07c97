"""Benchmark of the calibration metric against MONAI's ``CalibrationErrorMetric`` (issue 5).

Speed: all calibration figures of ``monai_jdt.metrics.CalibrationMetric`` (top-label ECE and MCE, class-wise SCE,
Brier, NLL; optionally boundary ECE) for one batch of ``(2, 3, 128, 128, 128)`` probabilities on CPU, against
``monai.metrics.CalibrationErrorMetric`` (one figure: the class-wise ECE per image) on the same batch in the same
run. The cases are interleaved and each is timed ``--runs`` times; the table shows the median and the ratio to
MONAI.

Memory: a child process accumulates ``--volumes`` batches of that shape into one metric and reports the growth of
its peak resident memory (``ru_maxrss``) from after the first batch to after the last one, and the bytes of the
metric's stored state.

Usage::

    python scripts/benchmark_metrics.py [--runs 7] [--shape 2 3 128 128 128] [--volumes 50] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from monai.metrics import CalibrationErrorMetric

from monai_jdt.metrics import CalibrationMetric


def _batch(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=gen) * 2
    probs = logits.softmax(1)
    labels = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=gen)
    onehot = torch.nn.functional.one_hot(labels[:, 0], shape[1]).movedim(-1, 1).float()
    return probs, labels, onehot


def _cases(probs: torch.Tensor, labels: torch.Tensor, onehot: torch.Tensor) -> dict[str, tuple[int, Callable]]:
    """name -> (number of figures, callable that runs one full pass and aggregates)."""

    def monai_ece() -> object:
        metric = CalibrationErrorMetric(num_bins=15, include_background=True)
        metric(probs, onehot)
        return metric.aggregate()

    def ours(target: torch.Tensor, **kwargs: object) -> Callable:
        def run() -> object:
            metric = CalibrationMetric(n_bins=15, **kwargs)
            metric(probs, target)
            return metric.aggregate(), metric.aggregate(level="image")

        return run

    return {
        "MONAI CalibrationErrorMetric (one-hot target)": (1, monai_ece),
        "monai_jdt CalibrationMetric (index target)": (5, ours(labels)),
        "monai_jdt CalibrationMetric (one-hot target)": (5, ours(onehot)),
        "monai_jdt CalibrationMetric + BECE (index, kernel 3)": (6, ours(labels, boundary_kernel_size=3)),
    }


def _time(cases: dict[str, tuple[int, Callable]], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _, fn in cases.values():  # warm-up
        fn()
    for _ in range(runs):
        for name, (_, fn) in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def _speed_table(shape: tuple[int, ...], runs: int) -> None:
    probs, labels, onehot = _batch(shape, 0)
    cases = _cases(probs, labels, onehot)
    times = _time(cases, runs)
    peer = statistics.median(times["MONAI CalibrationErrorMetric (one-hot target)"])
    print(f"\n## Calibration figures for {tuple(shape)} float32 probabilities, 15 bins, CPU")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, {runs} runs\n")
    print(f"| {'case':<52} | figures | median s | min s  | ratio vs MONAI |")
    print(f"|{'-' * 54}|---------|----------|--------|----------------|")
    for name, (figures, _) in cases.items():
        med = statistics.median(times[name])
        print(f"| {name:<52} | {figures:>7} | {med:8.3f} | {min(times[name]):6.3f} | {med / peer:13.2f}x |")


def _memory_child(shape: tuple[int, ...], volumes: int) -> None:
    metric = CalibrationMetric(n_bins=15, boundary_kernel_size=3)
    rss = []
    for i in range(volumes):
        probs, labels, _ = _batch(shape, i)
        metric(probs, labels)
        del probs, labels
        rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
    result = metric.aggregate()
    state = metric.get_buffer()
    print(
        json.dumps(
            {
                "rss_after_first_kib": rss[0],
                "rss_after_last_kib": rss[-1],
                "state_bytes": int(state.numel() * state.element_size()),
                "state_shape": list(state.shape),
                "images": int(state.shape[0]),
                "ece": result["ece"],
            }
        )
    )


def _memory_table(shape: tuple[int, ...], volumes: int) -> None:
    cmd = [sys.executable, __file__, "--memory-child", "--shape", *map(str, shape), "--volumes", str(volumes)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    info = json.loads(out)
    voxels = 1
    for s in shape[2:]:
        voxels *= s
    naive = volumes * shape[0] * shape[1] * voxels * 4
    growth = info["rss_after_last_kib"] - info["rss_after_first_kib"]
    print(f"\n## Accumulating {volumes} batches of {tuple(shape)} (all figures + BECE) in one CalibrationMetric\n")
    print("| quantity | value |")
    print("|---|---|")
    print(f"| images accumulated | {info['images']} |")
    print(f"| peak RSS after the first batch | {info['rss_after_first_kib'] / 1024:.1f} MiB |")
    print(f"| peak RSS after the last batch | {info['rss_after_last_kib'] / 1024:.1f} MiB |")
    print(f"| peak RSS growth over {volumes - 1} more batches | {growth / 1024:.1f} MiB |")
    print(f"| stored state (per-image bins) | {info['state_bytes']} bytes, shape {tuple(info['state_shape'])} |")
    print(f"| storing the probabilities instead | {naive / 2**30:.2f} GiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--shape", type=int, nargs="+", default=[2, 3, 128, 128, 128])
    parser.add_argument("--volumes", type=int, default=50)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(args.shape)
    if args.memory_child:
        _memory_child(shape, args.volumes)
        return
    _speed_table(shape, args.runs)
    if not args.skip_memory:
        _memory_table(shape, args.volumes)


if __name__ == "__main__":
    main()
