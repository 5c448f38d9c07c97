"""DML / JML / CTL equal MONAI's soft-label Dice / Jaccard / Tversky losses wherever the options overlap."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from monai.losses import DiceLoss, TverskyLoss

from monai_jdt.losses import CompatibleTverskyLoss, DiceSemimetricLoss, JaccardMetricLoss
from tests.losses._overlap_reference import classic_soft_dice, classic_soft_jaccard

B, C, SPATIAL = 2, 3, (4, 5, 3)
RTOL = 1e-5


def _pair(kind: str, fused: bool = True, **kw):
    """(ours, MONAI's) for the same options; ``fused`` only goes to ours."""
    ord_ = kw.pop("ord", 1)
    if kind == "dml":
        return DiceSemimetricLoss(ord=ord_, fused=fused, **kw), DiceLoss(soft_label=True, squared_pred=ord_ == 2, **kw)
    if kind == "jml":
        theirs = DiceLoss(jaccard=True, soft_label=True, squared_pred=ord_ == 2, **kw)
        return JaccardMetricLoss(ord=ord_, fused=fused, **kw), theirs
    kw.pop("weight", None)
    ours = CompatibleTverskyLoss(alpha=0.3, beta=0.7, fused=fused, **kw)
    return ours, TverskyLoss(alpha=0.3, beta=0.7, soft_label=True, **kw)


def _inputs(activation: str, target_kind: str, dtype=torch.float64):
    g = torch.Generator().manual_seed(hash((activation, target_kind)) % 2**31)
    logits = torch.randn(B, C, *SPATIAL, dtype=dtype, generator=g)
    x = torch.rand(B, C, *SPATIAL, dtype=dtype, generator=g) if activation == "none" else logits
    labels = torch.randint(0, C, (B, 1, *SPATIAL), generator=g)
    if target_kind == "index":
        target = labels
    elif target_kind == "onehot":
        target = torch.nn.functional.one_hot(labels[:, 0], C).movedim(-1, 1).to(dtype)
    else:
        target = torch.softmax(2 * torch.randn(B, C, *SPATIAL, dtype=dtype, generator=g), 1)
    return x, target


_ACT = {
    "softmax": {"softmax": True},
    "sigmoid": {"sigmoid": True},
    "none": {},
    "tanh": {"other_act": torch.tanh},
}


def _value_and_grad(loss_fn, x, target):
    x = x.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = loss_fn(x, target)
    (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad


def _onehot64(labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels[:, 0], C).movedim(-1, 1).double()


def _compare(kind, x, target, fused_values=(True, False), **kw):
    # MONAI's to_onehot_y builds a float32 one-hot, and its ord-2 norm of it is float32-rounded (~1e-8 relative):
    # for ord 2 MONAI gets the same one-hot in float64 instead.
    monai_float64_onehot = kw.get("to_onehot_y") and kw.get("ord") == 2 and kw.get("ignore_index") is None
    for fused in fused_values:
        ours, theirs = _pair(kind, fused=fused, **kw)
        v1, g1 = _value_and_grad(ours, x, target)
        if monai_float64_onehot:
            _, theirs = _pair(kind, **{**kw, "to_onehot_y": False})
            v2, g2 = _value_and_grad(theirs, x, _onehot64(target))
        else:
            v2, g2 = _value_and_grad(theirs, x, target)
        if v1.shape != v2.shape:  # MONAI's TverskyLoss gives (B, C) for reduction="none"
            assert v1.numel() == v2.numel()
            v1 = v1.reshape(v2.shape)
        where = f"{kind} {kw} fused={fused}"
        torch.testing.assert_close(v1, v2, rtol=RTOL, atol=1e-12, msg=lambda m, w=where: f"value {w}: {m}")
        atol = 1e-9 * float(g2.abs().max())  # elements that cancel to ~0 are compared at the gradient's scale
        torch.testing.assert_close(g1, g2, rtol=RTOL, atol=atol, msg=lambda m, w=where: f"grad {w}: {m}")


_SMOOTH = [(1e-5, 1e-5), (0.5, 1.0), (0.0, 1e-3)]
_WEIGHTS = [None, 2.0, [0.5, 1.0, 2.0]]


@pytest.mark.parametrize("kind", ["dml", "jml", "ctl"])
@pytest.mark.parametrize("target_kind", ["soft", "onehot", "index"])
@pytest.mark.parametrize("activation", list(_ACT))
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_equals_monai(kind, target_kind, activation, batch, reduction):
    x, target = _inputs(activation, target_kind)
    common = {**_ACT[activation], "batch": batch, "reduction": reduction, "to_onehot_y": target_kind == "index"}
    for include_background, (nr, dr), weight, ord_ in itertools.product(
        [True, False], _SMOOTH, _WEIGHTS, [1, 2] if kind != "ctl" else [1]
    ):
        if weight is not None and (kind == "ctl" or (isinstance(weight, list) and not include_background)):
            continue
        kw = {**common, "include_background": include_background, "smooth_nr": nr, "smooth_dr": dr, "ord": ord_}
        _compare(kind, x, target, weight=weight, **kw)


@pytest.mark.parametrize("kind", ["dml", "jml", "ctl"])
@pytest.mark.parametrize(("target_kind", "ignore_index"), [("index", 1), ("index", 255), ("onehot", 2), ("onehot", -1)])
def test_equals_monai_ignore_index(kind, target_kind, ignore_index):
    x, target = _inputs("softmax", target_kind)
    if target_kind == "index" and ignore_index == 255:
        target = target.clone()
        target[:, :, :2] = 255
    if target_kind == "onehot" and ignore_index == -1:
        target = target.clone()
        target[:, :, 1] = 0  # all-zero voxels are the sentinel's ignored voxels
    for include_background, batch in itertools.product([True, False], [True, False]):
        kw = {"softmax": True, "to_onehot_y": target_kind == "index", "include_background": include_background}
        _compare(kind, x, target, ignore_index=ignore_index, batch=batch, **kw)


def test_weight_with_class_list_and_background_removed():
    x, target = _inputs("softmax", "soft")
    _compare("dml", x, target, softmax=True, include_background=False, weight=[0.5, 2.0])
    _compare("jml", x, target, softmax=True, include_background=False, weight=[0.5, 2.0], batch=True)


@pytest.mark.parametrize("kind", ["dml", "jml", "ctl"])
@pytest.mark.parametrize("target_kind", ["soft", "index"])
def test_large_float32_matches_monai(kind, target_kind):
    """On a 2x3x40^3 float32 volume both agree to 1e-4 (values and gradients); ours is closer to float64."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 40, 40, 40, dtype=torch.float64, generator=g)
    if target_kind == "index":
        target = torch.randint(0, 3, (2, 1, 40, 40, 40), generator=g)
        t32 = target
    else:
        target = torch.softmax(torch.randn(2, 3, 40, 40, 40, dtype=torch.float64, generator=g), 1)
        t32 = target.float()
    ours, theirs = _pair(kind, softmax=True, to_onehot_y=target_kind == "index")
    exact, g_exact = _value_and_grad(theirs, x, target)
    v_ours, g_ours = _value_and_grad(ours, x.float(), t32)
    v_monai, g_monai = _value_and_grad(theirs, x.float(), t32)
    torch.testing.assert_close(v_ours.double(), v_monai.double(), rtol=1e-4, atol=0)
    assert abs(float(v_ours) - float(exact)) <= abs(float(v_monai) - float(exact)) + 1e-8
    scale = float(g_exact.abs().max())
    torch.testing.assert_close(g_ours.double(), g_monai.double(), rtol=1e-3, atol=1e-4 * scale)
    torch.testing.assert_close(g_ours.double(), g_exact, rtol=1e-3, atol=1e-5 * scale)


@pytest.mark.parametrize("target_kind", ["onehot", "index"])
def test_classic_soft_dice_and_jaccard_on_hard_labels(target_kind):
    x, target = _inputs("none", target_kind)
    y = target if target_kind == "onehot" else torch.nn.functional.one_hot(target[:, 0], C).movedim(-1, 1).double()
    xf, yf = x.reshape(B, C, -1), y.reshape(B, C, -1)
    opts = {"to_onehot_y": target_kind == "index", "smooth_nr": 0.0, "smooth_dr": 0.0}
    torch.testing.assert_close(DiceSemimetricLoss(**opts)(x, target), classic_soft_dice(xf, yf), rtol=1e-12, atol=0)
    torch.testing.assert_close(JaccardMetricLoss(**opts)(x, target), classic_soft_jaccard(xf, yf), rtol=1e-12, atol=0)
    # with smoothing, as MONAI's classic (soft_label=False) DiceLoss
    torch.testing.assert_close(
        DiceSemimetricLoss(to_onehot_y=opts["to_onehot_y"], smooth_nr=0.3, smooth_dr=0.3)(x, target),
        classic_soft_dice(xf, yf, smooth=0.3),
        rtol=1e-12,
        atol=0,
    )
