#!/usr/bin/env python
"""Speed, memory and float32 accuracy of DiceSemimetricLoss against MONAI's soft-label DiceLoss.

Forward + backward of DML on a ``(2, 3, 96, 96, 96)`` float32 volume with ``softmax=True`` for (a) soft
targets and (b) index-map targets (MONAI with ``to_onehot_y=True``), next to a floor row (softmax and one fused
reduction, forward + backward); (c) the same with ``sigmoid=True``. The DML rows run the native CPU kernel where it
is built, and again with it switched off (``MONAI_JDT_NATIVE=0``: the fused kernel made of torch operations).

Method:
  * time: the configurations run round-robin in one process (so background load hits all of them alike); each
    entry is the median of ``--repeats`` forward + backward passes after ``--warmup`` passes; ratios divide by
    MONAI's median for the same target kind, measured in the same run.
  * peak extra memory: every configuration runs in a fresh subprocess, after the inputs exist and after a small
    warm-up call (so lazy library initialisation is not counted); it includes the input's gradient. On CPU it is
    the peak resident set size during one forward + backward minus the resident set size before it: the peak
    (``VmHWM``) is reset through ``/proc/self/clear_refs`` just before the pass, and the subprocess runs with
    ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc returns every freed large buffer to the OS (otherwise freed
    heap pages could be reused without showing up). Without ``/proc`` (not Linux) it falls back to the growth of
    ``resource.getrusage(RUSAGE_SELF).ru_maxrss``. On CUDA it is ``torch.cuda.max_memory_allocated()`` minus
    the memory allocated before the pass.
  * accuracy: ``|loss_float32 - loss_float64|`` where ``loss_float64`` is MONAI's loss on the float64 inputs.

Usage::

    python scripts/benchmark_losses.py                 # CPU, all threads torch uses by default
    python scripts/benchmark_losses.py --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from unittest import mock

import torch
from _timing import medians, round_robin

CONFIGS = (
    "floor",
    "monai_soft",
    "dml_soft",
    "dml_soft_torch",
    "dml_soft_generic",
    "monai_index",
    "dml_index",
    "dml_index_torch",
    "dml_index_generic",
    "monai_sigmoid",
    "dml_sigmoid",
    "dml_sigmoid_torch",
)
PEER = {
    "floor": "monai_soft",
    "dml_soft": "monai_soft",
    "dml_soft_torch": "monai_soft",
    "dml_soft_generic": "monai_soft",
    "dml_index": "monai_index",
    "dml_index_torch": "monai_index",
    "dml_index_generic": "monai_index",
    "dml_sigmoid": "monai_sigmoid",
    "dml_sigmoid_torch": "monai_sigmoid",
}
LABELS = {
    "floor": "floor: softmax + one fused reduction",
    "monai_soft": "(a) MONAI DiceLoss soft_label, soft target",
    "dml_soft": "(a) DiceSemimetricLoss, soft target",
    "dml_soft_torch": "(a) the same, torch kernel (MONAI_JDT_NATIVE=0)",
    "dml_soft_generic": "(a) DiceSemimetricLoss fused=False",
    "monai_index": "(b) MONAI DiceLoss soft_label, to_onehot_y",
    "dml_index": "(b) DiceSemimetricLoss, index target",
    "dml_index_torch": "(b) the same, torch kernel (MONAI_JDT_NATIVE=0)",
    "dml_index_generic": "(b) DiceSemimetricLoss fused=False",
    "monai_sigmoid": "(c) MONAI DiceLoss soft_label, sigmoid",
    "dml_sigmoid": "(c) DiceSemimetricLoss, sigmoid, soft target",
    "dml_sigmoid_torch": "(c) the same, torch kernel (MONAI_JDT_NATIVE=0)",
}


def make_inputs(shape: tuple[int, ...], device: str, dtype: torch.dtype = torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64)
    soft = torch.softmax(2 * torch.randn(*shape, generator=g, dtype=torch.float64), 1)
    index = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=g)
    return logits.to(device, dtype), soft.to(device, dtype), index.to(device)


def make_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from monai.losses import DiceLoss

    from monai_jdt.losses import DiceSemimetricLoss

    if name == "floor":
        return lambda x, _: torch.softmax(x, 1).sum(dim=tuple(range(2, x.ndim))).square().sum()
    act = {"sigmoid": True} if "sigmoid" in name else {"softmax": True}
    if name.startswith("monai"):
        return DiceLoss(soft_label=True, to_onehot_y=name.endswith("index"), **act)
    loss = DiceSemimetricLoss(to_onehot_y="index" in name, fused=not name.endswith("generic"), **act)
    return partial(_torch_kernel, loss) if name.endswith("torch") else loss


def _torch_kernel(loss, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``loss(x, target)`` with the native CPU kernel switched off (the kernel is chosen in the forward)."""
    from monai_jdt.losses.functional._native import ENV_VAR

    with mock.patch.dict(os.environ, {ENV_VAR: "0"}):
        return loss(x, target)


