#!/usr/bin/env python
"""Would a compiled kernel meet the 0.5x target? DML (soft target, softmax) with ``torch.compile``d kernels.

Evidence for a maintainers' decision, not a feature: the package's fused kernel uses plain torch operations only.
Forward + backward of DML on ``(B, C, *spatial)`` float32 logits against a soft target, round-robin in one
process, median of ``--repeats`` passes, ratio to MONAI's ``DiceLoss(softmax=True, soft_label=True)``:

* ``fused``: the package's ``DiceSemimetricLoss(softmax=True)`` (worker-thread block loop, plain torch ops);
* ``compiled blocks``: the same analytic forward/backward (``P = sum s``, ``G = sum y``, ``D = sum |s - y|``;
  ``dL/dz = s h - s sum_c s h`` with ``h = dL/dP + dL/dD sign(s - y)``, the softmax recomputed) as two
  ``torch.compile``d block functions run by the package's worker threads;
* ``compiled whole``: the same two functions compiled for the whole volume and run by the calling thread (the
  generated code parallelises with OpenMP).

The compile time (first call) is printed separately. Values and gradients are checked against ``fused``.

    python scripts/benchmark_compiled_kernels.py [--shape 2 3 96 96 96] [--repeats 31] [--block 32768]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
from _timing import medians, round_robin

F64 = torch.float64


def stats_forward(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(P, G, D)`` stacked, each ``(B, C)`` float64, of ``s = softmax(z, 1)`` against ``y`` (``B, C, N``)."""
    s = torch.softmax(z, 1)
    return torch.stack([s.sum(-1, dtype=F64), y.sum(-1, dtype=F64), (s - y).abs().sum(-1, dtype=F64)])


def stats_backward(z: torch.Tensor, y: torch.Tensor, g_p: torch.Tensor, g_d: torch.Tensor) -> torch.Tensor:
    """dL/dz from ``dL/dP`` and ``dL/dD`` (``B, C, 1``), the softmax recomputed from the logits."""
    s = torch.softmax(z, 1)
    prod = s * (g_p + g_d * torch.sign(s - y))
    return prod - s * prod.sum(1, keepdim=True)


def make_function(fwd, bwd, block: int | None):
    """An autograd function running ``fwd``/``bwd`` on the whole volume or, by blocks, on the worker threads."""
    from monai_jdt.losses.functional._threads import parallel_map, split_range, worker_count

    def ranges(n: int) -> tuple[list[tuple[int, int]], int]:
        workers = worker_count(torch.device("cpu"))
        return split_range(n, block, workers), workers

    def forward_part(z, y, lo, hi):
        return sum(fwd(z[..., a : a + block], y[..., a : a + block]) for a in range(lo, hi, block))

    def backward_part(z, y, grad, g_p, g_d, lo, hi):
        for a in range(lo, hi, block):
            grad[..., a : a + block].copy_(bwd(z[..., a : a + block], y[..., a : a + block], g_p, g_d))

    class Stats(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z, y):
            ctx.save_for_backward(z, y)
            if block is None:
                return tuple(fwd(z, y).unbind(0))
            parts, workers = ranges(z.shape[2])
            return tuple(sum(parallel_map(partial(forward_part, z, y), parts, workers)).unbind(0))

        @staticmethod
        def backward(ctx, g_pred, _g_target, g_diff):
            z, y = ctx.saved_tensors
            g_p, g_d = (g.to(z.dtype)[..., None].contiguous() for g in (g_pred, g_diff))
            if block is None:
                return bwd(z, y, g_p, g_d), None
            grad = torch.empty_like(z)
            parts, workers = ranges(z.shape[2])
            parallel_map(partial(backward_part, z, y, grad, g_p, g_d), parts, workers)
            return grad, None

    def loss(x: torch.Tensor, target: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
        b, c = x.shape[:2]
        card_pred, card_target, card_diff = Stats.apply(x.reshape(b, c, -1), target.reshape(b, c, -1))
        two_tp = card_pred + card_target - card_diff
        return (1 - (two_tp + smooth) / (card_pred + card_target + smooth)).mean().float()

    return loss


def _step(loss, x: torch.Tensor, target: torch.Tensor) -> None:
    loss(x, target).backward()
    x.grad = None


def main(argv: list[str] | None = None) -> int:
    from monai.losses import DiceLoss

    from monai_jdt.losses import DiceSemimetricLoss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[2, 3, 96, 96, 96])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--block", type=int, default=32768, help="voxels per block (should divide the voxel count)")
    args = parser.parse_args(argv)
    shape = tuple(args.shape)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=g)
    target = torch.softmax(2 * torch.randn(*shape, generator=g), 1)
    fwd, bwd = torch.compile(stats_forward, dynamic=False), torch.compile(stats_backward, dynamic=False)
    losses = {
        "monai": DiceLoss(softmax=True, soft_label=True),
        "fused": DiceSemimetricLoss(softmax=True),
        "compiled blocks": make_function(fwd, bwd, args.block),
        "compiled whole": make_function(
            torch.compile(stats_forward, dynamic=False), torch.compile(stats_backward, dynamic=False), None
        ),
    }
    x = logits.clone().requires_grad_(True)
    first: dict[str, float] = {}
    results = {}
    for name, loss in losses.items():  # first call (compilation) and the check against the fused loss
        start = time.perf_counter()
        value = loss(x, target)
        value.backward()
        first[name] = time.perf_counter() - start
        results[name] = (float(value.detach()), x.grad.clone())
        x.grad = None
    steps = {name: partial(_step, loss, x, target) for name, loss in losses.items()}
    med = {name: t * 1e3 for name, t in medians(round_robin(steps, args.repeats, 3)).items()}
    ref_value, ref_grad = results["fused"]
    print(f"DML forward+backward, soft target, {shape} float32, CPU, {torch.get_num_threads()} threads")
    head = ("configuration", "time ms", "x MONAI", "first call s", "|value diff|", "|grad diff|")
    print(f"{head[0]:<16} {head[1]:>8} {head[2]:>8} {head[3]:>13} {head[4]:>13} {head[5]:>12}")
    for name in losses:
        value, grad = results[name]
        diffs = ("", "")
        if name != "monai":
            diffs = (f"{abs(value - ref_value):.1e}", f"{(grad - ref_grad).abs().max():.1e}")
        print(
            f"{name:<16} {med[name]:>8.2f} {med[name] / med['monai']:>8.2f} {first[name]:>13.2f} "
            f"{diffs[0]:>13} {diffs[1]:>12}"
        )
    print("diffs: against the fused loss; monai is the peer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
