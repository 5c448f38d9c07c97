"""DistillationLoss against hand assemblies of torch CE/KL, MONAI's DiceLoss/TverskyLoss and the package's losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, TverskyLoss

from monai_jdt.losses import DiceSemimetricLoss, DistillationLoss, JaccardMetricLoss
from monai_jdt.losses.functional import distillation_kl_div, distillation_loss, distillation_loss_parts
from monai_jdt.utils.errors import ShapeError


def kl_reference(student: torch.Tensor, q: torch.Tensor, temperature: float, keep: torch.Tensor | None = None):
    """T^2 * sum_c q_c log(q_c / s_c), mean over kept voxels, written with torch's kl_div."""
    per_voxel = F.kl_div(torch.log_softmax(student / temperature, 1), q, reduction="none").sum(1)
    if keep is None:
        return temperature**2 * per_voxel.mean()
    return temperature**2 * per_voxel[keep].sum() / keep.sum()


def monai_overlap(name: str, **kw):
    if name == "dml":
        return DiceLoss(softmax=True, soft_label=True, **kw)
    if name == "jml":
        return DiceLoss(softmax=True, soft_label=True, jaccard=True, **kw)
    return TverskyLoss(softmax=True, soft_label=True, alpha=0.3, beta=0.7, **kw)


def ctl_args(name: str) -> dict:
    return {"alpha": 0.3, "beta": 0.7} if name == "ctl" else {}


@pytest.mark.parametrize("overlap", ["dml", "jml", "ctl"])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_equals_monai_and_torch_assembly_index_target(overlap: str, temperature: float) -> None:
    student = torch.randn(2, 3, 6, 5, 4, dtype=torch.float64)
    teacher = 2 * torch.randn(2, 3, 6, 5, 4, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 1, 6, 5, 4))
    q = torch.softmax(teacher / temperature, 1)
    onehot = F.one_hot(labels[:, 0], 3).movedim(-1, 1).double()
    ov = monai_overlap(overlap)
    expected = 0.5 * (0.25 * F.cross_entropy(student, labels[:, 0]) + 0.75 * ov(student, onehot)) + 0.5 * (
        0.25 * kl_reference(student, q, temperature) + 0.75 * ov(student, q)
    )
    loss_fn = DistillationLoss(overlap, temperature=temperature, to_onehot_y=True, teacher_active_classes="all",
                               **ctl_args(overlap))  # fmt: skip
    torch.testing.assert_close(loss_fn(student, labels, teacher), expected)
    functional = distillation_loss(student, labels, teacher, overlap=overlap, temperature=temperature,
                                   to_onehot_y=True, teacher_active_classes="all", **ctl_args(overlap))  # fmt: skip
    torch.testing.assert_close(functional, expected)


