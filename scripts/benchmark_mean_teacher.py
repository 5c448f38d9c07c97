"""Benchmark of the mean-teacher pieces against peers measured in the same run.

1. The EMA update (:func:`monai_jdt.engines.update_ema_teacher`, multi-tensor kernels, parameters and BatchNorm
   buffers) against the usual per-parameter loop ``t.mul_(d).add_(s, alpha=1 - d)`` and against PyTorch's
   ``AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(d), use_buffers=True).update_parameters``. The three results
   are checked to agree.
2. One training iteration of :class:`monai_jdt.engines.MeanTeacherTrainer` (labelled + unlabelled batch of the same
   size; the unlabelled branch costs a teacher forward and a student forward/backward) and of the same trainer with
   ``unsup_weight=0``, against MONAI's ``SupervisedTrainer`` on the labelled batch alone.

Runs are interleaved (ours, peer, ours, ...) and the median is reported, so machine load hits every side alike. On
CPU the time is the CPU time of this process (``time.process_time``, all its threads), which other processes on a
shared machine do not inflate; on CUDA it is the wall time after synchronising.

Usage::

    python scripts/benchmark_mean_teacher.py                       # CPU
    python scripts/benchmark_mean_teacher.py --device cuda --amp
    python scripts/benchmark_mean_teacher.py --patch 32 --repeats 3  # quick run
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import torch
from _timing import medians, round_robin
from monai.engines import SupervisedTrainer
from monai.networks.nets import UNet
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from monai_jdt.engines import MeanTeacherTrainer, make_ema_teacher, update_ema_teacher
from monai_jdt.losses import DiceSemimetricCELoss

UNIT = {"cpu": "CPU time of the process", "cuda": "wall time"}


def interleaved(sides: dict[str, Callable[[], object]], repeats: int, device: str) -> dict[str, float]:
    """Median seconds per call of each side, the sides called in turn ``repeats`` times after a warm-up."""
    clock = time.perf_counter if device.startswith("cuda") else time.process_time
    return medians(round_robin(sides, repeats, warmup=1, device=device, clock=clock))


def network(args: argparse.Namespace) -> torch.nn.Module:
    channels = tuple(args.base * 2**i for i in range(args.levels))
    net = UNet(3, 1, args.classes, channels=channels, strides=(2,) * (args.levels - 1), num_res_units=2, norm="batch")
    return net.to(args.device)


def loop_ema(teacher: torch.nn.Module, student: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for t, s in zip(teacher.parameters(), student.parameters()):
            t.mul_(decay).add_(s, alpha=1 - decay)
        for t, s in zip(teacher.buffers(), student.buffers()):
            if t.is_floating_point():
                t.mul_(decay).add_(s, alpha=1 - decay)
            else:
                t.copy_(s)


def bench_ema(args: argparse.Namespace) -> None:
    student = network(args)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    ours, loop = make_ema_teacher(student), make_ema_teacher(student)
    averaged = AveragedModel(student, multi_avg_fn=get_ema_multi_avg_fn(args.decay), use_buffers=True)
    averaged.update_parameters(student)  # its first call copies; later calls average
    sides = {
        "update_ema_teacher": lambda: update_ema_teacher(ours, student, args.decay),
        "per-parameter loop": lambda: loop_ema(loop, student, args.decay),
        "AveragedModel (torch)": lambda: averaged.update_parameters(student),
    }
    times = interleaved(sides, args.repeats * 10, args.device)
    for name, value in loop.state_dict().items():
        assert torch.allclose(ours.state_dict()[name].double(), value.double(), rtol=1e-5, atol=1e-6), name
        assert torch.allclose(averaged.module.state_dict()[name].double(), value.double(), rtol=1e-5, atol=1e-6)
    count = sum(p.numel() for p in student.parameters())
    print(f"\nEMA update, 3D UNet with {count / 1e6:.2f} M parameters, {args.device} ({UNIT[args.device[:4]]})")
    print(f"| {'method':<24} | {'ms / update':>11} | {'ratio vs ours':>13} |")
    print(f"|{'-' * 26}|{'-' * 13}|{'-' * 15}|")
    for name, seconds in times.items():
        print(f"| {name:<24} | {seconds * 1e3:>11.3f} | {seconds / times['update_ema_teacher']:>13.2f} |")


def bench_iteration(args: argparse.Namespace) -> None:
    shape = (args.batch, 1, args.patch, args.patch, args.patch)
    labelled = [{"image": torch.randn(shape), "label": torch.randint(0, args.classes, shape)}]
    unlabelled = [{"image": torch.randn(shape), "image_strong": torch.randn(shape)}]
    base = network(args)
    trainers = {}
    for name in ("MeanTeacherTrainer", "MeanTeacherTrainer w=0", "SupervisedTrainer (MONAI)"):
        net = copy.deepcopy(base)
        opt = torch.optim.Adam(net.parameters(), 1e-4)
        loss = DiceSemimetricCELoss(to_onehot_y=True)
        common = {"amp": args.amp, "decollate": False}
        if name == "SupervisedTrainer (MONAI)":
            trainers[name] = SupervisedTrainer(args.device, 1, labelled, net, opt, loss, **common)
        else:
            weight = 0.0 if name.endswith("w=0") else 1.0
            trainers[name] = MeanTeacherTrainer(args.device, 1, labelled, net, opt, loss, unlabelled,
                                                unsup_weight=weight, rampup_epochs=0.0, **common)  # fmt: skip
    sides = {}
    for name, trainer in trainers.items():
        sides[name] = lambda t=trainer: t.run()
    times = interleaved(sides, args.repeats, args.device)
    peer = times["SupervisedTrainer (MONAI)"]
    print(f"\nOne iteration, 3D UNet, batch {args.batch} x {args.patch}^3 labelled (+ same unlabelled), "
          f"{args.device}{' AMP' if args.amp else ''} ({UNIT[args.device[:4]]})")  # fmt: skip
    print(f"| {'trainer':<26} | {'s / iteration':>13} | {'ratio vs MONAI':>14} |")
    print(f"|{'-' * 28}|{'-' * 15}|{'-' * 16}|")
    for name, seconds in times.items():
        print(f"| {name:<26} | {seconds:>13.4f} | {seconds / peer:>14.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="autocast + GradScaler (CUDA only)")
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--base", type=int, default=16, help="channels of the first UNet level")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--decay", type=float, default=0.99)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_ema(args)
    bench_iteration(args)


if __name__ == "__main__":
    main()
