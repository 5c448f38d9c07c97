"""Fused activation + L1 cardinalities with an analytic, in-place backward (the fast path of the overlap losses).

For logits ``z`` (``B, C, N``), ``s = softmax(z, dim=1)`` or ``s = sigmoid(z)``, a target ``y`` (dense, or an
index map ``l`` with ``y_c = [l = c]``) and a voxel mask ``m``, the forward returns per image and class (float64)

    P = sum_n m s,    G = sum_n m y,    D = sum_n m |s - y|

(plus the optional maxima used by ``active_classes``). The activation is written into the one volume-sized
buffer the function keeps; ``D`` (and ``G`` for an index map) walk the voxels in blocks of about
``BLOCK_ELEMENTS`` values with reused scratch buffers, and a dense target's value range is checked in the same
pass (one ``aminmax`` per block, no separate pass over the target); sums are taken in the input's dtype and
accumulated in float64. For an index map there is no one-hot: the labels are stored once as small integers
(masked voxels get the unused label ``C``), a block's float "is this class" indicator ``y`` comes from one
``torch.eq`` into a scratch buffer, and ``D = P + G - 2 sum_n y s``.

The backward receives ``dL/dP`` and ``dL/dD`` (``B, C``) and uses ``d|s - y|/ds = sign(s - y)``:

    h = m (dL/dP + dL/dD sign(s - y)),    dL/dz = s h - s sum_c (s h)   (softmax Jacobian-vector product)
                                          dL/dz = h s (1 - s)           (sigmoid)

written block by block into the saved activation buffer, which is returned as the gradient. For an index map
``sign(s - y) = 1 - 2 y`` (where ``s`` is exactly 0 or 1 the two differ, but ``dL/dz`` does not beyond the
rounding of a saturated activation). When the backward keeps the graph (``retain_graph=True``, as ``gradcheck``
does) the gradient goes to a copy, so the graph can be back-propagated again; on a torch that cannot report
``retain_graph``, a second backward raises a ``RuntimeError``. Double backward is not supported (``fused=False``).

On CPU the function runs the native kernel (:mod:`._native`: the same formulas in C, one OpenMP pass per
direction) where it is built and the tensors fit it. Otherwise the blocks above are shared out to single-threaded
workers (:mod:`._threads`); only plain torch operations are used there, so the same code runs on CUDA (in the
calling thread, with larger blocks).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import torch

from monai_jdt.losses.functional import _native
from monai_jdt.losses.functional._threads import parallel_map, split_range, worker_count
from monai_jdt.utils.targets import check_target_values, target_range_ok

__all__ = ["BLOCK_ELEMENTS", "FusedCardinalities", "fused_stats"]

#: values per block on CPU (a block's few operands stay in cache); CUDA uses CUDA_BLOCK_ELEMENTS.
BLOCK_ELEMENTS = 1 << 18
CUDA_BLOCK_ELEMENTS = 1 << 22  # few kernel launches, scratch of at most 16 MiB (float32)

_SECOND_BACKWARD = (
    "the fused soft-label overlap loss (softmax/sigmoid, ord=1) writes its gradient into its saved activation "
    "buffer, and this torch cannot tell whether retain_graph was requested, so the graph can be back-propagated once; "
    "recompute the loss, or build it with fused=False to call backward twice"
)


class _Plan:
    """Block layout and per-block views of the target and the mask, shared by the forward and the backward."""

    def __init__(self, probs: torch.Tensor, dense: torch.Tensor | None, label: torch.Tensor | None, mask: Any):
        batch, num_classes, n = probs.shape
        budget = CUDA_BLOCK_ELEMENTS if probs.device.type == "cuda" else BLOCK_ELEMENTS
        self.step = min(n, max(256, budget // (batch * num_classes)))
        self.probs, self.dense, self.label, self.mask = probs, dense, label, mask
        self.workers = worker_count(probs.device)
        self.classes = None
        if label is not None:
            self.classes = torch.arange(num_classes, dtype=label.dtype, device=probs.device).view(1, num_classes, 1)

    def scratch(self, rows: int | None = None) -> torch.Tensor:
        batch, num_classes, _ = self.probs.shape
        rows = num_classes if rows is None else rows
        return torch.empty(batch, rows, self.step, dtype=self.probs.dtype, device=self.probs.device)

    def map(self, fn: Any) -> list[Any]:
        """Run ``fn(lo, hi)`` over contiguous, block-aligned voxel ranges (one per worker)."""
        return parallel_map(fn, split_range(self.probs.shape[2], self.step, self.workers), self.workers)

    def blocks(self, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        for start in range(lo, hi, self.step):
            yield start, min(hi, start + self.step)

    def indicator(self, start: int, stop: int, buf: torch.Tensor) -> torch.Tensor:
        """The block's float one-hot ``y`` of an index map, written into ``buf``."""
        return torch.eq(self.label[:, None, start:stop], self.classes, out=buf[..., : stop - start])

    def mask_column(self, start: int, stop: int) -> torch.Tensor | None:
        """The block's mask as a float ``(B, k, 1)`` column (for ``bmm``), or ``None``."""
        return None if self.mask is None else self.mask[..., start:stop].transpose(1, 2)


