"""Benchmark of the calibration metric against MONAI's ``CalibrationErrorMetric`` (issue 5).

Speed: all calibration figures of ``monai_jdt.metrics.CalibrationMetric`` (top-label ECE and MCE, class-wise SCE,
Brier, NLL; optionally boundary ECE) for one batch of ``(2, 3, 128, 128, 128)`` probabilities on CPU, against
``monai.metrics.CalibrationErrorMetric`` (one figure: the class-wise ECE per image) on the same batch in the same
run. The cases are interleaved and each is timed ``--runs`` times; the table shows the median and the ratio to
MONAI.

Memory: a child process accumulates ``--volumes`` batches of that shape into one metric (ours, then MONAI's in
another child) and reports the bytes of the metric's stored state, its resident memory after the first and the
last batch (``/proc/self/statm``), after glibc's ``malloc_trim`` has returned the freed heap (the live data), and
its peak (``ru_maxrss``, which includes the input and temporaries of one batch).

Usage::

    python scripts/benchmark_metrics.py [--runs 7] [--shape 2 3 128 128 128] [--volumes 50] [--skip-memory]
                                        [--threads N]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable

import torch
from _timing import round_robin
from monai.metrics import CalibrationErrorMetric

from monai_jdt.metrics import CalibrationMetric


def _batch(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    probs = (torch.randn(shape, generator=gen) * 2).softmax(1)
    labels = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=gen)
    return probs, labels


def _onehot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels[:, 0], classes).movedim(-1, 1).float()


def _current_rss_mib() -> float:
    """Resident memory now (Linux ``/proc/self/statm``), in MiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


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


def _speed_table(shape: tuple[int, ...], runs: int) -> None:
    probs, labels = _batch(shape, 0)
    cases = _cases(probs, labels, _onehot(labels, shape[1]))
    times = round_robin({name: fn for name, (_, fn) in cases.items()}, runs)
    peer = statistics.median(times["MONAI CalibrationErrorMetric (one-hot target)"])
    print(f"\n## Calibration figures for {tuple(shape)} float32 probabilities, 15 bins, CPU")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} cores, {runs} runs, load average {load}\n")
    print(f"| {'case':<52} | figures | median s | min s  | ratio vs MONAI |")
    print(f"|{'-' * 54}|---------|----------|--------|----------------|")
    for name, (figures, _) in cases.items():
        med = statistics.median(times[name])
        print(f"| {name:<52} | {figures:>7} | {med:8.3f} | {min(times[name]):6.3f} | {med / peer:13.2f}x |")


def _release_free_heap() -> bool:
    """Return freed heap pages to the OS (glibc ``malloc_trim``) so that resident memory shows live data only."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _memory_child(which: str, shape: tuple[int, ...], volumes: int) -> None:
    if which == "ours":
        metric = CalibrationMetric(n_bins=15, boundary_kernel_size=3)
    else:
        metric = CalibrationErrorMetric(num_bins=15)
    current = []
    for i in range(volumes):
        probs, labels = _batch(shape, i)
        metric(probs, labels if which == "ours" else _onehot(labels, shape[1]))
        del probs, labels
        current.append(_current_rss_mib())
    metric.aggregate()
    state = metric.get_buffer()
    gc.collect()
    trimmed = _release_free_heap()
    info = {
        "rss_first_mib": current[0],
        "rss_last_mib": current[-1],
        "rss_trimmed_mib": _current_rss_mib() if trimmed else None,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "state_bytes": int(state.numel() * state.element_size()),
        "state_shape": list(state.shape),
    }
    print(json.dumps(info))


def _memory_run(which: str, shape: tuple[int, ...], volumes: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--memory-child", which, "--shape", *map(str, shape), "--volumes", str(volumes)]
    cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def _memory_table(shape: tuple[int, ...], volumes: int) -> None:
    threads = torch.get_num_threads()
    runs = {
        "monai_jdt CalibrationMetric (5 figures + BECE)": _memory_run("ours", shape, volumes, threads),
        "MONAI CalibrationErrorMetric (1 figure)": _memory_run("monai", shape, volumes, threads),
    }
    voxels = 1
    for s in shape[2:]:
        voxels *= s
    naive = volumes * shape[0] * shape[1] * voxels * 4
    print(f"\n## Accumulating {volumes} batches of {tuple(shape)} in one metric (each in a fresh process)\n")
    print("RSS = resident memory (`/proc/self/statm`); 'after trim' = after glibc `malloc_trim(0)` returned the freed")
    print("heap to the OS, i.e. the live data; peak = `ru_maxrss` (includes one batch's input and temporaries).")
    print(f"Storing the probabilities of all {volumes} batches instead would take {naive / 2**30:.2f} GiB.\n")
    print("| metric | stored state | RSS after batch 1 | RSS after last batch | after trim | peak |")
    print("|---|---|---|---|---|---|")
    for name, info in runs.items():
        trimmed = "n/a" if info["rss_trimmed_mib"] is None else f"{info['rss_trimmed_mib']:.0f} MiB"
        print(
            f"| {name} | {info['state_bytes']} B {tuple(info['state_shape'])} | {info['rss_first_mib']:.0f} MiB | "
            f"{info['rss_last_mib']:.0f} MiB | {trimmed} | {info['peak_rss_mib']:.0f} MiB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--shape", type=int, nargs="+", default=[2, 3, 128, 128, 128])
    parser.add_argument("--volumes", type=int, default=50)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--memory-child", choices=("ours", "monai"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(args.shape)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.memory_child is not None:
        _memory_child(args.memory_child, shape, args.volumes)
        return
    _speed_table(shape, args.runs)
    if not args.skip_memory:
        _memory_table(shape, args.volumes)


if __name__ == "__main__":
    main()
