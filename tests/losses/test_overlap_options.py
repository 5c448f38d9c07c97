"""Options beyond MONAI (levels, active classes, log/focal, class-agnostic, L^p, masks) against a loop reference."""

from __future__ import annotations

import warnings

import pytest
import torch

from monai_jdt.losses import CompatibleTverskyLoss, DiceSemimetricLoss, JaccardMetricLoss
from monai_jdt.losses.functional import compatible_tversky_loss, dice_semimetric_loss, jaccard_metric_loss
from tests.losses._overlap_reference import reference_loss

B, C, SPATIAL = 3, 4, (5, 6)
KINDS = {
    "dml": (DiceSemimetricLoss, dice_semimetric_loss, {}, (0.5, 0.5, 2.0)),
    "jml": (JaccardMetricLoss, jaccard_metric_loss, {}, (1.0, 1.0, 2.0)),
    "ctl": (CompatibleTverskyLoss, compatible_tversky_loss, {"alpha": 0.2, "beta": 0.9}, (0.2, 0.9, 1.0)),
}


def _data(target_kind: str, seed: int = 0):
    """Logits, a target in which some classes are absent from some images, and a random mask."""
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(B, C, *SPATIAL, dtype=torch.float64, generator=g)
    labels = torch.randint(0, C - 1, (B, *SPATIAL), generator=g)  # class C-1 never appears
    labels[0][labels[0] == 1] = 0  # class 1 absent from image 0
    if target_kind == "index":
        target = labels[:, None]
        dense = torch.nn.functional.one_hot(labels, C).movedim(-1, 1).double()
    else:
        dense = torch.softmax(3 * torch.randn(B, C, *SPATIAL, dtype=torch.float64, generator=g), 1)
        dense[:, C - 1] *= 0.001  # a class that stays below the "present" threshold
        dense[:, 0] = 1 - dense[:, 1:].sum(1)
        target = dense
    mask = torch.rand(B, *SPATIAL, generator=g) > 0.3
    return logits, target, dense, mask


SCENARIOS = [
    {},
    {"levels": {"batch": 1.0}},
    {"levels": {"class": 1.0}},
    {"levels": {"batch": 0.5, "image": 0.5}},
    {"levels": {"image": 0.3, "class": 0.7}, "reduction": "sum"},
    {"levels": {"batch": 1.0}, "reduction": "sum"},
    {"active_classes": "present"},
    {"active_classes": "present", "levels": {"class": 1.0}},
    {"active_classes": "present", "levels": {"batch": 0.25, "image": 0.25, "class": 0.5}},
    {"active_classes": "prob", "active_threshold": 0.3},
    {"active_classes": "both", "active_threshold": 0.2, "levels": {"batch": 1.0}},
    {"log_loss": True},
    {"gamma": 2.0},
    {"gamma": 1.5, "log_loss": True, "active_classes": "present"},
    {"weight": [0.5, 1.0, 2.0, 0.0]},
    {"weight": [0.5, 1.0, 2.0, 3.0], "class_agnostic": True},
    {"class_agnostic": True, "levels": {"batch": 0.5, "class": 0.5}},
    {"class_agnostic": True, "active_classes": "present", "levels": {"image": 1.0}},
    {"smooth_nr": 1.0, "smooth_dr": 1.0, "active_classes": "present"},
    {"smooth_nr": 0.0, "smooth_dr": 0.0},
    {"include_background": False, "weight": [1.0, 2.0, 0.5]},
    {"include_background": False, "active_classes": "present", "levels": {"class": 1.0}},
    {"ord": 2},
    {"ord": 1.5, "levels": {"batch": 1.0}},
]


def _reference(kind, logits, dense, mask, opts):
    alpha, beta, k = KINDS[kind][3]
    s = torch.softmax(logits, 1)
    y = dense
    if not opts.get("include_background", True):
        s, y = s[:, 1:], y[:, 1:]
    flat = s.reshape(s.shape[0], s.shape[1], -1)
    return reference_loss(
        flat,
        y.reshape(flat.shape),
        alpha=alpha,
        beta=beta,
        k=k,
        smooth_nr=opts.get("smooth_nr", 1e-5),
        smooth_dr=opts.get("smooth_dr", 1e-5),
        p=opts.get("ord", 1),
        mask=None if mask is None else mask.reshape(mask.shape[0], -1),
        levels=opts.get("levels"),
        weight=opts.get("weight"),
        log_loss=opts.get("log_loss", False),
        gamma=opts.get("gamma", 1.0),
        class_agnostic=opts.get("class_agnostic", False),
        active=opts.get("active_classes", "all"),
        threshold=opts.get("active_threshold", 0.01),
        reduction=opts.get("reduction", "mean"),
    )


