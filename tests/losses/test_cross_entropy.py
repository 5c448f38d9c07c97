"""Soft cross-entropy against torch's cross_entropy / BCE-with-logits and hand-written formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_jdt.losses.cross_entropy import SoftCrossEntropyLoss
from monai_jdt.losses.functional.cross_entropy import soft_cross_entropy
from monai_jdt.utils.errors import ShapeError


def one_hot(index: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return F.one_hot(index, num_classes).movedim(-1, 1).to(dtype)


@pytest.mark.parametrize("shape", [(2, 4, 5), (2, 4, 3, 5), (1, 4, 2, 3, 4)])
def test_index_map_equals_torch_with_weight_and_ignore_index(shape: tuple[int, ...]) -> None:
    logits = torch.randn(*shape, dtype=torch.float64)
    index = torch.randint(0, 4, (shape[0], *shape[2:]))
    index.view(-1)[::3] = 255
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    for w in (None, weight):
        for reduction in ("mean", "sum"):
            ref = F.cross_entropy(logits, index, weight=w, ignore_index=255, reduction=reduction)
            got = soft_cross_entropy(logits, index[:, None], to_onehot_y=True, weight=w, ignore_index=255,
                                     reduction=reduction)  # fmt: skip
            torch.testing.assert_close(got, ref)
        ref = F.cross_entropy(logits, index, weight=w, ignore_index=255, reduction="none")
        got = soft_cross_entropy(logits, index, to_onehot_y=True, weight=w, ignore_index=255, reduction="none")
        torch.testing.assert_close(got, ref)


def test_probability_targets_equal_torch_and_one_hot_equals_index() -> None:
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    soft = torch.softmax(torch.randn(2, 3, 4, 4, dtype=torch.float64), 1)
    torch.testing.assert_close(soft_cross_entropy(logits, soft), F.cross_entropy(logits, soft))
    torch.testing.assert_close(
        soft_cross_entropy(logits, soft, reduction="none"), F.cross_entropy(logits, soft, reduction="none")
    )
    index = torch.randint(0, 3, (2, 4, 4))
    weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(
        soft_cross_entropy(logits, one_hot(index, 3, torch.float64), weight=weight),
        F.cross_entropy(logits, index, weight=weight),
    )


def test_weighted_soft_target_is_weighted_mean() -> None:
    logits = torch.randn(2, 3, 6, dtype=torch.float64)
    soft = torch.softmax(torch.randn(2, 3, 6, dtype=torch.float64), 1)
    w = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    logp = torch.log_softmax(logits, 1)
    numerator = -(w.view(1, 3, 1) * soft * logp).sum()
    denominator = (w.view(1, 3, 1) * soft).sum()
    torch.testing.assert_close(soft_cross_entropy(logits, soft, weight=w), numerator / denominator)
    # scale-free: the weighted mean does not change when every weight is doubled
    torch.testing.assert_close(soft_cross_entropy(logits, soft, weight=2 * w), numerator / denominator)


def test_mask_selects_voxels_for_dense_and_index_targets() -> None:
    logits = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    soft = torch.softmax(torch.randn(2, 3, 5, 5, dtype=torch.float64), 1)
    mask = torch.rand(2, 5, 5) > 0.4
    per_voxel = -(soft * torch.log_softmax(logits, 1)).sum(1)
    torch.testing.assert_close(soft_cross_entropy(logits, soft, mask[:, None]), per_voxel[mask].mean())
    index = torch.randint(0, 3, (2, 5, 5))
    ref = F.cross_entropy(logits, torch.where(mask, index, -100))
    torch.testing.assert_close(soft_cross_entropy(logits, index, mask, to_onehot_y=True), ref)


def test_dense_ignore_index_sentinel_excludes_all_zero_voxels() -> None:
    logits = torch.randn(1, 3, 6, dtype=torch.float64)
    soft = torch.softmax(torch.randn(1, 3, 6, dtype=torch.float64), 1)
    soft[..., :2] = 0
    ref = -(soft * torch.log_softmax(logits, 1)).sum(1)[..., 2:].mean()
    torch.testing.assert_close(soft_cross_entropy(logits, soft, ignore_index=-1), ref)


def test_sigmoid_form_equals_bce_with_logits() -> None:
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    soft = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(
        soft_cross_entropy(logits, soft, sigmoid=True), F.binary_cross_entropy_with_logits(logits, soft)
    )
    # single channel -> binary form without asking
    torch.testing.assert_close(
        soft_cross_entropy(logits[:, :1], soft[:, :1]), F.binary_cross_entropy_with_logits(logits[:, :1], soft[:, :1])
    )
    # weights: weighted mean over channels; no background: channel 0 dropped
    w = torch.tensor([1.0, 3.0], dtype=torch.float64)
    bce = F.binary_cross_entropy_with_logits(logits[:, 1:], soft[:, 1:], reduction="none")
    expected = (bce * w.view(1, 2, 1, 1)).sum() / (w.sum() * 2 * 16)
    torch.testing.assert_close(
        soft_cross_entropy(logits, soft, sigmoid=True, include_background=False, weight=w), expected
    )
    # index map with sigmoid: one-vs-rest targets; mask
    index = torch.randint(0, 3, (2, 4, 4))
    mask = torch.rand(2, 1, 4, 4) > 0.3
    bce = F.binary_cross_entropy_with_logits(logits, one_hot(index, 3, torch.float64), reduction="none")
    expected = bce.sum(1)[mask[:, 0]].sum() / (3 * mask.sum())
    torch.testing.assert_close(soft_cross_entropy(logits, index, mask, sigmoid=True, to_onehot_y=True), expected)


def test_all_masked_gives_zero_with_graph() -> None:
    logits = torch.randn(2, 3, 4, requires_grad=True)
    index = torch.full((2, 4), 7)
    for kwargs in ({}, {"sigmoid": True}, {"weight": [1.0, 2.0, 3.0]}):
        loss = soft_cross_entropy(logits, index, to_onehot_y=True, ignore_index=7, **kwargs)
        assert loss.item() == 0.0 and loss.requires_grad
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.equal(grad, torch.zeros_like(grad))
    # zero-weight classes only: torch gives NaN, we give 0
    index = torch.zeros(2, 4, dtype=torch.long)
    loss = soft_cross_entropy(logits, index, to_onehot_y=True, weight=[0.0, 1.0, 1.0])
    assert loss.item() == 0.0


def test_gradcheck_every_form() -> None:
    logits = torch.randn(2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    soft = torch.softmax(torch.randn(2, 3, 3, 2, dtype=torch.float64), 1)
    index = torch.randint(0, 3, (2, 1, 3, 2))
    mask = torch.rand(2, 3, 2) > 0.3
    w = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    cases = [
        lambda x: soft_cross_entropy(x, soft, mask, weight=w),
        lambda x: soft_cross_entropy(x, index, mask, to_onehot_y=True, weight=w),
        lambda x: soft_cross_entropy(x, soft, mask, sigmoid=True, include_background=False),
    ]
    for fn in cases:
        assert torch.autograd.gradcheck(fn, (logits,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_and_autocast(dtype: torch.dtype) -> None:
    logits = torch.randn(2, 3, 8, 8) * 20  # large logits: naive softmax-then-log would overflow/underflow
    soft = torch.softmax(torch.randn(2, 3, 8, 8), 1)
    ref = F.cross_entropy(logits.to(dtype).float(), soft.to(dtype).float())
    x = logits.to(dtype).requires_grad_()
    loss = soft_cross_entropy(x, soft.to(dtype))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(x.grad.float()).all()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = SoftCrossEntropyLoss(sigmoid=True)(logits, soft)
    assert torch.isfinite(out)


def test_module_equals_function_and_weight_is_a_buffer() -> None:
    logits = torch.randn(2, 3, 4, 4)
    index = torch.randint(0, 3, (2, 1, 4, 4))
    module = SoftCrossEntropyLoss(to_onehot_y=True, weight=[1.0, 2.0, 3.0], ignore_index=0, reduction="sum")
    assert "weight" in dict(module.named_buffers())
    expected = soft_cross_entropy(logits, index, to_onehot_y=True, weight=[1.0, 2.0, 3.0], ignore_index=0,
                                  reduction="sum")  # fmt: skip
    assert torch.equal(module(logits, index), expected)
    assert module.double().weight.dtype == torch.float64


def test_errors_have_clear_messages() -> None:
    logits = torch.randn(2, 3, 4, 4)
    soft = torch.softmax(torch.randn(2, 3, 4, 4), 1)
    with pytest.raises(ValueError, match="include_background=False is only defined for the sigmoid form"):
        soft_cross_entropy(logits, soft, include_background=False)
    with pytest.raises(ValueError, match=r"weight must have one entry per class of the softmax form \(3\), got 2"):
        soft_cross_entropy(logits, soft, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="weight must hold finite values >= 0"):
        SoftCrossEntropyLoss(weight=[1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        SoftCrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"target probabilities must be in \[0, 1\]"):
        soft_cross_entropy(logits, soft * 2)
    with pytest.raises(ShapeError, match="pass to_onehot_y=True"):
        soft_cross_entropy(logits, soft[:, :1])
    with pytest.raises(AssertionError):
        soft_cross_entropy(logits, soft[..., :3])
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\) or equal to ignore_index=255"):
        soft_cross_entropy(logits, torch.full((2, 4, 4), 3), to_onehot_y=True, ignore_index=255)
    with pytest.raises(TypeError, match="sigmoid must be a bool"):
        SoftCrossEntropyLoss(sigmoid="yes")


def test_half_precision_logits_do_not_round_soft_targets() -> None:
    """bfloat16 logits are computed in float32; the soft target must not be rounded to bfloat16 on the way."""
    from monai_jdt.losses.functional import soft_cross_entropy

    logits = torch.randn(2, 3, 8, 8).to(torch.bfloat16)
    target = torch.softmax(torch.randn(2, 3, 8, 8, dtype=torch.float64), 1).float()
    expected = -(target * torch.log_softmax(logits.float(), 1)).sum(1).mean()
    got = soft_cross_entropy(logits, target)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
