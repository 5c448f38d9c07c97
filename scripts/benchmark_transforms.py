"""Benchmark of the soft-label transforms against a scipy.ndimage reference measured in the same run.

Boundary label smoothing (BLS) of a (1, 256, 256, 128) index map with 3 classes (issue 4 target: at most 1.0x the
time of the scipy reference). The reference is written here: ``scipy.ndimage.maximum_filter`` and
``minimum_filter`` of the label map, compare, numpy one-hot, smoothing. Both sides produce the same float32
``(C, H, W, D)`` soft label (checked). Runs are interleaved (ours, reference, ours, ...) and the median is
reported, so machine load hits both sides alike.

Usage::

    python scripts/benchmark_transforms.py                  # CPU table
    python scripts/benchmark_transforms.py --device cuda    # adds the batched functional on the GPU
    python scripts/benchmark_transforms.py --shape 128 128 64 --repeats 3   # quick run
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from monai.data import MetaTensor
from scipy import ndimage

from monai_jdt.transforms import BoundaryLabelSmoothing, FuseRaters, boundary_label_smoothing, boundary_mask


def make_labels(shape: tuple[int, int, int], num_classes: int, seed: int = 0) -> np.ndarray:
    """Organ-like label map: nested ellipsoids of classes 1..C-1 on background, plus small speckle."""
    rng = np.random.default_rng(seed)
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    lab = np.zeros(shape, np.int64)
    for c in range(1, num_classes):
        centre = [s * rng.uniform(0.35, 0.65) for s in shape]
        radii = [s * 0.35 / c for s in shape]
        inside = sum(((g - m) / r) ** 2 for g, m, r in zip(grid, centre, radii)) <= 1.0
        lab[inside] = c
    speckle = rng.random(shape) < 1e-4
    lab[speckle] = rng.integers(0, num_classes, int(speckle.sum()))
    return lab


def scipy_bls(lab: np.ndarray, num_classes: int, eps: float, size: list[int]) -> np.ndarray:
    """The scipy reference: max/min filters + compare + one-hot + smoothing, float32 (C, *spatial)."""
    edge = ndimage.maximum_filter(lab, size=size) != ndimage.minimum_filter(lab, size=size)
    onehot = lab[None] == np.arange(num_classes, dtype=lab.dtype).reshape(-1, 1, 1, 1)
    out = onehot.astype(np.float32)
    high, low = np.float32(1 - eps + eps / num_classes), np.float32(eps / num_classes)
    out[:, edge] = np.where(onehot[:, edge], high, low)
    return out


def scipy_boundary(lab: np.ndarray, size: list[int]) -> np.ndarray:
    return ndimage.maximum_filter(lab, size=size) != ndimage.minimum_filter(lab, size=size)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def interleaved(
    ours: Callable[[], object], peer: Callable[[], object], repeats: int, device: str
) -> tuple[float, float]:
    """Median seconds of ``ours`` and ``peer`` over ``repeats`` interleaved runs (after one warm-up each)."""
    ours()
    peer()
    sync(device)
    t_ours, t_peer = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours()
        sync(device)
        t_ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        peer()
        t_peer.append(time.perf_counter() - start)
    return statistics.median(t_ours), statistics.median(t_peer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=[256, 256, 128])
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    shape, c, eps = tuple(args.shape), args.classes, 0.5
    lab = make_labels(shape, c)
    lab_t = torch.from_numpy(lab)[None, None]
    spacing = (0.8, 0.8, 2.5)  # radius 2.5 mm -> half-widths (3, 3, 1) -> window 7 x 7 x 3
    meta = MetaTensor(lab_t[0].float(), affine=torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64)))
    transform = BoundaryLabelSmoothing(c, eps, radius_mm=2.5)
    raters = np.stack([make_labels(shape, 2, seed) for seed in range(3)])

    ours_out = boundary_label_smoothing(lab_t, c, eps)[0].numpy()
    np.testing.assert_allclose(ours_out, scipy_bls(lab, c, eps, [3, 3, 3]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(transform(meta)), scipy_bls(lab, c, eps, [7, 7, 3]), atol=1e-6)

    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        (
            "boundary_mask k=3 (int64)",
            lambda: boundary_mask(lab_t),
            lambda: scipy_boundary(lab, [3, 3, 3]),
        ),
        (
            "BLS k=3, int64 index map [target]",
            lambda: boundary_label_smoothing(lab_t, c, eps),
            lambda: scipy_bls(lab, c, eps, [3, 3, 3]),
        ),
        (
            "BLS k=3, 1 torch thread",
            lambda: _one_thread(lambda: boundary_label_smoothing(lab_t, c, eps)),
            lambda: scipy_bls(lab, c, eps, [3, 3, 3]),
        ),
        (
            "BLS transform, float MetaTensor, 2.5 mm",
            lambda: transform(meta),
            lambda: scipy_bls(lab, c, eps, [7, 7, 3]),
        ),
        (
            "FuseRaters mean, 3 binary raters",
            lambda: FuseRaters("mean")(raters),
            lambda: np.stack([1 - raters.mean(0), raters.mean(0)]).astype(np.float32),
        ),
    ]
    print(
        f"shape (1, {', '.join(map(str, shape))}), {c} classes, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats} interleaved runs, peer = numpy/scipy reference"
    )
    print(f"| {'case':40s} | {'device':6s} | {'ours ms':>9s} | {'peer ms':>9s} | {'ratio':>6s} |")
    print(f"|{'-' * 42}|{'-' * 8}|{'-' * 11}|{'-' * 11}|{'-' * 8}|")
    for name, ours, peer in cases:
        t_ours, t_peer = interleaved(ours, peer, args.repeats, "cpu")
        print(f"| {name:40s} | {'cpu':6s} | {t_ours * 1e3:9.1f} | {t_peer * 1e3:9.1f} | {t_ours / t_peer:6.2f} |")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: CUDA is not available")
        batch = torch.from_numpy(np.stack([lab, make_labels(shape, c, 1)]))[:, None].cuda()
        gpu_out = boundary_label_smoothing(batch, c, eps)[0].cpu().numpy()
        np.testing.assert_allclose(gpu_out, ours_out, atol=1e-6)
        t_gpu, t_peer = interleaved(
            lambda: boundary_label_smoothing(batch, c, eps),
            lambda: [scipy_bls(lab, c, eps, [3, 3, 3]) for _ in range(2)],
            args.repeats,
            "cuda",
        )
        name = f"BLS k=3, batch of 2 ({torch.cuda.get_device_name()})"
        print(f"| {name:40s} | {'cuda':6s} | {t_gpu * 1e3:9.1f} | {t_peer * 1e3:9.1f} | {t_gpu / t_peer:6.3f} |")


def _one_thread(fn: Callable[[], object]) -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
