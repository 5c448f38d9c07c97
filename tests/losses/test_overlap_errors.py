"""Every bad argument or input raises a clear error that names it."""

from __future__ import annotations

import pytest
import torch

from monai_jdt.losses import CompatibleTverskyLoss, DiceSemimetricLoss, JaccardMetricLoss
from monai_jdt.losses.functional import compatible_tversky_loss, dice_semimetric_loss
from monai_jdt.utils.errors import ShapeError

X = torch.randn(2, 3, 4, 4)
SOFT = torch.softmax(torch.randn(2, 3, 4, 4), 1)
LABELS = torch.randint(0, 3, (2, 1, 4, 4))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"alpha": -0.1}, ValueError, r"alpha must be >= 0, got -0.1"),
        ({"beta": -1}, ValueError, r"beta must be >= 0, got -1"),
        ({"alpha": "a"}, TypeError, r"alpha must be a real number"),
        ({"ord": 0.5}, ValueError, r"ord must be in \[1, inf\), got 0.5"),
        ({"gamma": 0.5}, ValueError, r"gamma must be in \[1, inf\), got 0.5"),
        ({"active_classes": "some"}, ValueError, r"active_classes must be one of 'all', 'present', 'prob', 'both'"),
        ({"active_threshold": 1.0}, ValueError, r"active_threshold must be in \[0, 1\), got 1"),
        ({"sigmoid": True, "softmax": True}, ValueError, r"mutually exclusive.*sigmoid=True, softmax=True"),
        ({"softmax": True, "other_act": torch.tanh}, ValueError, r"mutually exclusive"),
        ({"other_act": 3}, TypeError, r"other_act must be None or callable, got int 3"),
        ({"levels": {"pixel": 1.0}}, ValueError, r"levels keys must be in \['batch', 'image', 'class'\], got 'pixel'"),
        ({"levels": {"batch": -0.5}}, ValueError, r"levels\['batch'\] must be >= 0, got -0.5"),
        ({"levels": {"batch": 0.0}}, ValueError, r"levels must hold at least one positive weight"),
        ({"levels": {"batch": 1.0}, "batch": True}, ValueError, r"batch=True and levels are exclusive"),
        ({"levels": {"batch": 1, "image": 1}, "reduction": "none"}, ValueError, r"reduction='none' needs a single"),
        ({"reduction": "avg"}, ValueError, r"reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
        ({"weight": [1.0, -2.0, 1.0]}, ValueError, r"weight must be >= 0"),
        ({"weight": [[1.0]]}, ValueError, r"weight must be a number or a 1-d sequence"),
        ({"weight": "heavy"}, TypeError, r"weight must be a number"),
        ({"weight": float("nan")}, ValueError, r"weight must be finite"),
        ({"smooth_nr": -1e-5}, ValueError, r"smooth_nr must be >= 0"),
        ({"smooth_dr": float("inf")}, ValueError, r"smooth_dr must be finite"),
        ({"log_loss": True, "smooth_nr": 0.0}, ValueError, r"log_loss=True needs smooth_nr > 0"),
        ({"include_background": 1}, TypeError, r"include_background must be a bool, got int 1"),
        ({"ignore_index": 1.5}, TypeError, r"ignore_index must be an int or None"),
        ({"sync_stats": "yes"}, TypeError, r"sync_stats must be a bool"),
    ],
)
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        CompatibleTverskyLoss(**kwargs)
    with pytest.raises(error, match=match):
        compatible_tversky_loss(X, SOFT, **kwargs)


def test_alpha_beta_are_fixed_for_dml_and_jml():
    with pytest.raises(TypeError, match="fixes alpha = beta = 0.5"):
        DiceSemimetricLoss(alpha=0.3)
    with pytest.raises(TypeError, match="fixes alpha = beta = 1.0"):
        JaccardMetricLoss(beta=0.3)
    with pytest.raises(TypeError, match="beta is fixed"):
        dice_semimetric_loss(X, SOFT, beta=0.2)