def target_for(name: str, soft: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return index if "index" in name else soft


def step(loss, x: torch.Tensor, target: torch.Tensor) -> float:
    value = loss(x, target)
    value.backward()
    x.grad = None
    return float(value.detach())


def time_all(shape, device: str, repeats: int, warmup: int) -> dict[str, float]:
    logits, soft, index = make_inputs(shape, device)
    x = logits.clone().requires_grad_(True)
    losses = {name: make_loss(name) for name in CONFIGS}
    steps = {name: partial(step, losses[name], x, target_for(name, soft, index)) for name in CONFIGS}
    return medians(round_robin(steps, repeats, warmup, device))


def accuracy_all(shape, device: str) -> dict[str, float]:
    logits64, soft64, index = make_inputs(shape, device, torch.float64)
    exact = {
        "soft": float(make_loss("monai_soft")(logits64, soft64)),
        "index": float(make_loss("monai_index")(logits64, index)),
        "sigmoid": float(make_loss("monai_sigmoid")(logits64, soft64)),
    }
    logits, soft, _ = make_inputs(shape, device)
    out = {}
    for name in CONFIGS[1:]:
        kind = next((k for k in ("index", "sigmoid") if k in name), "soft")
        with torch.no_grad():
            value = float(make_loss(name)(logits, target_for(name, soft, index)))
        out[name] = abs(value - exact[kind])
    return out


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1024.0  # kB
    except OSError:
        return None
    return None


def _reset_peak_rss() -> float:
    """Reset the resident set high-water mark where Linux allows it; return the baseline (MiB)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        rss = _status_mib("VmRSS")
        if rss is not None:
            return rss
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _peak_rss() -> float:
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_memory_here(name: str, shape, device: str) -> float:
    """Peak extra memory (MiB) of one forward + backward of ``name`` in this (fresh) process."""
    loss = make_loss(name)
    small = tuple(shape[:2]) + (8,) * (len(shape) - 2)
    logits_s, soft_s, index_s = make_inputs(small, device)
    step(loss, logits_s.requires_grad_(True), target_for(name, soft_s, index_s))  # lazy initialisations
    logits, soft, index = make_inputs(shape, device)
    x = logits.requires_grad_(True)
    target = target_for(name, soft, index)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        value = loss(x, target)
        value.backward()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base = _reset_peak_rss()
    value = loss(x, target)
    value.backward()
    return _peak_rss() - base


def memory_all(shape, device: str, threads: int | None) -> dict[str, float]:
    out = {}
    for name in CONFIGS:
        cmd = [sys.executable, __file__, "--memory-of", name, "--device", device, "--shape", *map(str, shape)]
        if threads:
            cmd += ["--threads", str(threads)]
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        result = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        out[name] = json.loads(result.stdout.strip().splitlines()[-1])["mib"]
    return out


def print_table(times, memory, accuracy, args) -> None:
    device = args.device
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"DiceSemimetricLoss vs MONAI DiceLoss(soft_label=True), shape {tuple(args.shape)} float32, {where}")
    method = "max_memory_allocated" if device.startswith("cuda") else "peak RSS growth, /proc/self/clear_refs reset"
    print(
        f"time: median of {args.repeats} forward+backward passes, round-robin; memory: a fresh process per row "
        f"({method})"
    )
    head = f"{'configuration':<45} {'time ms':>9} {'x peer':>7} {'peak MiB':>9} {'x peer':>7} {'|err| vs f64':>12}"
    print(head)
    print("-" * len(head))
    for name in CONFIGS:
        peer = PEER.get(name)
        t_ratio = f"{times[name] / times[peer]:.2f}" if peer else ""
        m_ratio = f"{memory[name] / memory[peer]:.2f}" if peer and memory[peer] > 0 else ""
        err = f"{accuracy[name]:.1e}" if name in accuracy else ""
        print(f"{LABELS[name]:<45} {times[name] * 1e3:>9.2f} {t_ratio:>7} {memory[name]:>9.1f} {m_ratio:>7} {err:>12}")
    print("peer: MONAI with the same target kind and activation; the floor row is compared with (a).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", type=int, nargs="+", default=[2, 3, 96, 96, 96])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--skip-memory", action="store_true", help="time and accuracy only (no subprocesses)")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = tuple(args.shape)
    if args.memory_of:
        print(json.dumps({"mib": measure_memory_here(args.memory_of, shape, args.device)}))
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    if args.skip_memory:
        memory = dict.fromkeys(CONFIGS, float("nan"))
    else:
        memory = memory_all(shape, args.device, args.threads)
    times = time_all(shape, args.device, args.repeats, args.warmup)
    accuracy = accuracy_all(shape, args.device)
    print_table(times, memory, accuracy, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
