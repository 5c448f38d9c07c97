"""``sync_stats``: 2 gloo ranks x batch 1 give the loss and the (DDP) gradients of 1 process x batch 2."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist

from monai_jdt.losses import DiceSemimetricLoss, JaccardMetricLoss
from tests._support.distributed import end_rank, spawn_ranks

WORLD = 2
CONFIGS = [
    {"levels": {"batch": 1.0}},
    {"levels": {"batch": 1.0}, "active_classes": "present", "class_agnostic": True},
    {"levels": {"image": 0.5, "class": 0.5}, "active_classes": "present"},
    {"levels": {"batch": 0.5, "image": 0.5}, "reduction": "sum"},
]


def _data():
    g = torch.Generator().manual_seed(11)
    image = torch.randn(WORLD, 2, 6, 5, 4, generator=g)
    labels = torch.randint(0, 3, (WORLD, 1, 6, 5, 4), generator=g)
    labels[0][labels[0] == 2] = 1  # class 2 only in image 1: "present" differs per rank
    soft = torch.softmax(torch.randn(WORLD, 3, 6, 5, 4, generator=g), 1)
    return image, labels, soft


def _model() -> torch.nn.Module:
    torch.manual_seed(3)
    return torch.nn.Conv3d(2, 3, 3, padding=1).double()


def _cases():
    """Every config with both target kinds; the fused kernel and the generic path alternate."""
    for cfg_id, cfg in enumerate(CONFIGS):
        for kind_id, target_kind in enumerate(("index", "soft")):
            fused = (cfg_id + kind_id) % 2 == 0
            cls = DiceSemimetricLoss if cfg_id % 2 == 0 else JaccardMetricLoss
            opts = {**cfg, "softmax": True, "to_onehot_y": target_kind == "index", "fused": fused}
            yield (cfg_id, target_kind, fused), cls, opts


def _run(rank: int, tmp: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    image, labels, soft = _data()
    results = {}
    for key, cls, opts in _cases():
        target = (labels if key[1] == "index" else soft)[rank : rank + 1]
        x = image[rank : rank + 1].double()
        model = torch.nn.parallel.DistributedDataParallel(_model())
        logits = model(x)
        logits.retain_grad()
        value = cls(sync_stats=True, **opts)(logits, target)
        value.backward()
        results[key] = (value.detach(), logits.grad, [p.grad for p in model.parameters()])
    torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    end_rank()


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(tmp_path):
    spawn_ranks(_run, (str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    image, labels, soft = _data()
    for key, cls, opts in _cases():
        target = labels if key[1] == "index" else soft
        model = _model()
        logits = model(image.double())
        logits.retain_grad()
        value = cls(**opts)(logits, target)
        value.backward()
        for r in range(WORLD):
            r_value, r_logit_grad, r_param_grads = ranks[r][key]
            torch.testing.assert_close(r_value, value.detach(), rtol=1e-10, atol=1e-12, msg=f"value {key}")
            # all_reduce's backward sums the identical upstream gradients of the ranks: world x the global gradient
            torch.testing.assert_close(r_logit_grad / WORLD, logits.grad[r : r + 1], rtol=1e-9, atol=1e-14)
            for got, want in zip(r_param_grads, model.parameters()):  # after DDP's averaging: exactly global
                torch.testing.assert_close(got, want.grad, rtol=1e-9, atol=1e-14, msg=f"param grad {key}")


def test_sync_stats_without_process_group_is_local():
    logits = torch.randn(2, 3, 4, 4)
    labels = torch.randint(0, 3, (2, 1, 4, 4))
    a = DiceSemimetricLoss(softmax=True, to_onehot_y=True, batch=True, sync_stats=True)(logits, labels)
    b = DiceSemimetricLoss(softmax=True, to_onehot_y=True, batch=True)(logits, labels)
    assert torch.equal(a, b)
