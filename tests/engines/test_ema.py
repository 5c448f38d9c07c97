"""EMA teacher: the update equals its formula (parameters and buffers), copies, wrappers, errors."""

from __future__ import annotations

import copy

import pytest
import torch

from monai_jdt.engines import check_ema_pair, make_ema_teacher, update_ema_teacher
from monai_jdt.utils.errors import ShapeError


def small_net(out_channels: int = 2) -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, out_channels, 1))


def trained_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    """A teacher and a student whose parameters AND BatchNorm statistics differ."""
    student = small_net()
    teacher = make_ema_teacher(student)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p))
    student.train()
    student(torch.randn(4, 1, 8, 8) * 3 + 1)  # moves running_mean/var and num_batches_tracked
    return teacher, student


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.99, 1.0])
def test_update_equals_formula_for_parameters_and_buffers(decay: float) -> None:
    teacher, student = trained_pair()
    before = copy.deepcopy(teacher.state_dict())
    update_ema_teacher(teacher, student, decay)
    student_state = student.state_dict()
    for name, value in teacher.state_dict().items():
        if value.is_floating_point():  # weights, biases, running_mean, running_var
            expected = decay * before[name] + (1.0 - decay) * student_state[name]
            torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7)
        else:  # num_batches_tracked
            assert torch.equal(value, student_state[name])
    assert int(teacher[1].num_batches_tracked) == 1


def test_copy_mode_copies_buffers_and_averages_parameters() -> None:
    teacher, student = trained_pair()
    weight_before = teacher[0].weight.clone()
    update_ema_teacher(teacher, student, 0.9, buffers="copy")
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(teacher[1], name), getattr(student[1], name))
    torch.testing.assert_close(teacher[0].weight, 0.9 * weight_before + 0.1 * student[0].weight)


def test_repeated_updates_follow_the_geometric_closed_form() -> None:
    """k updates towards a fixed student: theta_t = d^k theta_0 + (1 - d^k) theta_s."""
    teacher, student = trained_pair()
    start = {k: v.clone() for k, v in teacher.state_dict().items() if v.is_floating_point()}
    decay, steps = 0.9, 20
    for _ in range(steps):
        update_ema_teacher(teacher, student, decay)
    for name, value in teacher.state_dict().items():
        if name in start:
            expected = decay**steps * start[name] + (1 - decay**steps) * student.state_dict()[name]
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


def test_make_ema_teacher_is_an_independent_frozen_copy() -> None:
    student = small_net().train()
    teacher = make_ema_teacher(student)
    assert teacher is not student and not teacher.training and student.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(p.requires_grad for p in student.parameters())
    for (name, t), (_, s) in zip(teacher.state_dict().items(), student.state_dict().items()):
        assert torch.equal(t, s), name
        assert t.data_ptr() != s.data_ptr()
    with torch.no_grad():
        student[0].weight.add_(1.0)
    assert not torch.equal(teacher[0].weight, student[0].weight)
    out = teacher(torch.randn(1, 1, 8, 8))
    assert not out.requires_grad


def test_update_looks_through_data_parallel_wrappers() -> None:
    teacher, student = trained_pair()
    expected = 0.75 * teacher[0].weight + 0.25 * student[0].weight
    wrapped_teacher = make_ema_teacher(torch.nn.DataParallel(student))
    assert isinstance(wrapped_teacher, torch.nn.Sequential)  # built from the wrapped module
    assert update_ema_teacher(teacher, torch.nn.DataParallel(student), 0.75) is teacher
    torch.testing.assert_close(teacher[0].weight, expected)
    assert teacher[0].weight.grad is None and not teacher[0].weight.requires_grad


def test_errors() -> None:
    teacher, student = trained_pair()
    for decay in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"decay must be in \\[0, 1\\], got {decay:g}"):
            update_ema_teacher(teacher, student, decay)
    with pytest.raises(ValueError, match="decay must be finite"):
        update_ema_teacher(teacher, student, float("nan"))
    with pytest.raises(ValueError, match="buffers must be one of 'ema', 'copy', got 'mean'"):
        update_ema_teacher(teacher, student, 0.9, buffers="mean")
    with pytest.raises(TypeError, match="teacher must be a torch.nn.Module, got OrderedDict"):
        update_ema_teacher(teacher.state_dict(), student, 0.9)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="student must be a torch.nn.Module, got int"):
        make_ema_teacher(3)  # type: ignore[arg-type]
    other = small_net(out_channels=5)
    with pytest.raises(ShapeError, match="teacher parameter '3.weight' must have the student's shape"):
        update_ema_teacher(other, student, 0.9)
    with pytest.raises(ValueError, match="same parameters"):
        check_ema_pair(torch.nn.Linear(2, 2), student)
    with pytest.raises(ValueError, match="dtype"):
        check_ema_pair(copy.deepcopy(student).double(), student)
    with pytest.raises(ValueError, match="separate copy of the student"):
        check_ema_pair(torch.nn.DataParallel(student), student)
    check_ema_pair(teacher, student)  # a matching pair passes


@pytest.mark.parametrize("buffers", ["ema", "copy"])
def test_unchecked_update_equals_checked_update(buffers: str) -> None:
    teacher, student = trained_pair()
    other = copy.deepcopy(teacher)
    update_ema_teacher(teacher, student, 0.7, buffers=buffers)
    update_ema_teacher(other, student, 0.7, buffers=buffers, check=False)
    for name, value in teacher.state_dict().items():
        assert torch.equal(other.state_dict()[name], value), name
    with pytest.raises(TypeError, match="check must be a bool, got int"):
        update_ema_teacher(teacher, student, 0.7, check=1)  # type: ignore[arg-type]
