"""Fused softmax + L1 cardinalities with an analytic, in-place backward (the fast path of the overlap losses).

For logits ``z`` (``B, C, N``), ``s = softmax(z, dim=1)``, a target ``y`` (dense, or an index map ``l`` with
``y_c = [l = c]``) and a voxel mask ``m``, the forward returns per image and class (float64)

    P = sum_n m s,    G = sum_n m y,    D = sum_n m |s - y|

(plus the optional maxima used by ``active_classes``). It walks the voxels in blocks of about
``BLOCK_ELEMENTS`` values with reused scratch buffers, sums each block in the input's dtype and accumulates the
block sums in float64. For an index map the block's ``y`` is a float "is this class" indicator written into a
scratch buffer by one ``torch.eq`` (no one-hot of the volume, no boolean arithmetic).

The backward receives ``dL/dP`` and ``dL/dD`` (``B, C``) and uses ``d|s - y|/ds = sign(s - y)``:

    h = m (dL/dP + dL/dD sign(s - y)),    dL/dz = s h - s sum_c (s h)       (softmax Jacobian-vector product)

written block by block into the saved softmax buffer, which is returned as the gradient: the whole function
needs one volume-sized buffer. When the backward keeps the graph (``retain_graph=True``, as ``gradcheck`` does)
the gradient goes to a copy instead, so the graph can be back-propagated again; on a torch that cannot report
``retain_graph``, a second backward raises a ``RuntimeError``. Double backward is not supported
(``fused=False`` allows it).

Only plain torch operations are used, so the same code runs on CUDA (with larger blocks).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["BLOCK_ELEMENTS", "FusedSoftmaxCardinalities", "fused_softmax_stats"]

#: values per block on CPU (a few blocks live in L2/L3); CUDA uses CUDA_BLOCK_ELEMENTS.
BLOCK_ELEMENTS = 1 << 18
CUDA_BLOCK_ELEMENTS = 1 << 26

_SECOND_BACKWARD = (
    "the fused soft-label overlap loss (softmax=True, ord=1) writes its gradient into its saved softmax buffer, "
    "and this torch cannot tell whether retain_graph was requested, so the graph can be back-propagated only once; "
    "recompute the loss, or build it with fused=False to call backward twice"
)


def _block_length(shape: torch.Size, device: torch.device) -> int:
    budget = CUDA_BLOCK_ELEMENTS if device.type == "cuda" else BLOCK_ELEMENTS
    rows = shape[0] * shape[1]
    return max(1024, budget // max(rows, 1))


def _blocks(n: int, step: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, step):
        yield start, min(n, start + step)


class _Blocks:
    """Scratch buffers and the per-block target / mask views shared by the forward and the backward."""

    def __init__(self, probs: torch.Tensor, dense: torch.Tensor | None, label: torch.Tensor | None, mask: Any):
        batch, num_classes, n = probs.shape
        self.step = min(n, _block_length(probs.shape, probs.device))
        self.probs, self.dense, self.label, self.mask = probs, dense, label, mask
        like = {"dtype": probs.dtype, "device": probs.device}
        self.scratch = torch.empty(batch, num_classes, self.step, **like)
        self.ybuf = None if label is None else torch.empty(batch, num_classes, self.step, **like)
        self.mbuf = None if mask is None else torch.empty(batch, self.step, 1, **like)
        self.classes = torch.arange(num_classes, device=probs.device).view(1, num_classes, 1)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return _blocks(self.probs.shape[2], self.step)

    def target(self, start: int, stop: int) -> torch.Tensor:
        if self.dense is not None:
            return self.dense[..., start:stop]
        assert self.label is not None and self.ybuf is not None
        return torch.eq(self.label[:, None, start:stop], self.classes, out=self.ybuf[..., : stop - start])

    def weights(self, start: int, stop: int) -> torch.Tensor | None:
        """The block's mask as a float ``(B, k, 1)`` column (for ``bmm``), or ``None`` without a mask."""
        if self.mask is None:
            return None
        assert self.mbuf is not None
        return self.mbuf[:, : stop - start].copy_(self.mask[:, start:stop, None])