@pytest.mark.parametrize("overlap_cls", [DiceSemimetricLoss, JaccardMetricLoss])
def test_present_teacher_classes_soft_target_weights_and_lambdas(overlap_cls) -> None:
    """Teacher term with 'present' on the teacher's confidence = the package's overlap loss with that mode."""
    name = "dml" if overlap_cls is DiceSemimetricLoss else "jml"
    student = torch.randn(2, 4, 7, 6, dtype=torch.float64)
    teacher = 3 * torch.randn(2, 4, 7, 6, dtype=torch.float64)
    teacher[:, 3] = -30.0  # the teacher never predicts class 3: inactive under "present"
    soft = torch.softmax(torch.randn(2, 4, 7, 6, dtype=torch.float64), 1)
    w, ce_w = [0.5, 1.0, 2.0, 1.5], torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64)
    q = torch.softmax(teacher / 2.0, 1)
    label_ov = overlap_cls(softmax=True, weight=w, smooth_nr=1e-3, smooth_dr=1e-3, batch=True)
    teacher_ov = overlap_cls(softmax=True, weight=w, smooth_nr=1e-3, smooth_dr=1e-3, batch=True,
                             active_classes="present", active_threshold=0.05)  # fmt: skip
    ce = -(ce_w.view(1, 4, 1, 1) * soft * torch.log_softmax(student, 1)).sum() / (ce_w.view(1, 4, 1, 1) * soft).sum()
    expected = 0.3 * (0.4 * ce + 0.6 * label_ov(student, soft)) + 0.7 * (
        0.4 * kl_reference(student, q, 2.0) + 0.6 * teacher_ov(student, q)
    )
    loss_fn = DistillationLoss(name, temperature=2.0, lambda_label=0.3, lambda_teacher=0.7, lambda_ce=0.4,
                               lambda_overlap=0.6, teacher_active_threshold=0.05, weight=w, ce_weight=ce_w,
                               smooth_nr=1e-3, smooth_dr=1e-3, batch=True)  # fmt: skip
    torch.testing.assert_close(loss_fn(student, soft, teacher), expected)
    # "present" really drops class 3 here: with "all" the value differs
    all_classes = DistillationLoss(name, temperature=2.0, lambda_label=0.3, lambda_teacher=0.7, lambda_ce=0.4,
                                   lambda_overlap=0.6, teacher_active_classes="all", weight=w, ce_weight=ce_w,
                                   smooth_nr=1e-3, smooth_dr=1e-3, batch=True)  # fmt: skip
    assert not torch.isclose(all_classes(student, soft, teacher), expected)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_kl_temperature_against_direct_computation(temperature: float) -> None:
    student = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    teacher = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    # direct: T^2 * mean over voxels of sum_c q log q - q log s, q = softmax(t/T), s = softmax(z/T)
    q = torch.exp(teacher / temperature) / torch.exp(teacher / temperature).sum(1, keepdim=True)
    s = torch.exp(student / temperature) / torch.exp(student / temperature).sum(1, keepdim=True)
    direct = temperature**2 * (q * (q.log() - s.log())).sum(1).mean()
    torch.testing.assert_close(distillation_kl_div(student, teacher, temperature=temperature), direct)
    # the same teacher given as probabilities: softmax(log p / T) = p^(1/T) renormalised
    p = torch.softmax(teacher, 1)
    as_probs = distillation_kl_div(student, p, temperature=temperature, teacher_is_logits=False)
    torch.testing.assert_close(as_probs, direct)
    parts = distillation_loss_parts(student, None, teacher, temperature=temperature, lambda_label=0.0)
    torch.testing.assert_close(parts.teacher_kl, direct)


def test_kl_is_zero_for_identical_distributions_and_sum_reduction() -> None:
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    assert float(distillation_kl_div(z, z, temperature=3.0)) == pytest.approx(0.0, abs=1e-12)
    t = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(distillation_kl_div(z, t, reduction="sum"), 32 * distillation_kl_div(z, t))


@pytest.mark.parametrize("overlap", ["dml", "jml", "ctl"])
@pytest.mark.parametrize("index_target", [True, False])
def test_ground_truth_teacher_reduces_to_label_term(overlap: str, index_target: bool) -> None:
    student = torch.randn(2, 3, 6, 6, 3, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 1, 6, 6, 3))
    labels[0, 0, :, :, 0] = 255  # ignored voxels
    mask = torch.rand(2, 1, 6, 6, 3) > 0.2
    onehot = F.one_hot(labels[:, 0].clamp_max(2), 3).movedim(-1, 1).double()
    onehot_ignored = onehot.clone()
    onehot_ignored[:, :, labels[0, 0] == 255] = 0  # dense targets: an all-zero vector is ignored with ignore_index
    target = labels if index_target else onehot_ignored
    common = dict(overlap=overlap, to_onehot_y=index_target, ignore_index=255, active_classes="present",
                  **ctl_args(overlap))  # fmt: skip
    teacher_only = distillation_loss_parts(student, target, onehot, mask, lambda_label=0.0, lambda_teacher=1.0,
                                           teacher_is_logits=False, **common)  # fmt: skip
    label_only = distillation_loss_parts(student, target, None, mask, lambda_label=1.0, lambda_teacher=0.0, **common)
    torch.testing.assert_close(teacher_only.teacher_kl, label_only.label_ce)
    torch.testing.assert_close(teacher_only.teacher_overlap, label_only.label_overlap)
    torch.testing.assert_close(teacher_only.total, label_only.total)


