"""The nnU-Net loss: equal to nnU-Net's own DC_and_CE_loss / DC_and_BCE_loss + weight_dice on hard labels.

The nnU-Net comparisons need nnunetv2 (skipped with a reason without it); the soft-label checks use references
written here with plain torch (and MONAI's soft-label DiceLoss), so they run everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from monai_jdt.nnunet import NNUNetOverlapCELoss, nnunet_available, nnunet_overlap_ce_loss, nnunet_overlap_ce_parts
from monai_jdt.transforms.functional import boundary_label_smoothing
from monai_jdt.utils.errors import ShapeError

needs_nnunet = pytest.mark.skipif(
    not nnunet_available(), reason="nnU-Net v2 >= 2.8 is not installed (bash scripts/install_nnunet_cpu.sh)"
)
SMOOTH = 1e-5


def _value_and_grad(fn, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = logits.clone().requires_grad_()
    value = fn(x)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


def _labels(shape, num_classes: int, ignore: int | None) -> torch.Tensor:
    labels = torch.randint(0, num_classes, shape).double()
    if ignore is not None:
        labels[:, :, :2] = ignore  # two unannotated slices
        labels[0, 0, 3, 1, 1] = ignore
    return labels


def _nnunet_label_loss(batch_dice: bool, ignore: int | None):
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    kwargs = {"batch_dice": batch_dice, "smooth": SMOOTH, "do_bg": False, "ddp": False}
    return DC_and_CE_loss(kwargs, {}, weight_ce=1, weight_dice=1, ignore_label=ignore,
                          dice_class=MemoryEfficientSoftDiceLoss)


def _nnunet_region_loss(batch_dice: bool, use_ignore: bool):
    from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    kwargs = {"batch_dice": batch_dice, "do_bg": True, "smooth": SMOOTH, "ddp": False}
    return DC_and_BCE_loss({}, kwargs, use_ignore_label=use_ignore, dice_class=MemoryEfficientSoftDiceLoss)


@needs_nnunet
@pytest.mark.parametrize("batch_dice", [False, True])
@pytest.mark.parametrize("ignore", [None, 3])
def test_labels_equal_nnunet_plus_one(batch_dice: bool, ignore: int | None):
    logits = torch.randn(2, 3, 6, 5, 4, dtype=torch.float64)
    labels = _labels((2, 1, 6, 5, 4), 3, ignore)
    ref = _nnunet_label_loss(batch_dice, ignore)
    ours = NNUNetOverlapCELoss("dice", batch_dice=batch_dice, ignore_label=ignore)
    v_ref, g_ref = _value_and_grad(lambda x: ref(x, labels), logits)
    v_ours, g_ours = _value_and_grad(lambda x: ours(x, labels), logits)
    # nnU-Net's Dice term is -dice, ours 1 - dice: a constant offset of weight_dice = 1, same gradient
    torch.testing.assert_close(v_ours, v_ref.double() + 1, rtol=0, atol=2e-6)
    torch.testing.assert_close(g_ours, g_ref.double(), rtol=1e-4, atol=1e-7)


@needs_nnunet
@pytest.mark.parametrize("batch_dice", [False, True])
@pytest.mark.parametrize("use_ignore", [False, True])
def test_regions_equal_nnunet_plus_one(batch_dice: bool, use_ignore: bool):
    logits = torch.randn(2, 2, 6, 5, 4, dtype=torch.float64)
    regions = torch.rand(2, 2, 6, 5, 4) > 0.5
    regions[:, 1] &= regions[:, 0]  # nested regions, as nnU-Net's
    target = torch.cat([regions, torch.rand(2, 1, 6, 5, 4) > 0.7], 1) if use_ignore else regions
    ref = _nnunet_region_loss(batch_dice, use_ignore)
    ours = NNUNetOverlapCELoss("dice", regions=True, batch_dice=batch_dice, ignore_label=3 if use_ignore else None)
    v_ref, g_ref = _value_and_grad(lambda x: ref(x, target), logits)
    v_ours, g_ours = _value_and_grad(lambda x: ours(x, target), logits)
    torch.testing.assert_close(v_ours, v_ref.double() + 1, rtol=0, atol=2e-6)
    torch.testing.assert_close(g_ours, g_ref.double(), rtol=1e-4, atol=1e-7)


@needs_nnunet
@pytest.mark.parametrize("regions", [False, True])
def test_deep_supervision_offset_is_weight_dice(regions: bool):
    """nnU-Net's wrapper and weights (1/2^i, last 0, normalised): the total is offset by weight_dice exactly."""
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

    weights = np.array([1 / 2**i for i in range(3)])
    weights[-1] = 0
    weights = weights / weights.sum()
    shapes = [(8, 8, 4), (4, 4, 2), (2, 2, 1)]
    channels = 2 if regions else 3
    outputs = [torch.randn(2, channels, *s, dtype=torch.float64) for s in shapes]
    if regions:
        targets = [(torch.rand(2, 2, *s) > 0.5) for s in shapes]
        ref = DeepSupervisionWrapper(_nnunet_region_loss(True, False), weights)
    else:
        targets = [torch.randint(0, 3, (2, 1, *s)).double() for s in shapes]
        ref = DeepSupervisionWrapper(_nnunet_label_loss(True, None), weights)
    ours = DeepSupervisionWrapper(
        NNUNetOverlapCELoss("dice", regions=regions, batch_dice=True, weight_dice=0.7), weights
    )
    ref.loss.weight_dice = 0.7
    torch.testing.assert_close(ours(outputs, targets), ref(outputs, targets).double() + 0.7, rtol=0, atol=2e-6)


