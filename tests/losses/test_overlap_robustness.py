"""Finite values and gradients in the corner cases; metric properties (hypothesis); low precision; compile."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_jdt.losses import CompatibleTverskyLoss, DiceSemimetricLoss, JaccardMetricLoss
from monai_jdt.losses.functional import dice_semimetric_loss, jaccard_metric_loss


def _finite_value_and_grad(loss, x, target, mask=None):
    x = x.clone().requires_grad_(True)
    value = loss(x, target, mask)
    (grad,) = torch.autograd.grad(value.sum(), x)
    assert bool(torch.isfinite(value).all()), value
    assert bool(torch.isfinite(grad).all())
    return value.detach(), grad


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("cls", [DiceSemimetricLoss, JaccardMetricLoss])
def test_empty_class_with_zero_smoothing_scores_one(fused, cls):
    """tp = fp = fn = 0 and smooth_nr = smooth_dr = 0: score 1 (loss 0) for that entry, finite gradients."""
    probs = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    probs[:, 2] = 0.0  # the prediction never shows class 2 ...
    labels = torch.randint(0, 2, (2, 4, 4))  # ... nor the target
    target = torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).double()
    loss = cls(smooth_nr=0.0, smooth_dr=0.0, reduction="none", fused=fused)
    value, _ = _finite_value_and_grad(loss, probs, target)
    assert bool((value[:, 2] == 0).all())
    assert bool((value[:, :2] > 0).all())


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("levels", [{"image": 1.0}, {"batch": 1.0}, {"class": 1.0}])
@pytest.mark.parametrize("active", ["all", "present", "both"])
@pytest.mark.parametrize("smooth", [0.0, 1e-5])
def test_all_ignored_volume(fused, levels, active, smooth):
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    labels = torch.full((2, 1, 4, 4), 255)
    loss = DiceSemimetricLoss(
        softmax=True,
        to_onehot_y=True,
        ignore_index=255,
        smooth_nr=smooth,
        smooth_dr=smooth,
        levels=levels,
        active_classes=active,
        fused=fused,
    )
    value, grad = _finite_value_and_grad(loss, logits, labels)
    assert float(value) == 0.0  # every entry is empty: score 1 ("all") or inactive
    assert bool((grad == 0).all())


@pytest.mark.parametrize("fused", [True, False])
def test_partly_ignored_image_keeps_other_images(fused):
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 1, 4, 4))
    labels[0] = 255
    loss = DiceSemimetricLoss(softmax=True, to_onehot_y=True, ignore_index=255, active_classes="present", fused=fused)
    value, grad = _finite_value_and_grad(loss, logits, labels)
    only_second = DiceSemimetricLoss(softmax=True, to_onehot_y=True, active_classes="present")(logits[1:], labels[1:])
    torch.testing.assert_close(value, only_second)
    assert bool((grad[0] == 0).all()) and bool((grad[1] != 0).any())


@pytest.mark.parametrize("fused", [True, False])
def test_tversky_alpha_zero_smooth_zero_absent_class(fused):
    """The reference code's NaN gradient case (alpha = 0, smooth = 0, a class absent from the target)."""
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    labels = torch.randint(0, 2, (2, 1, 4, 4))
    for active in ("all", "present"):
        loss = CompatibleTverskyLoss(
            0.0, 1.0, softmax=True, to_onehot_y=True, smooth_nr=0.0, smooth_dr=0.0, active_classes=active, fused=fused
        )
        _finite_value_and_grad(loss, logits, labels)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fused", [True, False])
def test_low_precision_inputs_and_autocast(dtype, fused):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 3, 1)
    image = torch.randn(2, 1, 6, 6, 6)
    labels = torch.randint(0, 3, (2, 1, 6, 6, 6))
    loss = DiceSemimetricLoss(softmax=True, to_onehot_y=True, log_loss=True, gamma=2.0, fused=fused)
    with torch.autocast("cpu", dtype=dtype):
        logits = conv(image)
        value = loss(logits, labels)
    assert logits.dtype == torch.bfloat16 or dtype == torch.float16
    assert value.dtype == torch.float32 and bool(torch.isfinite(value))
    value.backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in conv.parameters())
    # a half input is computed in float32: close to the float32 loss of the same (rounded) logits
    half = torch.randn(2, 3, 6, 6, 6).to(dtype)
    torch.testing.assert_close(loss(half, labels), loss(half.float(), labels))


def _points(n: int):
    return st.lists(st.floats(0.0, 1.0, allow_nan=False, width=64), min_size=n, max_size=n)


def _vec(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(1, 1, -1)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(_points(n), _points(n), _points(n))))
def test_jml_is_a_metric(points):
    a, b, c = (_vec(p) for p in points)

    def d(u, v):
        return float(jaccard_metric_loss(u, v, smooth_nr=0.0, smooth_dr=0.0))

    assert d(a, c) <= d(a, b) + d(b, c) + 1e-12
    assert d(a, b) == pytest.approx(d(b, a), abs=1e-12)
    assert d(a, a) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 <= d(a, b) <= 1.0 + 1e-12


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(_points(n), _points(n))))
def test_dml_is_symmetric_and_zero_only_on_the_diagonal(points):
    a, b = (_vec(p) for p in points)
    ab = float(dice_semimetric_loss(a, b, smooth_nr=0.0, smooth_dr=0.0))
    ba = float(dice_semimetric_loss(b, a, smooth_nr=0.0, smooth_dr=0.0))
    assert ab == pytest.approx(ba, abs=1e-12)
    if float((a - b).abs().sum()) > 1e-6:
        assert ab > 0.0


@pytest.mark.slow
@pytest.mark.parametrize("target_kind", ["soft", "index"])
def test_torch_compile(target_kind):
    torch._dynamo.reset()
    loss = DiceSemimetricLoss(softmax=True, to_onehot_y=target_kind == "index", active_classes="present")
    compiled = torch.compile(loss)
    logits = torch.randn(2, 3, 8, 8, 8)
    if target_kind == "index":
        target = torch.randint(0, 3, (2, 1, 8, 8, 8))
    else:
        target = torch.softmax(torch.randn(2, 3, 8, 8, 8), 1)
    results = []
    for fn in (loss, compiled):
        x = logits.clone().requires_grad_(True)
        value = fn(x, target)
        value.backward()
        results.append((value.detach(), x.grad))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("threads", [1, 2])
def test_no_grad_and_inference_mode(threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        logits = torch.randn(2, 3, 12, 11, 10)
        labels = torch.randint(0, 3, (2, 1, 12, 11, 10))
        expected = DiceSemimetricLoss(softmax=True, to_onehot_y=True, fused=False)(logits, labels)
        loss = DiceSemimetricLoss(softmax=True, to_onehot_y=True)
        with torch.no_grad():
            a = loss(logits, labels)
        with torch.inference_mode():
            b = loss(logits, labels)
        torch.testing.assert_close(a, expected.detach())
        torch.testing.assert_close(b, expected.detach())
    finally:
        torch.set_num_threads(before)