def _sum(v: torch.Tensor, column: torch.Tensor | None) -> torch.Tensor:
    return v.sum(-1) if column is None else torch.bmm(v, column)[..., 0]


def _amax(v: torch.Tensor, column: torch.Tensor | None) -> torch.Tensor:
    return v.amax(-1) if column is None else (v * column.transpose(1, 2)).amax(-1)


def _forward_part(plan: _Plan, want_max: tuple[bool, bool], lo: int, hi: int):
    """Partial sums ``(P, G, D)`` (``D`` is ``sum y s`` for an index map), maxima and target range of ``[lo, hi)``."""
    probs, dense = plan.probs, plan.dense
    batch, num_classes = probs.shape[:2]  # float64 accumulators of the block sums
    card_pred, card_target, third = torch.zeros(3, batch, num_classes, dtype=torch.float64, device=probs.device)
    maxima = torch.zeros(2, *probs.shape[:2], dtype=probs.dtype, device=probs.device)
    buf, extrema = plan.scratch(), []
    for start, stop in plan.blocks(lo, hi):
        s_blk, column = probs[..., start:stop], plan.mask_column(start, stop)
        card_pred += _sum(s_blk, column)
        if want_max[1]:
            torch.maximum(maxima[1], _amax(s_blk, column), out=maxima[1])
        if dense is None:  # index map: G and the overlap sum(y s); masked voxels carry the unused label
            y = plan.indicator(start, stop, buf)
            card_target += y.sum(-1)
            third += y.mul_(s_blk).sum(-1)
            continue
        y = dense[..., start:stop]
        extrema.append(torch.stack(torch.aminmax(y)))
        card_target += _sum(y, column)
        third += _sum(torch.sub(s_blk, y, out=buf[..., : stop - start]).abs_(), column)
        if want_max[0]:
            torch.maximum(maxima[0], _amax(y, column), out=maxima[0])
    return torch.stack((card_pred, card_target, third)), maxima, extrema


def _forward(plan: _Plan, want_max: tuple[bool, bool]) -> list[torch.Tensor]:
    parts = plan.map(partial(_forward_part, plan, want_max))
    extrema = torch.stack([e for p in parts for e in p[2]]) if plan.dense is not None else None
    if extrema is not None and not target_range_ok(extrema[:, 0].min(), extrema[:, 1].max()):
        check_target_values(plan.dense)  # raises the ValueError that names the range
    card_pred, card_target, third = sum(p[0] for p in parts).unbind(0)
    maxima = torch.stack([p[1] for p in parts]).amax(0)
    if plan.dense is None:
        return _outputs(card_pred, card_target, card_pred + card_target - 2 * third, maxima, index_target=True)
    return _outputs(card_pred, card_target, third, maxima, index_target=False)


def _outputs(
    card_pred: torch.Tensor, card_target: torch.Tensor, diff: torch.Tensor, maxima: torch.Tensor, index_target: bool
) -> list[torch.Tensor]:
    """``[P, G, D, target_max, pred_max]``; an index map's target maximum is whether the class occurs at all."""
    maxima = maxima.to(torch.float64)
    target_max = (card_target > 0).double() if index_target else maxima[0]
    return [card_pred, card_target, diff, target_max, maxima[1]]