def _ours(kind, logits, target, mask, opts, *, fused, functional=False):
    cls, fn, extra, _ = KINDS[kind]
    kw = {**extra, **opts, "softmax": True, "to_onehot_y": target.shape[1] == 1, "fused": fused}
    if functional:
        return fn(logits, target, mask=mask, **kw)
    return cls(**kw)(logits, target, mask)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("target_kind", ["soft", "index"])
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("scenario", range(len(SCENARIOS)))
def test_matches_reference(kind, target_kind, use_mask, scenario):
    opts = SCENARIOS[scenario]
    logits, target, dense, mask = _data(target_kind, seed=scenario)
    mask = mask if use_mask else None
    x_ref = logits.clone().requires_grad_(True)
    expected = _reference(kind, x_ref, dense, mask, opts)
    (g_expected,) = torch.autograd.grad(expected, x_ref)
    for fused in (True, False):
        x = logits.clone().requires_grad_(True)
        value = _ours(kind, x, target, mask, opts, fused=fused)
        (grad,) = torch.autograd.grad(value, x)
        torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(grad, g_expected, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("scenario", [0, 4, 7, 12, 15, 21])
def test_function_equals_module(kind, scenario):
    opts = SCENARIOS[scenario]
    logits, target, _, mask = _data("soft", seed=scenario)
    a = _ours(kind, logits, target, mask, opts, fused=True)
    b = _ours(kind, logits, target, mask, opts, fused=True, functional=True)
    assert torch.equal(a, b)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    "opts",
    [{}, {"batch": True}, {"levels": {"class": 1.0}}, {"ord": 2}, {"ord": 3, "levels": {"batch": 0.5, "image": 0.5}}],
)
def test_zero_at_input_equal_target(kind, opts):
    """For soft probability targets the loss vanishes exactly at ``input == target`` (and only there)."""
    cls, _, extra, _ = KINDS[kind]
    y = torch.softmax(torch.randn(B, C, *SPATIAL, dtype=torch.float64), 1)
    loss = cls(**extra, **opts)
    assert float(loss(y, y)) == pytest.approx(0.0, abs=1e-12)
    other = torch.softmax(torch.randn(B, C, *SPATIAL, dtype=torch.float64), 1)
    assert float(loss(other, y)) > 1e-3


@pytest.mark.parametrize(
    ("opts", "shape"),
    [
        ({}, (B, C, 1, 1)),
        ({"batch": True}, (C, 1, 1)),
        ({"levels": {"class": 2.0}}, (C, 1, 1)),
        ({"class_agnostic": True}, (B, 1, 1, 1)),
        ({"class_agnostic": True, "levels": {"batch": 1.0}}, (1, 1, 1)),
        ({"include_background": False}, (B, C - 1, 1, 1)),
    ],
)
def test_reduction_none_shapes_and_values(opts, shape):
    logits, target, dense, mask = _data("index", seed=3)
    out = DiceSemimetricLoss(softmax=True, to_onehot_y=True, reduction="none", active_classes="present", **opts)(
        logits, target
    )
    assert out.shape == shape
    if opts.get("include_background", True):  # broadcastable against the input, as MONAI's DiceLoss
        torch.broadcast_shapes(out.shape, logits.shape)
    summed = DiceSemimetricLoss(softmax=True, to_onehot_y=True, reduction="sum", active_classes="present", **opts)
    torch.testing.assert_close(out.sum(), summed(logits, target))


def test_reduction_none_inactive_entries_are_zero():
    logits, target, _, _ = _data("index", seed=1)
    out = DiceSemimetricLoss(softmax=True, to_onehot_y=True, reduction="none", active_classes="present")(logits, target)
    assert float(out[0, 1]) == 0.0 and bool((out[:, C - 1] == 0).all())
    assert bool((out[1, :2] > 0).all())


def test_nothing_active_gives_zero_with_graph():
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    target = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    for levels in ({"image": 1.0}, {"batch": 1.0}, {"class": 1.0}):
        for fused in (True, False):
            loss = DiceSemimetricLoss(softmax=True, active_classes="present", levels=levels, fused=fused)
            value = loss(logits, target)
            assert value.requires_grad and float(value.detach()) == 0.0
            (grad,) = torch.autograd.grad(value, logits)
            assert bool((grad == 0).all())