@pytest.mark.parametrize(
    ("loss", "input", "target", "mask", "error", "match"),
    [
        (DiceSemimetricLoss(), X, SOFT[:, :, :3], None, ShapeError, r"target must have the input's shape"),
        (DiceSemimetricLoss(), X, torch.softmax(torch.randn(2, 4, 4, 4), 1), None, ShapeError, r"input's shape"),
        (DiceSemimetricLoss(), X, LABELS.float(), None, ShapeError, r"pass to_onehot_y=True"),
        (DiceSemimetricLoss(to_onehot_y=True), X, LABELS[:, :, :2], None, ShapeError, r"index map must have shape"),
        (DiceSemimetricLoss(), X, SOFT * 1.5, None, ValueError, r"target probabilities must be in \[0, 1\]"),
        (DiceSemimetricLoss(), X, SOFT - 0.5, None, ValueError, r"target probabilities must be in \[0, 1\]"),
        (DiceSemimetricLoss(to_onehot_y=True), X, LABELS + 1, None, ValueError, r"must be in \[0, 3\), got values"),
        (DiceSemimetricLoss(to_onehot_y=True, ignore_index=9), X, LABELS - 1, None, ValueError, r"ignore_index=9"),
        (DiceSemimetricLoss(to_onehot_y=True), X, LABELS + 0.5, None, ValueError, r"non-integer value"),
        (DiceSemimetricLoss(), X, SOFT, torch.ones(2, 4, 3, dtype=torch.bool), ShapeError, r"mask must have shape"),
        (DiceSemimetricLoss(), X, SOFT, torch.ones(2, 3, 4, 4, dtype=torch.bool), ShapeError, r"mask must have shape"),
        (DiceSemimetricLoss(), X, SOFT, torch.full((2, 4, 4), 2.0), ValueError, r"mask must be bool or hold only 0"),
        (DiceSemimetricLoss(weight=[1.0, 2.0]), X, SOFT, None, ValueError, r"one entry per class \(3 classes"),
        (
            DiceSemimetricLoss(weight=[1.0, 2.0, 3.0], include_background=False),
            X,
            SOFT,
            None,
            ValueError,
            r"2 classes after removing the background.*got 3 entries",
        ),
        (DiceSemimetricLoss(), X.long(), SOFT, None, TypeError, r"input must be a floating-point tensor"),
        (DiceSemimetricLoss(), X.numpy(), SOFT, None, TypeError, r"input must be a torch.Tensor"),
        (DiceSemimetricLoss(), X, SOFT.numpy(), None, TypeError, r"target must be a torch.Tensor"),
        (
            DiceSemimetricLoss(other_act=lambda t: t.sum(1)),
            X,
            SOFT,
            None,
            ShapeError,
            r"other_act must return a tensor of the input's shape",
        ),
    ],
)
def test_bad_inputs(loss, input, target, mask, error, match):
    with pytest.raises(error, match=match):
        loss(input, target, mask)


def test_shape_error_is_also_an_assertion_error_as_in_monai():
    with pytest.raises(AssertionError):
        DiceSemimetricLoss()(X, SOFT[:, :2])
    with pytest.raises(ValueError):
        DiceSemimetricLoss()(X, SOFT[:, :2])


@pytest.mark.parametrize("act", ["softmax", "sigmoid"])
@pytest.mark.parametrize(
    ("bad", "shown"), [(1.5, r"\[[0-9.e-]+, 1.5\]"), (-0.25, r"\[-0.25, "), (float("nan"), r"\[nan, ")]
)
@pytest.mark.parametrize("fused", [True, False])
def test_soft_target_range_is_checked_in_the_fused_pass(act, bad, shown, fused, two_threads, kernel, monkeypatch):
    """The fused kernel checks the target in its own pass; a bad value in the last block (second thread) is found."""
    from monai_jdt.losses.functional import _overlap_fused

    monkeypatch.setattr(_overlap_fused, "BLOCK_ELEMENTS", 1024)
    target = torch.rand(2, 3, 16, 16, 8, generator=torch.Generator().manual_seed(0))
    target[1, 2, 15, 15, 7] = bad
    loss = DiceSemimetricLoss(fused=fused, **{act: True})
    with pytest.raises(ValueError, match=rf"target probabilities must be in \[0, 1\], got values in {shown}"):
        loss(torch.randn(2, 3, 16, 16, 8), target)


@pytest.mark.parametrize("fused", [True, False])
def test_soft_target_rounding_within_tolerance_is_accepted(fused, kernel):
    """Averaged rater masks may exceed 1 by float rounding (SOFT_TOLERANCE = 1e-6): accepted on both paths."""
    target = torch.full((1, 2, 8, 8), 0.5)
    target[0, 0, 0, 0], target[0, 1, 0, 0] = 1 + 5e-7, -5e-7
    logits = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    value = DiceSemimetricLoss(softmax=True, fused=fused)(logits, target)
    clamped = DiceSemimetricLoss(softmax=True, fused=False)(logits, target.clamp(0, 1))
    torch.testing.assert_close(value, clamped, rtol=0, atol=1e-6)