def test_mask_and_ignore_index_exclude_voxels_from_every_term() -> None:
    student = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    teacher = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 1, 8, 8))
    labels[:, :, :2] = 255
    mask = torch.ones(2, 1, 8, 8, dtype=torch.bool)
    mask[:, :, :, -3:] = False
    keep = (labels[:, 0] != 255) & mask[:, 0]
    loss_fn = DistillationLoss(to_onehot_y=True, ignore_index=255, temperature=2.0)
    base = loss_fn(student, labels, teacher, mask)
    parts = dict(loss_fn.last_parts)
    torch.testing.assert_close(parts["teacher_kl"], kl_reference(student, torch.softmax(teacher / 2, 1), 2.0, keep))
    # scrambling student, teacher and labels at excluded voxels changes nothing
    student2, teacher2, labels2 = student.clone(), teacher.clone(), labels.clone()
    excluded = ~keep
    student2.permute(0, 2, 3, 1)[excluded] = 10 * torch.randn(int(excluded.sum()), 3, dtype=torch.float64)
    teacher2.permute(0, 2, 3, 1)[excluded] = 10 * torch.randn(int(excluded.sum()), 3, dtype=torch.float64)
    labels2[:, 0][mask[:, 0] == 0] = 1
    torch.testing.assert_close(loss_fn(student2, labels2, teacher2, mask), base)
    for name, value in loss_fn.last_parts.items():
        torch.testing.assert_close(value, parts[name])


def test_probability_teacher_with_zeros_and_all_masked_voxels_stay_finite() -> None:
    student = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    probs = F.one_hot(torch.randint(0, 3, (2, 5, 5)), 3).movedim(-1, 1).double()
    probs[:, :, 0] = 0.0  # an all-zero vector at excluded voxels (e.g. outside the teacher's field of view)
    mask = torch.ones(2, 5, 5, dtype=torch.bool)
    mask[:, 0] = False
    loss = distillation_loss(student, None, probs, mask, lambda_label=0.0, teacher_is_logits=False, temperature=2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    assert student.grad[:, :, 0].abs().max() == 0  # excluded voxels get no gradient
    empty = distillation_loss(student, None, probs, torch.zeros(2, 5, 5, dtype=torch.bool), lambda_label=0.0,
                              teacher_is_logits=False)  # fmt: skip
    assert float(empty.detach()) == 0.0 and empty.requires_grad


def test_parts_last_parts_and_zero_weight_terms() -> None:
    student, teacher = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 6, 6)
    labels = torch.randint(0, 3, (2, 1, 6, 6))
    loss_fn = DistillationLoss(to_onehot_y=True, lambda_ce=0.0)
    total = loss_fn(student, labels, teacher)
    assert sorted(loss_fn.last_parts) == ["label_overlap", "teacher_overlap"]
    expected = 0.5 * 0.75 * loss_fn.last_parts["label_overlap"] + 0.5 * 0.75 * loss_fn.last_parts["teacher_overlap"]
    torch.testing.assert_close(total, expected)
    parts = distillation_loss_parts(student, labels, teacher, to_onehot_y=True, lambda_teacher=0.0)
    assert parts.teacher_kl is None and parts.teacher_overlap is None
    torch.testing.assert_close(parts.total, 0.5 * (0.25 * F.cross_entropy(student, labels[:, 0])
                                                   + 0.75 * parts.label_overlap))  # fmt: skip
    assert all(not v.requires_grad for v in parts.as_dict().values())


def test_teacher_gets_no_gradient_and_low_precision_student() -> None:
    student = torch.randn(2, 3, 6, 6, requires_grad=True)
    teacher = torch.randn(2, 3, 6, 6, requires_grad=True)
    DistillationLoss(to_onehot_y=True)(student, torch.randint(0, 3, (2, 1, 6, 6)), teacher).backward()
    assert teacher.grad is None and student.grad is not None
    half = torch.randn(2, 3, 6, 6).half()
    value = DistillationLoss(to_onehot_y=True, temperature=2.0)(half, torch.randint(0, 3, (2, 1, 6, 6)), half.float())
    assert value.dtype == torch.float32 and torch.isfinite(value)


