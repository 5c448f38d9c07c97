"""The native CPU kernel of the fused overlap loss: when it runs, and that it equals the generic autograd path."""

from __future__ import annotations

import pytest
import torch

from monai_jdt.losses import DiceSemimetricLoss, JaccardMetricLoss
from monai_jdt.losses.functional import _native


@pytest.fixture
def native_calls(native_kernel, monkeypatch):
    """Count the native forward calls (and make small volumes use every thread)."""
    calls = []
    original = _native.forward

    def spy(*args, **kwargs):
        calls.append(args[0].dtype)
        return original(*args, **kwargs)

    monkeypatch.setattr(_native, "forward", spy)
    return calls


def _run(loss, logits, target, mask=None):
    x = logits.clone().requires_grad_(True)
    value = loss(x, target, mask)
    value.backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("act", ["softmax", "sigmoid"])
@pytest.mark.parametrize("target_kind", ["soft", "index"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("active", ["all", "both"])
def test_native_equals_generic_float64(act, target_kind, masked, active, native_calls, two_threads):
    """Three images split over two threads mid-image, 2431 voxels (a short last tile): same values and gradients."""
    g = torch.Generator().manual_seed(11)
    logits = 3 * torch.randn(3, 5, 17, 13, 11, dtype=torch.float64, generator=g)
    if target_kind == "index":
        target = torch.randint(0, 5, (3, 1, 17, 13, 11), generator=g)
    else:
        target = torch.softmax(torch.randn(3, 5, 17, 13, 11, dtype=torch.float64, generator=g), 1)
    mask = (torch.rand(3, 17, 13, 11, generator=g) > 0.3) if masked else None
    kwargs = {act: True, "to_onehot_y": target_kind == "index", "active_classes": active, "active_threshold": 0.9}
    fused = _run(JaccardMetricLoss(**kwargs), logits, target, mask)
    assert native_calls == [torch.float64]
    generic = _run(JaccardMetricLoss(fused=False, **kwargs), logits, target, mask)
    torch.testing.assert_close(fused[0], generic[0], rtol=1e-12, atol=0)
    torch.testing.assert_close(fused[1], generic[1], rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("target_kind", ["soft", "index"])
def test_native_float32_is_close_to_float64(target_kind, native_calls, two_threads):
    """float32 (the kernel's own exp): within 1e-6 of the float64 loss; gradients within 1e-5 of their largest value."""
    g = torch.Generator().manual_seed(12)
    logits = 4 * torch.randn(2, 3, 40, 40, 41, dtype=torch.float64, generator=g)
    if target_kind == "index":
        target64 = target32 = torch.randint(0, 3, (2, 1, 40, 40, 41), generator=g)
    else:
        target64 = torch.softmax(torch.randn(2, 3, 40, 40, 41, dtype=torch.float64, generator=g), 1)
        target32 = target64.float()
    loss = DiceSemimetricLoss(softmax=True, to_onehot_y=target_kind == "index", fused=False)
    value64, grad64 = _run(loss, logits, target64)
    loss32 = DiceSemimetricLoss(softmax=True, to_onehot_y=target_kind == "index")
    value32, grad32 = _run(loss32, logits.float(), target32)
    assert native_calls == [torch.float32]
    assert abs(float(value32) - float(value64)) < 1e-6
    torch.testing.assert_close(grad32.double(), grad64, rtol=0, atol=1e-5 * float(grad64.abs().max()))


def test_extreme_logits_stay_finite(native_calls):
    """Logit gaps beyond float32's exp range: probabilities 0/1 as in torch, no NaN or inf."""
    logits = torch.tensor([[[300.0, -300.0, 0.0, 88.0]], [[-300.0, 300.0, 0.0, -88.0]]]).permute(1, 0, 2)
    target = torch.tensor([[[1.0, 0.0, 0.5, 1.0]], [[0.0, 1.0, 0.5, 0.0]]]).permute(1, 0, 2)
    for act in ("softmax", "sigmoid"):
        fused = _run(DiceSemimetricLoss(**{act: True}), logits, target)
        generic = _run(DiceSemimetricLoss(fused=False, **{act: True}), logits, target)
        assert torch.isfinite(fused[0]) and torch.isfinite(fused[1]).all()
        torch.testing.assert_close(fused[0], generic[0], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(fused[1], generic[1], rtol=1e-5, atol=1e-7)
    assert len(native_calls) == 2


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("more classes than MAX_CLASSES", lambda: (torch.randn(1, _native.MAX_CLASSES + 1, 6, 6), "soft")),
        ("MONAI_JDT_NATIVE=0", lambda: (torch.randn(1, 3, 6, 6), "off")),
    ],
)
def test_unsupported_inputs_use_the_torch_kernel(case, make, native_calls, monkeypatch):
    logits, how = make()
    if how == "off":
        monkeypatch.setenv(_native.ENV_VAR, "0")
    target = torch.softmax(torch.randn(logits.shape), 1).to(logits.dtype)
    fused = _run(DiceSemimetricLoss(softmax=True), logits, target)
    generic = _run(DiceSemimetricLoss(softmax=True, fused=False), logits, target)
    assert native_calls == [], case
    torch.testing.assert_close(fused[0], generic[0], rtol=1e-5, atol=1e-6)


def test_channels_last_input_is_made_contiguous(native_calls):
    g = torch.Generator().manual_seed(13)
    logits = torch.randn(2, 3, 9, 8, 7, dtype=torch.float64, generator=g)
    target = torch.softmax(torch.randn(2, 3, 9, 8, 7, dtype=torch.float64, generator=g), 1)
    strided = _run(DiceSemimetricLoss(softmax=True), logits.to(memory_format=torch.channels_last_3d), target)
    generic = _run(DiceSemimetricLoss(softmax=True, fused=False), logits, target)
    torch.testing.assert_close(strided[0], generic[0], rtol=1e-12, atol=0)
    torch.testing.assert_close(strided[1], generic[1], rtol=1e-10, atol=1e-15)
    assert native_calls == [torch.float64]
