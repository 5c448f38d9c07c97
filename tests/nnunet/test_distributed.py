"""Under DDP with batch_dice: our sync_stats equals nnU-Net's all-gather (2 gloo ranks on CPU; slow: spawns)."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist

from monai_jdt.nnunet import nnunet_available
from tests._support.distributed import end_rank, spawn_ranks

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not nnunet_available(), reason="nnU-Net v2 >= 2.8 is not installed (bash scripts/install_nnunet_cpu.sh)"
    ),
]
WORLD = 2


def _run(rank: int, init_file: str, out: str) -> None:
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    from monai_jdt.nnunet import NNUNetOverlapCELoss

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(5)
    logits_all = torch.randn(WORLD, 3, 6, 5, 4, generator=g, dtype=torch.float64)
    labels_all = torch.randint(0, 4, (WORLD, 1, 6, 5, 4), generator=g).double()  # 3 = ignore
    labels_all[0][labels_all[0] == 2] = 1  # class 2 only on rank 1: the pooled counts differ from per-rank ones
    results = {}
    losses = {
        "nnunet": DC_and_CE_loss(
            {"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": True},
            {},
            weight_ce=1,
            weight_dice=1,
            ignore_label=3,
            dice_class=MemoryEfficientSoftDiceLoss,
        ),
        "ours": NNUNetOverlapCELoss("dice", batch_dice=True, ignore_label=3, sync_stats=True),
    }
    for name, loss in losses.items():
        x = logits_all[rank : rank + 1].clone().requires_grad_()
        value = loss(x, labels_all[rank : rank + 1])
        value.backward()
        results[name] = (value.detach(), x.grad)
    torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    end_rank()


def test_sync_stats_equals_nnunet_all_gather(tmp_path):
    spawn_ranks(_run, (str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD)
    for rank in range(WORLD):
        res = torch.load(tmp_path / f"rank{rank}.pt")
        (v_ref, g_ref), (v_ours, g_ours) = res["nnunet"], res["ours"]
        torch.testing.assert_close(v_ours, v_ref.double() + 1, rtol=0, atol=2e-6)
        torch.testing.assert_close(g_ours, g_ref.double(), rtol=1e-4, atol=1e-8)