@pytest.mark.parametrize("overlap", ["dml", "jml", "ctl"])
def test_gradcheck(overlap: str) -> None:
    student = torch.randn(2, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(2, 3, 2, 3, dtype=torch.float64)
    soft = torch.softmax(torch.randn(2, 3, 2, 3, dtype=torch.float64), 1)
    mask = torch.rand(2, 2, 3) > 0.2
    loss_fn = DistillationLoss(overlap, temperature=2.5, smooth_nr=1e-3, smooth_dr=1e-3, fused=False,
                               **ctl_args(overlap))  # fmt: skip
    assert torch.autograd.gradcheck(lambda z: loss_fn(z, soft, teacher, mask), (student,))


def test_fused_and_generic_paths_agree() -> None:
    student = torch.randn(2, 4, 6, 5, 4, dtype=torch.float64)
    teacher = torch.randn(2, 4, 6, 5, 4, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 1, 6, 5, 4))
    fused = DistillationLoss(to_onehot_y=True, fused=True)(student, labels, teacher)
    generic = DistillationLoss(to_onehot_y=True, fused=False)(student, labels, teacher)
    torch.testing.assert_close(fused, generic)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"temperature": 0.0}, ValueError, "temperature must be > 0, got 0"),
        ({"temperature": -1.0}, ValueError, "temperature must be > 0"),
        ({"lambda_teacher": -0.5}, ValueError, "lambda_teacher must be >= 0, got -0.5"),
        ({"lambda_label": 0.0, "lambda_teacher": 0.0}, ValueError, "identically 0"),
        ({"overlap": "dice"}, ValueError, "overlap must be one of 'dml', 'jml', 'ctl', got 'dice'"),
        ({"overlap": "dml", "alpha": 0.3}, ValueError, "alpha and beta are fixed by overlap='dml'"),
        ({"teacher_active_classes": "some"}, ValueError, "active_classes must be one of"),
        ({"teacher_tolerance": 0.0}, ValueError, "teacher_tolerance must be in"),
        ({"reduction": "none"}, ValueError, "reduction must be one of 'mean', 'sum'"),
        ({"sigmoid": True}, TypeError, "unexpected option"),
        ({"teacher_is_logits": 1}, TypeError, "teacher_is_logits must be a bool"),
    ],
)
def test_option_errors(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        DistillationLoss(**kwargs)


def test_input_errors() -> None:
    student, labels = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 1, 4, 4))
    loss_fn = DistillationLoss(to_onehot_y=True, teacher_is_logits=False)
    probs = torch.softmax(torch.randn(2, 3, 4, 4), 1)
    with pytest.raises(ValueError, match=r"teacher probabilities must sum to 1 over the classes \(tolerance 0.01\)"):
        loss_fn(student, labels, probs * 0.9)
    with pytest.raises(ValueError, match=r"teacher probabilities must be in \[0, 1\]"):
        loss_fn(student, labels, probs * 2 - 0.5)
    with pytest.raises(ShapeError, match=r"teacher must have the student's shape \(2, 3, 4, 4\), got \(2, 3, 4\)"):
        loss_fn(student, labels, probs[..., 0])
    bad = probs.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="teacher must hold finite values"):
        DistillationLoss(to_onehot_y=True)(student, labels, bad)
    with pytest.raises(TypeError, match="teacher must be a floating-point"):
        DistillationLoss(to_onehot_y=True)(student, labels, labels)
    with pytest.raises(ShapeError, match="C >= 2"):
        DistillationLoss()(torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4), torch.randn(2, 1, 4, 4))
    with pytest.raises(ValueError, match="target must be given when lambda_label > 0"):
        loss_fn(student, None, probs)
    with pytest.raises(ValueError, match="teacher must be given when lambda_teacher > 0"):
        loss_fn(student, labels, None)
    with pytest.raises(ValueError, match=r"target class indices must be in \[0, 3\)"):
        loss_fn(student, labels + 5, probs)
    # probabilities that sum to 1 only within the (float16 storage) tolerance are accepted
    assert torch.isfinite(loss_fn(student, labels, probs.half().float()))


@pytest.mark.parametrize(
    "options",
    [
        {"include_background": False},
        {"levels": {"image": 0.5, "class": 0.5}, "log_loss": True},
        {"ord": 2, "class_agnostic": True, "reduction": "sum"},
    ],
)
def test_overlap_options_reach_both_overlap_terms(options: dict) -> None:
    from monai_jdt.losses import SoftCrossEntropyLoss

    student = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    teacher = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 1, 5, 6))
    q = torch.softmax(teacher, 1)
    reduction = options.get("reduction", "mean")
    ov = dict(softmax=True, smooth_nr=1e-3, smooth_dr=1e-3, **options)
    label_ov = DiceSemimetricLoss(to_onehot_y=True, **ov)(student, labels)
    teacher_ov = DiceSemimetricLoss(active_classes="present", **ov)(student, q)
    ce = SoftCrossEntropyLoss(to_onehot_y=True, reduction=reduction)(student, labels)
    kl = kl_reference(student, q, 1.0) * (60 if reduction == "sum" else 1)
    expected = 0.5 * (0.25 * ce + 0.75 * label_ov) + 0.5 * (0.25 * kl + 0.75 * teacher_ov)
    ours = DistillationLoss(to_onehot_y=True, smooth_nr=1e-3, smooth_dr=1e-3, **options)(student, labels, teacher)
    torch.testing.assert_close(ours, expected)