def _soft_dice_reference(probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, axes, jaccard: bool):
    """DML / JML with L1 cardinalities, written out: |x| + |y| - |x - y| = 2 tp."""
    if mask is not None:
        probs, target = probs * mask, target * mask
    card_x, card_y = probs.sum(axes), target.sum(axes)
    diff = (probs - target).abs().sum(axes)
    two_tp = card_x + card_y - diff
    den = card_x + card_y + (diff if jaccard else 0)
    return 1 - (two_tp + SMOOTH) / (den + SMOOTH)


@pytest.mark.parametrize("jaccard", [False, True])
@pytest.mark.parametrize("batch_dice", [False, True])
def test_smoothed_labels_match_reference(jaccard: bool, batch_dice: bool):
    """BLS target from the integer labels, then soft CE + DML/JML, each written out here."""
    logits = torch.randn(2, 3, 6, 6, 4, dtype=torch.float64)
    labels = _labels((2, 1, 6, 6, 4), 3, ignore=3)
    parts = nnunet_overlap_ce_parts(
        logits, labels, overlap="jaccard" if jaccard else "dice", batch_dice=batch_dice, ignore_label=3,
        smoothing_epsilon=0.4, smoothing_kernel_size=3,
    )
    soft = boundary_label_smoothing(labels.long(), 3, 0.4, 3, ignore_index=3, dtype=torch.float64)
    keep = (labels != 3).double()
    ce_voxel = -(soft * logits.log_softmax(1)).sum(1, keepdim=True)
    ce_ref = (ce_voxel * keep).sum() / keep.sum()
    axes = (0, 2, 3, 4) if batch_dice else (2, 3, 4)
    probs = logits.softmax(1)
    per_class = _soft_dice_reference(probs[:, 1:], soft[:, 1:], keep, axes, jaccard)
    torch.testing.assert_close(parts.ce, ce_ref)
    torch.testing.assert_close(parts.overlap, per_class.mean())
    torch.testing.assert_close(parts.total, ce_ref + per_class.mean())


