"""CE + overlap compounds against a hand assembly of torch's CE/BCE and MONAI's DiceLoss(soft_label=True)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from monai_jdt.losses.compound import DiceSemimetricCELoss, JaccardMetricCELoss
from monai_jdt.losses.functional.compound import ce_overlap_loss, dice_semimetric_ce_loss, jaccard_metric_ce_loss
from monai_jdt.losses.lovasz import LovaszSoftmaxLoss
from monai_jdt.utils.errors import ShapeError

COMPOUNDS = [
    (DiceSemimetricCELoss, dice_semimetric_ce_loss, False),
    (JaccardMetricCELoss, jaccard_metric_ce_loss, True),
]


def value_and_grad(fn, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = logits.clone().requires_grad_()
    value = fn(x)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


def assert_same(fn_a, fn_b, logits: torch.Tensor) -> None:
    va, ga = value_and_grad(fn_a, logits)
    vb, gb = value_and_grad(fn_b, logits)
    torch.testing.assert_close(va, vb, rtol=1e-5, atol=1e-10)
    torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize(("module", "function", "jaccard"), COMPOUNDS)
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("include_background", [True, False])
def test_index_targets_equal_hand_assembly(module, function, jaccard: bool, batch: bool, include_background: bool):
    logits = torch.randn(2, 3, 5, 4, 3, dtype=torch.float64)
    index = torch.randint(0, 3, (2, 1, 5, 4, 3))
    dice = DiceLoss(softmax=True, to_onehot_y=True, soft_label=True, jaccard=jaccard, batch=batch,
                    include_background=include_background)  # fmt: skip

    def reference(x):
        # the CE always covers every class in the softmax form (see the module docstring)
        return 0.25 * F.cross_entropy(x, index[:, 0]) + 0.75 * dice(x, index)

    ours = module(to_onehot_y=True, batch=batch, include_background=include_background)
    assert_same(lambda x: ours(x, index), reference, logits)
    assert_same(lambda x: function(x, index, to_onehot_y=True, batch=batch, include_background=include_background),
                reference, logits)  # fmt: skip


@pytest.mark.parametrize(("module", "function", "jaccard"), COMPOUNDS)
def test_soft_targets_weights_and_lambdas(module, function, jaccard: bool) -> None:
    logits = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    soft = torch.softmax(torch.randn(2, 4, 6, 5, dtype=torch.float64) * 2, 1)
    dice_w = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=torch.float64)
    ce_w = torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64)
    dice = DiceLoss(softmax=True, soft_label=True, jaccard=jaccard, weight=dice_w, smooth_nr=1e-3, smooth_dr=1e-3)
    logp = torch.log_softmax  # soft targets with class weights: the weighted mean sum(w y -log p) / sum(w y)

    def reference(x):
        w = ce_w.view(1, 4, 1, 1)
        ce = -(w * soft * logp(x, 1)).sum() / (w * soft).sum()
        return 0.6 * ce + 0.4 * dice(x, soft)

    ours = module(lambda_ce=0.6, lambda_overlap=0.4, weight=dice_w, ce_weight=ce_w, smooth_nr=1e-3, smooth_dr=1e-3)
    assert_same(lambda x: ours(x, soft), reference, logits)
    # without weights, the CE part is exactly torch's CE on probability targets
    plain = module()
    plain(logits, soft)
    torch.testing.assert_close(plain.last_parts["ce"], F.cross_entropy(logits, soft))


@pytest.mark.parametrize(("module", "function", "jaccard"), COMPOUNDS)
def test_ignore_index_and_mask(module, function, jaccard: bool) -> None:
    logits = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    index = torch.randint(0, 3, (2, 1, 6, 6))
    index[:, :, :2] = 255
    dice = DiceLoss(softmax=True, to_onehot_y=True, soft_label=True, jaccard=jaccard, ignore_index=255)

    def reference(x):
        return 0.25 * F.cross_entropy(x, index[:, 0], ignore_index=255) + 0.75 * dice(x, index)

    ours = module(to_onehot_y=True, ignore_index=255)
    assert_same(lambda x: ours(x, index), reference, logits)
    # the same voxels excluded through a mask give the same loss
    clean = torch.where(index == 255, 0, index)
    assert_same(lambda x: module(to_onehot_y=True)(x, clean, index != 255), reference, logits)


@pytest.mark.parametrize(("module", "function", "jaccard"), COMPOUNDS)
def test_sigmoid_form_and_single_channel(module, function, jaccard: bool) -> None:
    logits = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    multi = (torch.rand(2, 3, 5, 5) > 0.5).double()
    dice = DiceLoss(sigmoid=True, soft_label=True, jaccard=jaccard, include_background=False)

    def reference(x):
        return 0.25 * F.binary_cross_entropy_with_logits(x[:, 1:], multi[:, 1:]) + 0.75 * dice(x, multi)

    assert_same(lambda x: module(sigmoid=True, include_background=False)(x, multi), reference, logits)
    # a single channel: softmax=None resolves to the sigmoid form for both terms
    one = logits[:, :1]
    target = multi[:, :1] * 0.8 + 0.1  # soft binary target

    def reference_one(x):
        return 0.25 * F.binary_cross_entropy_with_logits(x, target) + 0.75 * DiceLoss(
            sigmoid=True, soft_label=True, jaccard=jaccard
        )(x, target)

    assert_same(lambda x: function(x, target), reference_one, one)


@pytest.mark.parametrize(("module", "function", "jaccard"), COMPOUNDS)
def test_overlap_term_vanishes_at_the_soft_target(module, function, jaccard: bool) -> None:
    soft = torch.softmax(torch.randn(2, 3, 4, 4, 4, dtype=torch.float64), 1)
    loss_fn = module(smooth_nr=0.0, smooth_dr=0.0)
    total = loss_fn(soft.log(), soft)
    assert loss_fn.last_parts["overlap"].abs().item() < 1e-12
    entropy = -(soft * soft.log()).sum(1).mean()  # CE at p = y is the target entropy
    torch.testing.assert_close(loss_fn.last_parts["ce"], entropy)
    torch.testing.assert_close(total, 0.25 * entropy)


@pytest.mark.parametrize(("module", "function", "jaccard"), COMPOUNDS)
def test_gradcheck_float64(module, function, jaccard: bool) -> None:
    logits = torch.randn(2, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    soft = torch.softmax(torch.randn(2, 3, 2, 3, dtype=torch.float64), 1)
    index = torch.randint(0, 3, (2, 1, 2, 3))
    mask = torch.rand(2, 2, 3) > 0.2
    # gradcheck back-propagates one graph several times: the fused softmax kernel allows one backward only
    # (its gradients are compared with MONAI's above), so check the analytic gradients on the unfused path
    cases = [
        lambda x: function(x, soft, mask=mask, batch=True, fused=False),
        lambda x: function(x, index, to_onehot_y=True, active_classes="present", ce_weight=[1.0, 2.0, 3.0],
                           fused=False),
        lambda x: function(x, soft, sigmoid=True, include_background=False),
        lambda x: function(x, soft, other_act=lambda z: torch.softmax(z / 2, 1)),
    ]  # fmt: skip
    for fn in cases:
        assert torch.autograd.gradcheck(fn, (logits,))


@pytest.mark.parametrize(("module", "function", "jaccard"), COMPOUNDS)
def test_module_equals_function_and_parts(module, function, jaccard: bool) -> None:
    logits = torch.randn(2, 3, 6, 6, requires_grad=True)
    index = torch.randint(0, 3, (2, 1, 6, 6))
    options = {"to_onehot_y": True, "active_classes": "present", "levels": {"batch": 0.5, "image": 0.5},
               "reduction": "sum", "weight": [1.0, 2.0, 1.0]}  # fmt: skip
    loss_fn = module(**options)
    value = loss_fn(logits, index)
    assert torch.equal(value, function(logits, index, **options))
    parts = ce_overlap_loss(logits, index, overlap="jaccard" if jaccard else "dice", **options)
    assert torch.equal(loss_fn.last_parts["ce"], parts.ce.detach())
    assert torch.equal(loss_fn.last_parts["overlap"], parts.overlap.detach())
    assert not loss_fn.last_parts["ce"].requires_grad and value.requires_grad
    torch.testing.assert_close(value, 0.25 * parts.ce + 0.75 * parts.overlap)
    assert "weight" in dict(loss_fn.named_buffers())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_and_autocast(dtype: torch.dtype) -> None:
    logits = torch.randn(2, 3, 8, 8, 8)
    index = torch.randint(0, 3, (2, 1, 8, 8, 8))
    loss_fn = DiceSemimetricCELoss(to_onehot_y=True)
    ref = loss_fn(logits.to(dtype).float(), index)
    x = logits.to(dtype).requires_grad_()
    loss = loss_fn(x, index)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(x.grad.float()).all()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(JaccardMetricCELoss(to_onehot_y=True)(logits, index))


def test_all_excluded_gives_zero_with_graph() -> None:
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    index = torch.full((2, 1, 4, 4), 255)
    loss = DiceSemimetricCELoss(to_onehot_y=True, ignore_index=255, active_classes="present")(logits, index)
    assert loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_errors_have_clear_messages() -> None:
    with pytest.raises(ValueError, match="lambda_ce must be >= 0, got -1"):
        DiceSemimetricCELoss(lambda_ce=-1)
    with pytest.raises(ValueError, match="lambda_overlap must be >= 0"):
        jaccard_metric_ce_loss(torch.randn(1, 2, 4), torch.randint(0, 2, (1, 4)), to_onehot_y=True, lambda_overlap=-2)
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', got 'none'"):
        JaccardMetricCELoss(reduction="none")
    with pytest.raises(ValueError, match="take logits: set softmax=True"):
        DiceSemimetricCELoss(softmax=False)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DiceSemimetricCELoss(softmax=True, sigmoid=True)
    with pytest.raises(ValueError, match="softmax=True over a single channel"):
        DiceSemimetricCELoss(softmax=True)(torch.randn(1, 1, 4), torch.ones(1, 1, 4))
    with pytest.raises(ValueError, match="active_classes must be one of"):
        JaccardMetricCELoss(active_classes="some")
    with pytest.raises(TypeError, match="alpha"):
        DiceSemimetricCELoss(alpha=0.3)
    with pytest.raises(ValueError, match="ce_weight must hold finite values >= 0"):
        DiceSemimetricCELoss(ce_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match=r"ce_weight must have one entry per channel of the CE term \(3\), got 2"):
        DiceSemimetricCELoss(ce_weight=[1.0, 1.0], to_onehot_y=True)(torch.randn(1, 3, 4), torch.zeros(1, 1, 4))
    with pytest.raises(ShapeError):
        JaccardMetricCELoss()(torch.randn(2, 3, 4, 4), torch.rand(2, 2, 4, 4))
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\)"):
        DiceSemimetricCELoss(to_onehot_y=True)(torch.randn(1, 3, 4), torch.full((1, 1, 4), 3))


@pytest.mark.slow
def test_torch_compile_of_compound_and_lovasz_modules() -> None:
    logits = torch.randn(2, 3, 6, 6, 6)
    index = torch.randint(0, 3, (2, 1, 6, 6, 6))
    for module in (DiceSemimetricCELoss(to_onehot_y=True), LovaszSoftmaxLoss(softmax=True, to_onehot_y=True)):
        compiled = torch.compile(module)
        x = logits.clone().requires_grad_()
        value = compiled(x, index)
        value.backward()
        expected_x = logits.clone().requires_grad_()
        expected = module(expected_x, index)
        expected.backward()
        torch.testing.assert_close(value, expected)
        torch.testing.assert_close(x.grad, expected_x.grad)
