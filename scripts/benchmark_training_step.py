#!/usr/bin/env python
"""Time of one whole training step (network forward + loss + backward + SGD step) with each loss.

The loss benchmark (``benchmark_losses.py``) times the loss alone; this one shows what it weighs in a step. A MONAI
``UNet`` (3D, channels 8-16-32-64, one residual unit) on ``(B, 1, S, S, S)`` inputs with ``C`` output classes and
index-map labels is trained for one step with, round-robin in one process:

* ``trivial``: ``logits.mean()`` (the network's own cost, no overlap loss);
* ``monai``: MONAI ``DiceLoss(softmax=True, to_onehot_y=True, soft_label=True)`` (the peer);
* ``dml``: ``DiceSemimetricLoss(softmax=True, to_onehot_y=True)``.

Each entry is the median of ``--repeats`` steps after two warm-up rounds; ``x peer`` divides by the MONAI step.

    python scripts/benchmark_training_step.py [--size 96] [--batch 2] [--classes 3] [--repeats 15] [--device cpu]
"""

from __future__ import annotations

import argparse

import torch
from _timing import medians, round_robin


def _step_fn(net: torch.nn.Module, loss, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.SGD(net.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        logits = net(x)
        value = logits.mean() if loss is None else loss(logits, y)
        value.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> int:
    from monai.losses import DiceLoss
    from monai.networks.nets import UNet

    from monai_jdt.losses import DiceSemimetricLoss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = UNet(3, 1, args.classes, channels=(8, 16, 32, 64), strides=(2, 2, 2), num_res_units=1).to(device)
    shape = (args.batch, 1, args.size, args.size, args.size)
    x = torch.randn(shape, device=device)
    y = torch.randint(0, args.classes, shape, device=device)
    losses = {
        "trivial": None,
        "monai": DiceLoss(softmax=True, to_onehot_y=True, soft_label=True),
        "dml": DiceSemimetricLoss(softmax=True, to_onehot_y=True),
    }
    steps = {name: _step_fn(net, loss, x, y) for name, loss in losses.items()}
    med = {name: t * 1e3 for name, t in medians(round_robin(steps, args.repeats, 2, device)).items()}
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"UNet training step, input {shape}, {args.classes} classes, {where}; median of {args.repeats} steps")
    print(f"{'loss':<10} {'step ms':>9} {'x peer':>7} {'loss share ms':>14}")
    for name, ms in med.items():
        share = "" if name == "trivial" else f"{ms - med['trivial']:.1f}"
        print(f"{name:<10} {ms:>9.1f} {ms / med['monai']:>7.2f} {share:>14}")
    print("peer: the MONAI step; loss share: step time minus the trivial-loss step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
