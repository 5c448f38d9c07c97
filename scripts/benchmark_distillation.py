"""Benchmark of the distillation loss and the offline teacher-map writer against peers measured in the same run.

1. ``DistillationLoss`` (forward + backward, index-map target, teacher logits) against the same number assembled
   from torch and MONAI: ``F.cross_entropy`` + ``DiceLoss(softmax=True, soft_label=True)`` on the label and
   ``F.kl_div`` + ``DiceLoss`` on ``softmax(t / T)``. The values are checked to agree (``teacher_active_classes=
   "all"``, the mode MONAI has). On CUDA the peak memory of each side is reported too.
2. ``write_teacher_maps`` (sliding window, ``Invertd``, 16-bit NIfTI) against a plain MONAI loop doing the same
   work with ``SaveImage`` (float32 NIfTI): seconds per case and bytes per map.

Runs are interleaved (ours, peer, ours, ...) and the median is reported, so machine load hits both sides alike.

Usage::

    python scripts/benchmark_distillation.py                 # CPU
    python scripts/benchmark_distillation.py --device cuda
    python scripts/benchmark_distillation.py --shape 64 64 32 --repeats 3   # quick run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.inferers import SlidingWindowInferer
from monai.losses import DiceLoss
from monai.networks.nets import UNet
from monai.transforms import Compose, EnsureChannelFirstd, Invertd, LoadImaged, Orientationd, SaveImage, Spacingd

from monai_jdt.engines import write_teacher_maps
from monai_jdt.losses import DistillationLoss


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> tuple[float, int]:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    peak = torch.cuda.max_memory_allocated() - base if device.startswith("cuda") else 0
    return time.perf_counter() - start, peak


def interleaved(sides: dict[str, Callable[[], object]], repeats: int, device: str) -> dict[str, tuple[float, int]]:
    for fn in sides.values():  # warm-up
        fn()
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            runs[name].append(timed(fn, device))
    return {n: (statistics.median(t for t, _ in r), max(m for _, m in r)) for n, r in runs.items()}


def loss_benchmark(shape: tuple[int, ...], classes: int, repeats: int, device: str) -> None:
    temperature = 2.0
    student = torch.randn(2, classes, *shape, device=device, requires_grad=True)
    teacher = 3 * torch.randn(2, classes, *shape, device=device)
    labels = torch.randint(0, classes, (2, 1, *shape), device=device)
    ours_fn = DistillationLoss(to_onehot_y=True, temperature=temperature, teacher_active_classes="all")
    dice = DiceLoss(softmax=True, soft_label=True)

    def peer_value() -> torch.Tensor:
        onehot = F.one_hot(labels[:, 0], classes).movedim(-1, 1).float()
        q = torch.softmax(teacher / temperature, 1)
        kl = F.kl_div(torch.log_softmax(student / temperature, 1), q, reduction="none").sum(1).mean()
        label = 0.25 * F.cross_entropy(student, labels[:, 0]) + 0.75 * dice(student, onehot)
        return 0.5 * label + 0.5 * (0.25 * temperature**2 * kl + 0.75 * dice(student, q))

    ours_value = ours_fn(student, labels, teacher)
    torch.testing.assert_close(ours_value, peer_value(), rtol=1e-4, atol=1e-5)
    sides = {
        "monai_jdt DistillationLoss": lambda: ours_fn(student, labels, teacher).backward(),
        "torch + MONAI DiceLoss assembly": lambda: peer_value().backward(),
    }
    result = interleaved(sides, repeats, device)
    peer_time = result["torch + MONAI DiceLoss assembly"][0]
    print(f"\nloss forward+backward, input (2, {classes}, {' x '.join(map(str, shape))}), {device}, "
          f"median of {repeats}")  # fmt: skip
    print(f"| {'side':34s} | time [ms] | ratio | peak memory [MiB] |")
    print(f"|{'-' * 36}|-----------|-------|-------------------|")
    for name, (seconds, peak) in result.items():
        mem = f"{peak / 2**20:.0f}" if device.startswith("cuda") else "n/a (CPU)"
        print(f"| {name:34s} | {seconds * 1e3:9.1f} | {seconds / peer_time:5.2f} | {mem:>17s} |")


def maps_benchmark(shape: tuple[int, ...], cases: int, repeats: int, device: str) -> None:
    folder = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    datalist = []
    for i in range(cases):
        path = folder / f"case{i}.nii.gz"
        nib.save(nib.Nifti1Image(rng.random(shape, dtype=np.float32), np.diag([0.8, 0.8, 2.0, 1.0])), path)
        datalist.append({"image": str(path)})
    net = UNet(3, 1, 3, channels=(8, 16, 32), strides=(2, 2)).to(device).eval()
    pre = Compose([LoadImaged("image"), EnsureChannelFirstd("image"), Orientationd("image", "RAS"),
                   Spacingd("image", (1.0, 1.0, 2.0))])  # fmt: skip
    inferer = SlidingWindowInferer((64, 64, 32), sw_batch_size=2, overlap=0.25)
    saver = SaveImage(output_dir=str(folder / "peer"), output_postfix="probs", output_dtype=np.float32,
                      separate_folder=False, print_log=False, resample=False)  # fmt: skip

    def peer() -> None:
        inverter = Invertd(keys="pred", transform=pre, orig_keys="image", nearest_interp=False)
        for entry in datalist:
            data = pre(dict(entry))
            with torch.no_grad():
                logits = inferer(data["image"][None].to(device), net)
            data["pred"] = MetaTensor(torch.softmax(logits, 1)[0])
            saver(inverter(data)["pred"])

    sides = {
        "write_teacher_maps (uint16)": lambda: write_teacher_maps(net, datalist, pre, inferer, folder / "ours",
                                                                  device=device, overwrite=True),  # fmt: skip
        "MONAI loop + SaveImage (float32)": peer,
    }
    result = interleaved(sides, repeats, device)
    peer_time = result["MONAI loop + SaveImage (float32)"][0]
    sizes = {"write_teacher_maps (uint16)": sum(p.stat().st_size for p in (folder / "ours").glob("*.nii.gz")),
             "MONAI loop + SaveImage (float32)": sum(p.stat().st_size for p in (folder / "peer").glob("*.nii.gz"))}
    print(f"\nteacher maps, {cases} cases of {' x '.join(map(str, shape))}, 3 classes, {device}, median of {repeats}")
    print(f"| {'side':34s} | s / case | ratio | MiB / map (gzip) |")
    print(f"|{'-' * 36}|----------|-------|------------------|")
    for name, (seconds, _) in result.items():
        print(f"| {name:34s} | {seconds / cases:8.2f} | {seconds / peer_time:5.2f} | "
              f"{sizes[name] / cases / 2**20:16.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 96, 64], help="loss input spatial shape")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--map-shape", type=int, nargs=3, default=[160, 160, 48], help="teacher-map image shape")
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    loss_benchmark(tuple(args.shape), args.classes, args.repeats, args.device)
    maps_benchmark(tuple(args.map_shape), args.cases, max(1, args.repeats // 2), args.device)


if __name__ == "__main__":
    main()