def _native_forward(
    logits: torch.Tensor,
    dense: torch.Tensor | None,
    label: torch.Tensor | None,
    mask: Any,
    want_max: tuple[bool, bool],
    softmax: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The activation buffer and the outputs of :func:`_forward`, from the native kernel (one OpenMP pass)."""
    probs, sums, maxima, extrema = _native.forward(logits, dense, label, mask, softmax, any(want_max))
    if dense is not None and (bool(extrema[2] > 0) or not target_range_ok(extrema[0], extrema[1])):
        check_target_values(dense)  # raises the ValueError that names the range
    return probs, _outputs(*sums.unbind(0), maxima, index_target=label is not None)


def _backward_part(plan: _Plan, softmax: bool, g_p: torch.Tensor, g_d: torch.Tensor, lo: int, hi: int) -> None:
    """Overwrite ``plan.probs[..., lo:hi]`` with dL/dz (``g_p``, ``g_d``: ``(B, C, 1)``)."""
    probs = plan.probs
    buf, prod_buf, dot_buf = plan.scratch(), plan.scratch(), plan.scratch(rows=1)
    ones = torch.ones(probs.shape[0], 1, probs.shape[1], dtype=probs.dtype, device=probs.device)
    for start, stop in plan.blocks(lo, hi):
        k = stop - start
        s_blk = probs[..., start:stop]
        if plan.label is not None:
            h = plan.indicator(start, stop, buf)
        else:
            h = torch.sub(s_blk, plan.dense[..., start:stop], out=buf[..., :k]).sign_()
        h.mul_(g_d).add_(g_p)
        if plan.mask is not None:
            h.mul_(plan.mask[..., start:stop])
        if not softmax:  # sigmoid: h s (1 - s)
            slope = torch.addcmul(s_blk, s_blk, s_blk, value=-1, out=prod_buf[..., :k])
            torch.mul(h, slope, out=s_blk)
            continue
        prod = torch.mul(s_blk, h, out=prod_buf[..., :k])
        dot = torch.bmm(ones, prod, out=dot_buf[..., :k])
        torch.addcmul(prod, s_blk, dot, value=-1, out=s_blk)


def _graph_is_kept() -> bool:
    """Whether the running backward keeps the graph (``retain_graph=True``); ``False`` if torch cannot tell."""
    keep_graph = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return bool(keep_graph()) if keep_graph is not None else False


class FusedCardinalities(torch.autograd.Function):
    """``(P, G, D, target_max, pred_max)`` of ``softmax(logits, 1)`` or ``sigmoid(logits)``; see the module doc."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        logits: torch.Tensor,
        dense: torch.Tensor | None,
        label: torch.Tensor | None,
        mask: torch.Tensor | None,
        want_target_max: bool,
        want_pred_max: bool,
        softmax: bool,
    ) -> tuple[torch.Tensor, ...]:
        # one parallel pass; the buffer is kept and becomes the gradient
        ctx.native = _native.supports(logits, label)
        if ctx.native:
            probs, outputs = _native_forward(logits, dense, label, mask, (want_target_max, want_pred_max), softmax)
        else:
            probs = torch.softmax(logits, 1) if softmax else torch.sigmoid(logits)
            outputs = _forward(_Plan(probs, dense, label, mask), (want_target_max, want_pred_max))
        ctx.save_for_backward(probs, dense, label, mask)
        ctx.softmax = softmax
        ctx.consumed = False
        ctx.mark_non_differentiable(outputs[1], outputs[3], outputs[4])
        return tuple(outputs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_pred: torch.Tensor | None, *grads: torch.Tensor | None) -> tuple[Any, ...]:
        if ctx.consumed:
            raise RuntimeError(_SECOND_BACKWARD)
        probs, dense, label, mask = ctx.saved_tensors
        kept = _graph_is_kept()  # retain_graph=True: keep the saved buffer intact for the next backward
        ctx.consumed = not kept
        zeros = torch.zeros(probs.shape[:2], dtype=probs.dtype, device=probs.device)
        g_p = zeros if grad_pred is None else grad_pred.to(probs.dtype)
        g_d = zeros if grads[1] is None else grads[1].to(probs.dtype)
        if ctx.native:
            grad = torch.empty_like(probs) if kept else probs
            _native.backward(probs, grad, dense, label, mask, ctx.softmax, g_p, g_d)
            return grad, None, None, None, None, None, None
        if kept:
            probs = probs.clone()
        if label is not None:  # h = (g_p + g_d) - 2 g_d y
            g_p, g_d = g_p + g_d, -2 * g_d
        plan = _Plan(probs, dense, label, mask)
        plan.map(partial(_backward_part, plan, ctx.softmax, g_p[..., None], g_d[..., None]))
        return probs, None, None, None, None, None, None


def _small_labels(label: torch.Tensor, mask: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """Labels as uint8 (int32 from 255 classes on) with the unused label ``C`` on masked voxels."""
    dtype = torch.uint8 if num_classes < 255 else torch.int32
    if mask is None:
        return label.to(dtype)
    return torch.where(mask, label, num_classes).to(dtype)


def fused_stats(
    logits: torch.Tensor,
    dense: torch.Tensor | None,
    label: torch.Tensor | None,
    mask: torch.Tensor | None,
    *,
    want_max: tuple[bool, bool],
    softmax: bool = True,
) -> tuple[torch.Tensor, ...]:
    """Flatten to ``(B, C, N)`` and run :class:`FusedCardinalities`.

    Args:
        logits: ``(B, C, *spatial)`` floating logits.
        dense: ``(B, C, *spatial)`` target with ``logits``' dtype, or ``None`` for an index map.
        label: ``(B, *spatial)`` int64 class indices, or ``None`` for a dense target.
        mask: ``(B, *spatial)`` bool voxel mask or ``None``.
        want_max: whether to compute the target's and the prediction's maxima (``active_classes``).
        softmax: softmax over the channels (``True``) or an element-wise sigmoid (``False``).

    Returns:
        ``P, G, D, target_max, pred_max``, each ``(B, C)`` float64.
    """
    batch, num_classes = logits.shape[:2]
    flat = logits.reshape(batch, num_classes, -1).contiguous()
    mask = None if mask is None else mask.reshape(batch, 1, -1).contiguous()
    if label is not None:
        label = _small_labels(label.reshape(batch, -1), None if mask is None else mask[:, 0], num_classes).contiguous()
    if dense is not None:
        dense = dense.reshape(batch, num_classes, -1).contiguous()
    mask_f = None if mask is None else mask.to(logits.dtype)
    return FusedCardinalities.apply(flat, dense, label, mask_f, *want_max, softmax)