def _masked_sum(v: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    return v.sum(-1) if w is None else torch.bmm(v, w)[..., 0]


def _masked_amax(v: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    return v.amax(-1) if w is None else (v * w.transpose(1, 2)).amax(-1)


def _forward_blocks(blocks: _Blocks, want_target_max: bool, want_pred_max: bool) -> list[torch.Tensor]:
    probs = blocks.probs
    batch, num_classes, _ = probs.shape
    acc = [torch.zeros(batch, num_classes, dtype=torch.float64, device=probs.device) for _ in range(3)]
    maxima = [torch.zeros(batch, num_classes, dtype=probs.dtype, device=probs.device) for _ in range(2)]
    for start, stop in blocks:
        s_blk, y_blk, w_blk = probs[..., start:stop], blocks.target(start, stop), blocks.weights(start, stop)
        diff = torch.sub(s_blk, y_blk, out=blocks.scratch[..., : stop - start]).abs_()
        acc[0] += _masked_sum(s_blk, w_blk)
        acc[1] += _masked_sum(y_blk, w_blk)
        acc[2] += _masked_sum(diff, w_blk)
        if want_target_max:
            torch.maximum(maxima[0], _masked_amax(y_blk, w_blk), out=maxima[0])
        if want_pred_max:
            torch.maximum(maxima[1], _masked_amax(s_blk, w_blk), out=maxima[1])
    return [acc[0], acc[1], acc[2], maxima[0].to(torch.float64), maxima[1].to(torch.float64)]


def _backward_blocks(blocks: _Blocks, grad_pred: torch.Tensor, grad_diff: torch.Tensor) -> torch.Tensor:
    """Overwrite ``blocks.probs`` with dL/dz and return it."""
    probs = blocks.probs
    g_p = grad_pred.to(probs.dtype)[..., None]
    g_d = grad_diff.to(probs.dtype)[..., None]
    prod_buf = torch.empty_like(blocks.scratch)
    dot_buf = torch.empty(probs.shape[0], 1, blocks.step, dtype=probs.dtype, device=probs.device)
    for start, stop in blocks:
        k = stop - start
        s_blk, y_blk, w_blk = probs[..., start:stop], blocks.target(start, stop), blocks.weights(start, stop)
        h = torch.sub(s_blk, y_blk, out=blocks.scratch[..., :k]).sign_()
        h = torch.addcmul(g_p, h, g_d, out=h)
        if w_blk is not None:
            h.mul_(w_blk.transpose(1, 2))
        prod = torch.mul(s_blk, h, out=prod_buf[..., :k])
        dot = torch.sum(prod, 1, keepdim=True, out=dot_buf[..., :k])
        torch.addcmul(prod, s_blk, dot, value=-1, out=s_blk)
    return probs


def _graph_is_kept() -> bool:
    """Whether the running backward keeps the graph (``retain_graph=True``); ``False`` if torch cannot tell."""
    keep_graph = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return bool(keep_graph()) if keep_graph is not None else False


class FusedSoftmaxCardinalities(torch.autograd.Function):
    """``(P, G, D, target_max, pred_max)`` of ``softmax(logits, 1)``; see the module docstring."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        logits: torch.Tensor,
        dense: torch.Tensor | None,
        label: torch.Tensor | None,
        mask: torch.Tensor | None,
        want_target_max: bool,
        want_pred_max: bool,
    ) -> tuple[torch.Tensor, ...]:
        probs = torch.softmax(logits, 1)
        outputs = _forward_blocks(_Blocks(probs, dense, label, mask), want_target_max, want_pred_max)
        ctx.save_for_backward(probs, dense, label, mask)
        ctx.consumed = False
        ctx.mark_non_differentiable(outputs[1], outputs[3], outputs[4])
        return tuple(outputs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_pred: torch.Tensor | None, *grads: torch.Tensor | None) -> tuple[Any, ...]:
        if ctx.consumed:
            raise RuntimeError(_SECOND_BACKWARD)
        probs, dense, label, mask = ctx.saved_tensors
        if _graph_is_kept():
            probs = probs.clone()  # retain_graph=True: keep the saved buffer intact for the next backward
        else:
            ctx.consumed = True
        grad_diff = grads[1]
        zeros = torch.zeros(probs.shape[:2], dtype=torch.float64, device=probs.device)
        grad_pred = zeros if grad_pred is None else grad_pred
        grad_diff = zeros if grad_diff is None else grad_diff
        grad = _backward_blocks(_Blocks(probs, dense, label, mask), grad_pred, grad_diff)
        return grad, None, None, None, None, None


def fused_softmax_stats(
    logits: torch.Tensor,
    dense: torch.Tensor | None,
    label: torch.Tensor | None,
    mask: torch.Tensor | None,
    *,
    want_max: tuple[bool, bool],
) -> tuple[torch.Tensor, ...]:
    """Flatten to ``(B, C, N)`` and run :class:`FusedSoftmaxCardinalities`.

    Args:
        logits: ``(B, C, *spatial)`` floating logits.
        dense: ``(B, C, *spatial)`` target with ``logits``' dtype, or ``None`` for an index map.
        label: ``(B, *spatial)`` int64 class indices, or ``None`` for a dense target.
        mask: ``(B, *spatial)`` bool voxel mask or ``None``.
        want_max: whether to compute the target's and the prediction's maxima.
    """
    batch, num_classes = logits.shape[:2]
    flat = logits.reshape(batch, num_classes, -1)
    dense = None if dense is None else dense.reshape(batch, num_classes, -1)
    label = None if label is None else label.reshape(batch, -1)
    mask = None if mask is None else mask.reshape(batch, -1)
    return FusedSoftmaxCardinalities.apply(flat, dense, label, mask, *want_max)