def test_batch_flag_equals_batch_level():
    logits, target, _, mask = _data("soft")
    a = JaccardMetricLoss(softmax=True, batch=True)(logits, target, mask)
    b = JaccardMetricLoss(softmax=True, levels={"batch": 1.0})(logits, target, mask)
    assert torch.equal(a, b)


def test_dml_is_ctl_half_half_with_halved_smoothing():
    logits, target, _, _ = _data("soft")
    dml = DiceSemimetricLoss(softmax=True, smooth_nr=0.4, smooth_dr=0.6)(logits, target)
    ctl = CompatibleTverskyLoss(0.5, 0.5, softmax=True, smooth_nr=0.2, smooth_dr=0.3)(logits, target)
    jml = JaccardMetricLoss(softmax=True, smooth_nr=0.4, smooth_dr=0.6)(logits, target)
    ctl11 = CompatibleTverskyLoss(1.0, 1.0, softmax=True, smooth_nr=0.2, smooth_dr=0.3)(logits, target)
    torch.testing.assert_close(dml, ctl, rtol=1e-12, atol=0)
    torch.testing.assert_close(jml, ctl11, rtol=1e-12, atol=0)


def test_mask_channel_dim_and_ignore_index_agree():
    """``mask`` as (B, 1, ...) or (B, ...), and ``ignore_index`` on an index map, exclude the same voxels."""
    logits, target, _, mask = _data("index", seed=5)
    labels = torch.where(mask[:, None], target, torch.full_like(target, 9))
    loss = DiceSemimetricLoss(softmax=True, to_onehot_y=True, active_classes="present")
    a = loss(logits, target, mask)
    b = loss(logits, target, mask[:, None])
    c = DiceSemimetricLoss(softmax=True, to_onehot_y=True, active_classes="present", ignore_index=9)(logits, labels)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=1e-12, atol=0)


def test_target_of_other_integer_dtypes_and_float_indices():
    logits, target, _, _ = _data("index")
    loss = DiceSemimetricLoss(softmax=True, to_onehot_y=True)
    expected = loss(logits, target)
    for t in (target.to(torch.int32), target.to(torch.uint8), target.double(), target[:, 0]):
        torch.testing.assert_close(loss(logits, t), expected, rtol=0, atol=0)
    onehot = torch.nn.functional.one_hot(target[:, 0], C).movedim(-1, 1)
    torch.testing.assert_close(DiceSemimetricLoss(softmax=True)(logits, onehot), expected, rtol=1e-12, atol=0)


def test_single_channel_warnings_as_monai():
    x = torch.rand(2, 1, 4, 4)
    y = (torch.rand(2, 1, 4, 4) > 0.5).float()
    with pytest.warns(UserWarning, match="softmax=True"):
        DiceSemimetricLoss(softmax=True)(x, y)
    with pytest.warns(UserWarning, match="include_background=False"):
        DiceSemimetricLoss(include_background=False)(x, y)
    with pytest.warns(UserWarning, match="to_onehot_y=True"):
        DiceSemimetricLoss(to_onehot_y=True)(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DiceSemimetricLoss(sigmoid=True)(x, y)


def test_target_gradient_flows_for_dense_targets():
    """A dense target that requires grad (e.g. a learnt teacher) gets the gradient of the generic path."""
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    target = torch.softmax(torch.randn(2, 3, 4, 4, dtype=torch.float64), 1).requires_grad_(True)
    DiceSemimetricLoss(softmax=True)(logits, target).backward()
    assert target.grad is not None and bool(target.grad.abs().sum() > 0)


def test_monai_loss_reduction_enum_is_accepted():
    from monai.utils import LossReduction

    logits, target, _, _ = _data("soft")
    a = DiceSemimetricLoss(softmax=True, reduction=LossReduction.SUM)(logits, target)
    b = DiceSemimetricLoss(softmax=True, reduction="sum")(logits, target)
    assert torch.equal(a, b)


def test_weight_is_a_buffer_that_follows_the_module():
    loss = DiceSemimetricLoss(weight=[1.0, 2.0, 3.0, 4.0])
    assert "class_weight" in dict(loss.named_buffers())
    assert loss.to(torch.float32).class_weight.dtype == torch.float32
    assert "class_weight" in loss.state_dict()
