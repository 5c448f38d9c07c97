"""Forward + backward time of one nnU-Net training loss (deep supervision, 3 levels): ours vs nnU-Net's own.

Prints a table: median over --repeats runs (after a warm-up) of nnU-Net's DC_and_CE_loss / DC_and_BCE_loss and of
monai_jdt's NNUNetOverlapCELoss (DML, JML, DML + boundary label smoothing, class-agnostic DML), each wrapped in
nnU-Net's DeepSupervisionWrapper with nnU-Net's weights, and the ratio to nnU-Net measured in the same run.

    python scripts/benchmark_nnunet_loss.py [--size 64] [--batch 2] [--classes 3] [--repeats 7] [--device cpu]

Needs nnU-Net (bash scripts/install_nnunet_cpu.sh).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _timing import medians, round_robin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="patch edge in voxels (cubic patch)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss, DC_and_CE_loss
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    from monai_jdt.nnunet import NNUNetOverlapCELoss

    device = torch.device(args.device)
    weights = np.array([1.0, 0.5, 0.0]) / 1.5  # nnU-Net's 1/2^i with the last level at 0, normalised
    shapes = [(args.size // 2**i,) * 3 for i in range(3)]
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(args.batch, args.classes, *s, generator=g).to(device) for s in shapes]
    labels = [torch.randint(0, args.classes, (args.batch, 1, *s), generator=g).float().to(device) for s in shapes]
    regions = [(torch.rand(args.batch, args.classes - 1, *s, generator=g) > 0.5).to(device) for s in shapes]
    dice = {"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}
    cases = {
        "labels": (logits, labels, DC_and_CE_loss(dice, {}, dice_class=MemoryEfficientSoftDiceLoss), {}),
        "regions": ([x[:, 1:] for x in logits], regions,
                    DC_and_BCE_loss({}, {**dice, "do_bg": True}, dice_class=MemoryEfficientSoftDiceLoss),
                    {"regions": True}),
    }
    variants = {
        "DML": {"overlap": "dice"},
        "JML": {"overlap": "jaccard"},
        "DML + BLS": {"overlap": "dice", "smoothing_epsilon": 0.5},
        "DML class-agnostic": {"overlap": "dice", "class_agnostic": True},
    }
    print(f"device {device}, batch {args.batch}, classes {args.classes}, patch {args.size}^3, 3 deep-supervision "
          f"levels, median of {args.repeats}")
    print("| mode | loss | forward + backward (ms) | ratio to nnU-Net |\n|---|---|---|---|")
    for mode, (outs, targets, reference, extra) in cases.items():
        def step(loss, outs=outs, targets=targets):
            inputs = [o.clone().requires_grad_() for o in outs]
            loss(inputs, targets).backward()

        nnunet_name = f"nnU-Net DC_and_{'BCE' if extra else 'CE'}_loss"
        losses = {nnunet_name: DeepSupervisionWrapper(reference, weights)}
        for name, options in variants.items():
            ours = NNUNetOverlapCELoss(batch_dice=True, **extra, **options)
            losses[f"{name} + {'BCE' if extra else 'CE'}"] = DeepSupervisionWrapper(ours, weights)
        steps = {k: (lambda loss=v: step(loss)) for k, v in losses.items()}
        times = medians(round_robin(steps, args.repeats, warmup=1, device=device))
        for name, t in times.items():
            print(f"| {mode} | {name} | {t * 1e3:.1f} | {t / times[nnunet_name]:.2f} |")


if __name__ == "__main__":
    main()