def test_smoothing_touches_only_boundary_voxels():
    """epsilon = 0.5 with 2 classes: 0.75 / 0.25 next to the boundary, one-hot elsewhere (the papers' setting)."""
    labels = torch.zeros(1, 1, 1, 1, 8)
    labels[..., 4:] = 1
    logits = torch.zeros(1, 2, 1, 1, 8, requires_grad=True)
    parts = nnunet_overlap_ce_parts(logits, labels, smoothing_epsilon=0.5)
    # foreground target [0, 0, 0, 0.25, 0.75, 1, 1, 1]; uniform prediction x = 0.5: CE = log 2 everywhere,
    # |x| = 4, |y| = 4, |x - y| = 3 * 0.5 + 0.25 + 0.25 + 3 * 0.5 = 3.5
    torch.testing.assert_close(parts.ce, torch.tensor(float(np.log(2))))
    expected_fg = 1 - (4 + 4 - 3.5 + SMOOTH) / (4 + 4 + SMOOTH)
    torch.testing.assert_close(parts.overlap, torch.tensor(expected_fg))


def test_hard_labels_zero_smoothing_equal_monai_soft_dice():
    """Without smoothing the overlap term is MONAI's DiceLoss(soft_label=True) with nnU-Net's settings."""
    logits = torch.randn(3, 4, 5, 5, 5)
    labels = torch.randint(0, 4, (3, 1, 5, 5, 5))
    parts = nnunet_overlap_ce_parts(logits, labels, batch_dice=True)
    monai = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True, soft_label=True,
                     smooth_nr=SMOOTH, smooth_dr=SMOOTH)(logits, labels)
    torch.testing.assert_close(parts.overlap, monai, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(parts.ce, F.cross_entropy(logits, labels[:, 0]))


def test_class_agnostic_pools_foreground_counts():
    logits = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 1, 6, 6))
    got = nnunet_overlap_ce_parts(logits, labels, class_agnostic=True).overlap
    probs, onehot = logits.softmax(1)[:, 1:], F.one_hot(labels[:, 0], 3).movedim(-1, 1)[:, 1:].double()
    tp = (probs * onehot).sum((1, 2, 3))
    expected = 1 - (2 * tp + SMOOTH) / (probs.sum((1, 2, 3)) + onehot.sum((1, 2, 3)) + SMOOTH)
    torch.testing.assert_close(got, expected.mean())


def test_present_classes_skip_absent_foreground():
    logits = torch.randn(1, 3, 6, 6, dtype=torch.float64)
    labels = torch.zeros(1, 1, 6, 6, dtype=torch.long)
    labels[..., :3] = 1  # class 2 absent
    present = nnunet_overlap_ce_parts(logits, labels, active_classes="present").overlap
    every = nnunet_overlap_ce_parts(logits, labels, active_classes="all").overlap
    probs = logits.softmax(1)
    y1 = (labels == 1).double()
    expected_1 = 1 - (2 * (probs[:, 1:2] * y1).sum() + SMOOTH) / (probs[:, 1].sum() + y1.sum() + SMOOTH)
    torch.testing.assert_close(present, expected_1)
    assert float(every) > float(present)  # the absent class adds a loss close to 1 under "all"


def test_region_smoothing_is_binary_per_region_and_respects_ignore():
    logits = torch.zeros(1, 2, 1, 1, 6)
    target = torch.zeros(1, 3, 1, 1, 6)
    target[0, 0, ..., 2:] = 1
    target[0, 1, ..., 4:] = 1
    target[0, 2, ..., 0] = 1  # ignore flag on voxel 0
    parts = nnunet_overlap_ce_parts(logits, target, regions=True, ignore_label=9, smoothing_epsilon=0.5)
    # region 0 target after smoothing: [ignored, 0.25, 0.75, 1, 1, 1]; region 1: [ignored, 0, 0, 0.25, 0.75, 1]
    y0 = torch.tensor([0.25, 0.75, 1, 1, 1])
    y1 = torch.tensor([0, 0, 0.25, 0.75, 1])
    x = torch.full((5,), 0.5)

    def dml(y):
        return 1 - ((x.sum() + y.sum() - (x - y).abs().sum()) + SMOOTH) / (x.sum() + y.sum() + SMOOTH)

    torch.testing.assert_close(parts.overlap, (dml(y0) + dml(y1)) / 2)
    torch.testing.assert_close(parts.ce, torch.tensor(float(np.log(2))) * 2)  # nnU-Net: sum / annotated voxels


