"""All-reduce helpers for ``sync_stats``: no-ops unless ``torch.distributed`` runs with more than one process.

``sum_with_grad`` uses :func:`torch.distributed.nn.functional.all_reduce`, whose backward all-reduces (sums) the
incoming gradients. When every rank computes the same global loss from the synchronised statistics, the gradient
that reaches a rank's inputs is therefore ``world_size`` times the gradient of that global loss; DDP's gradient
averaging divides by ``world_size`` again, so the parameters receive exactly the gradient of the loss computed
on the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "max_no_grad", "sum_no_grad", "sum_with_grad"]


def is_distributed() -> bool:
    """``True`` when a default process group with more than one rank exists."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def sum_with_grad(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over all ranks, differentiable (see the module docstring for the gradient scale)."""
    if not is_distributed():
        return t
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(t, op=dist.ReduceOp.SUM)


def sum_no_grad(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over all ranks, detached."""
    if not is_distributed():
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def max_no_grad(t: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum of ``t`` over all ranks, detached."""
    if not is_distributed():
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out
