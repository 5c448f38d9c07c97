"""float64 ``gradcheck`` for every option family, and the fused kernel against the generic autograd path."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from monai_jdt.losses import CompatibleTverskyLoss, DiceSemimetricLoss, JaccardMetricLoss
from monai_jdt.losses.functional import _overlap_fused

FAMILIES = {
    "plain": {},
    "log_loss": {"log_loss": True},
    "gamma": {"gamma": 2.5},
    "class_agnostic": {"class_agnostic": True, "weight": [0.3, 1.0, 2.0]},
    "active_present": {"active_classes": "present", "levels": {"class": 1.0}},
    "active_prob": {"active_classes": "prob", "active_threshold": 0.05},
    "active_both": {"active_classes": "both", "levels": {"batch": 1.0}},
    "levels": {"levels": {"batch": 0.2, "image": 0.3, "class": 0.5}},
    "ord2": {"ord": 2},
    "ord_1_5": {"ord": 1.5, "smooth_nr": 0.0, "smooth_dr": 0.0},
    "weight": {"weight": [0.2, 0.0, 1.7], "reduction": "sum"},
    "no_background": {"include_background": False, "batch": True},
}


def _data(target_kind: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 3, 2, dtype=torch.float64, generator=g)
    labels = torch.randint(0, 3, (2, 1, 3, 2), generator=g)
    if target_kind == "index":
        return logits, labels
    return logits, torch.softmax(2 * torch.randn(2, 3, 3, 2, dtype=torch.float64, generator=g), 1)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("target_kind", ["soft", "index"])
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck(family, target_kind, fused):
    logits, target = _data(target_kind)
    opts = FAMILIES[family]
    loss = CompatibleTverskyLoss(0.4, 0.8, softmax=True, to_onehot_y=target_kind == "index", fused=fused, **opts)
    logits.requires_grad_(True)
    assert gradcheck(lambda z: loss(z, target), (logits,), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("act", [{"sigmoid": True}, {"other_act": torch.tanh}, {}])
def test_gradcheck_other_activations(act):
    logits, target = _data("soft", seed=1)
    x = logits if act else torch.rand(2, 3, 3, 2, dtype=torch.float64)
    loss = JaccardMetricLoss(levels={"batch": 0.5, "image": 0.5}, **act)
    assert gradcheck(lambda z: loss(z, target), (x.requires_grad_(True),), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("target_kind", ["soft", "index"])
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_mask_and_ignore_index(target_kind, fused, kernel):
    logits, target = _data(target_kind, seed=2)
    mask = torch.tensor([[[1, 0], [1, 1], [0, 1]], [[0, 0], [1, 1], [1, 0]]], dtype=torch.bool)
    if target_kind == "index":
        target = target.clone()
        target[0, 0, 0, 0] = 255
        loss = DiceSemimetricLoss(softmax=True, to_onehot_y=True, ignore_index=255, fused=fused)
    else:
        loss = DiceSemimetricLoss(softmax=True, fused=fused, active_classes="present")
    assert gradcheck(lambda z: loss(z, target, mask), (logits.requires_grad_(True),), eps=1e-6, atol=1e-8)


def test_gradcheck_soft_target_side():
    """The generic path is differentiable in the (soft) target too, e.g. for a trainable teacher."""
    logits, target = _data("soft", seed=3)
    loss = DiceSemimetricLoss(softmax=True, levels={"batch": 0.5, "class": 0.5})
    assert gradcheck(lambda t: loss(logits, t), (target.requires_grad_(True),), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("target_kind", ["soft", "index"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("cls", [DiceSemimetricLoss, JaccardMetricLoss])
@pytest.mark.parametrize("act", ["softmax", "sigmoid"])
def test_fused_equals_generic_on_multi_block_volume(target_kind, masked, cls, act, kernel, monkeypatch):
    """Several blocks (a short last one included): same values and gradients as the generic path."""
    monkeypatch.setattr(_overlap_fused, "BLOCK_ELEMENTS", 4096)
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 4, 23, 19, 7, dtype=torch.float64, generator=g)
    if target_kind == "index":
        target = torch.randint(0, 4, (2, 1, 23, 19, 7), generator=g)
    else:
        target = torch.softmax(torch.randn(2, 4, 23, 19, 7, dtype=torch.float64, generator=g), 1)
    mask = (torch.rand(2, 23, 19, 7, generator=g) > 0.2) if masked else None
    results = []
    for fused in (True, False):
        x = logits.clone().requires_grad_(True)
        loss = cls(to_onehot_y=target_kind == "index", active_classes="both", fused=fused, **{act: True})
        value = loss(x, target, mask)
        assert _has_fused_node(value.grad_fn) == fused
        value.backward()
        results.append((value.detach(), x.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=0)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-10, atol=1e-16)


@pytest.mark.parametrize("target_kind", ["soft", "index"])
@pytest.mark.parametrize("family", ["plain", "levels", "active_both", "class_agnostic"])
def test_gradcheck_fused_sigmoid(target_kind, family, kernel):
    logits, target = _data(target_kind, seed=9)
    loss = DiceSemimetricLoss(sigmoid=True, to_onehot_y=target_kind == "index", **FAMILIES[family])
    logits.requires_grad_(True)
    assert _has_fused_node(loss(logits, target).grad_fn)
    assert gradcheck(lambda z: loss(z, target), (logits,), eps=1e-6, atol=1e-8)


def test_fused_sigmoid_single_channel_binary(kernel):
    g = torch.Generator().manual_seed(10)
    logits = torch.randn(2, 1, 9, 8, dtype=torch.float64, generator=g)
    target = (torch.rand(2, 1, 9, 8, generator=g) > 0.6).double()
    values = []
    for fused in (True, False):
        x = logits.clone().requires_grad_(True)
        value = JaccardMetricLoss(sigmoid=True, fused=fused, batch=True)(x, target)
        value.backward()
        values.append((value.detach(), x.grad))
    torch.testing.assert_close(values[0][0], values[1][0], rtol=1e-12, atol=0)
    torch.testing.assert_close(values[0][1], values[1][1], rtol=1e-10, atol=1e-16)


def test_fused_path_is_used_and_retain_graph_keeps_the_buffer(kernel):
    logits, target = _data("soft", seed=5)
    x = logits.clone().requires_grad_(True)
    value = DiceSemimetricLoss(softmax=True)(x, target)
    assert _has_fused_node(value.grad_fn)
    assert not _has_fused_node(DiceSemimetricLoss(softmax=True, fused=False)(x, target).grad_fn)
    value.backward(retain_graph=True)
    first = x.grad.clone()
    value.backward()
    torch.testing.assert_close(x.grad, 2 * first, rtol=1e-12, atol=0)
    with pytest.raises(RuntimeError, match="second time"):
        value.backward()  # torch's own error: the saved buffers were freed


def test_second_backward_raises_when_retain_graph_is_unknown(kernel, monkeypatch):
    """On a torch that cannot report ``retain_graph`` the consumed buffer is detected with a clear error."""
    monkeypatch.setattr(_overlap_fused, "_graph_is_kept", lambda: False)
    logits, target = _data("index", seed=6)
    x = logits.clone().requires_grad_(True)
    value = DiceSemimetricLoss(softmax=True, to_onehot_y=True)(x, target)
    value.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="fused=False"):
        value.backward()


def test_double_backward_needs_fused_false():
    logits, target = _data("soft", seed=7)
    x = logits.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(DiceSemimetricLoss(softmax=True, fused=False)(x, target), x, create_graph=True)
    g.sum().backward()  # the generic path is twice differentiable
    x.grad = None
    (g,) = torch.autograd.grad(DiceSemimetricLoss(softmax=True)(x, target), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def _has_fused_node(fn, depth: int = 0) -> bool:
    if fn is None or depth > 30:
        return False
    if "FusedCardinalities" in type(fn).__name__:
        return True
    return any(_has_fused_node(child, depth + 1) for child, _ in fn.next_functions)


@pytest.mark.parametrize("target_kind", ["soft", "index"])
def test_fused_worker_threads_equal_generic(target_kind, two_threads, kernel, monkeypatch):
    """With 2 intra-op threads the CPU kernel shares its blocks out to 2 threads (a thread boundary inside an image)."""
    monkeypatch.setattr(_overlap_fused, "BLOCK_ELEMENTS", 2048)
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(3, 4, 17, 13, 11, dtype=torch.float64, generator=g)
    if target_kind == "index":
        target = torch.randint(0, 4, (3, 1, 17, 13, 11), generator=g)
    else:
        target = torch.softmax(torch.randn(3, 4, 17, 13, 11, dtype=torch.float64, generator=g), 1)
    mask = torch.rand(3, 17, 13, 11, generator=g) > 0.1
    results = []
    for fused in (True, False):
        x = logits.clone().requires_grad_(True)
        loss = JaccardMetricLoss(softmax=True, to_onehot_y=target_kind == "index", active_classes="both", fused=fused)
        value = loss(x, target, mask)
        value.backward()
        results.append((value.detach(), x.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=0)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-10, atol=1e-16)
    assert torch.get_num_threads() == 2  # the pool's per-thread setting did not leak into the caller