def test_all_ignored_gives_zero_ce_with_graph():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    labels = torch.full((1, 1, 4, 4), 3.0)
    parts = nnunet_overlap_ce_parts(logits, labels, ignore_label=3)
    assert float(parts.ce.detach()) == 0.0
    assert torch.isfinite(parts.total)
    parts.total.backward()
    assert torch.isfinite(logits.grad).all()


def test_functional_and_module_agree_and_log_parts():
    logits = torch.randn(2, 3, 4, 4, 4)
    labels = torch.randint(0, 3, (2, 1, 4, 4, 4))
    module = NNUNetOverlapCELoss("jaccard", batch_dice=True, weight_ce=0.25, weight_dice=0.75)
    value = module(logits, labels)
    torch.testing.assert_close(value, nnunet_overlap_ce_loss(logits, labels, overlap="jaccard", batch_dice=True,
                                                             weight_ce=0.25, weight_dice=0.75))
    torch.testing.assert_close(value, 0.25 * module.last_parts["ce"] + 0.75 * module.last_parts["overlap"])
    assert "overlap='jaccard'" in repr(module)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"overlap": "tversky"}, ValueError, "overlap"),
        ({"smooth": -1.0}, ValueError, "smooth"),
        ({"weight_ce": -0.5}, ValueError, "weight_ce"),
        ({"active_classes": "prob"}, ValueError, "active_classes"),
        ({"smoothing_epsilon": 1.5}, ValueError, "smoothing_epsilon"),
        ({"smoothing_kernel_size": 4}, ValueError, "smoothing_kernel_size must be odd"),
        ({"batch_dice": 1}, TypeError, "batch_dice"),
        ({"ignore_label": 2.0}, TypeError, "ignore_label"),
        ({"do_bg": "no"}, TypeError, "do_bg"),
    ],
)
def test_bad_options_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        NNUNetOverlapCELoss(**kwargs)


def test_target_layout_errors():
    logits = torch.randn(2, 3, 4, 4)
    with pytest.raises(ShapeError, match=r"\(B, 1, \*spatial\) label map"):
        nnunet_overlap_ce_loss(logits, torch.randint(0, 3, (2, 4, 4)))
    with pytest.raises(ShapeError, match="R regions \\+ 1 ignore channel"):
        nnunet_overlap_ce_loss(logits, torch.zeros(2, 3, 4, 4), regions=True, ignore_label=1)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        nnunet_overlap_ce_loss(logits, torch.full((2, 1, 4, 4), 5.0))
    with pytest.raises(ValueError, match="0.5"):  # fractional labels are refused, not rounded
        nnunet_overlap_ce_loss(logits, torch.full((2, 1, 4, 4), 0.5), smoothing_epsilon=0.1)


@pytest.mark.parametrize("regions", [False, True])
def test_half_precision_logits_are_computed_in_float32(regions: bool):
    """Under CUDA autocast nnU-Net's logits are float16: the smoothed target and both terms stay float32."""
    logits = torch.randn(2, 3, 6, 6, 4).to(torch.bfloat16)
    if regions:
        target = torch.rand(2, 3, 6, 6, 4) > 0.5
        options = {"regions": True, "smoothing_epsilon": 0.3}
    else:
        target = torch.randint(0, 3, (2, 1, 6, 6, 4)).float()
        options = {"smoothing_epsilon": 0.3}
    low = nnunet_overlap_ce_parts(logits, target, **options)
    ref = nnunet_overlap_ce_parts(logits.float(), target, **options)
    assert low.total.dtype == torch.float32
    torch.testing.assert_close(low.total, ref.total, rtol=1e-6, atol=1e-6)
