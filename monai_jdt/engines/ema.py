r"""Exponential-moving-average (EMA) teacher of the mean-teacher method (Tarvainen & Valpola, arXiv 1703.01780).

After every optimizer step of the student ``theta_s`` the teacher ``theta_t`` is updated in place:

.. math::

    \theta_t \leftarrow d \, \theta_t + (1 - d) \, \theta_s, \qquad d \in [0, 1] \text{ (the decay)}

for every parameter. Buffers (BatchNorm/InstanceNorm running statistics) follow ``buffers``: ``"ema"`` (default)
applies the same formula to the floating-point buffers, so the teacher's normalisation statistics average over the
same window as its weights (as ``torch.optim.swa_utils.AveragedModel(use_buffers=True)`` and timm's ``ModelEmaV2``);
``"copy"`` copies the student's buffers. Integer buffers (``num_batches_tracked``) are always copied.
``d = 0`` makes the teacher a copy of the student, ``d = 1`` freezes it.
"""

from __future__ import annotations

import copy

import torch

from monai_jdt.utils.checks import check_bool, check_in_range, check_option
from monai_jdt.utils.errors import ShapeError

__all__ = ["EMA_BUFFER_MODES", "check_ema_pair", "make_ema_teacher", "unwrap_network", "update_ema_teacher"]

#: how :func:`update_ema_teacher` treats floating-point buffers.
EMA_BUFFER_MODES = ("ema", "copy")


def unwrap_network(network: torch.nn.Module) -> torch.nn.Module:
    """The module under ``DistributedDataParallel``/``DataParallel`` (``.module``) and ``torch.compile`` wrappers."""
    while True:
        if isinstance(network, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            network = network.module
        elif hasattr(network, "_orig_mod") and isinstance(network._orig_mod, torch.nn.Module):
            network = network._orig_mod
        else:
            return network


def make_ema_teacher(student: torch.nn.Module) -> torch.nn.Module:
    """A teacher for :func:`update_ema_teacher`: a deep copy of the (unwrapped) student, frozen, in eval mode.

    The copy lives on the student's device with its dtype; its parameters have ``requires_grad=False``.

    Raises:
        TypeError: ``student`` is not a ``torch.nn.Module``.

    Example:
        >>> student = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
        >>> teacher = make_ema_teacher(student)
        >>> teacher.training, any(p.requires_grad for p in teacher.parameters()), teacher is student
        (False, False, False)
    """
    if not isinstance(student, torch.nn.Module):
        raise TypeError(f"student must be a torch.nn.Module, got {type(student).__name__}")
    teacher = copy.deepcopy(unwrap_network(student))
    teacher.requires_grad_(False)
    return teacher.eval()


def _paired(kind: str, teacher: dict[str, torch.Tensor], student: dict[str, torch.Tensor]) -> list[str]:
    """The common names, after checking that both networks have the same tensors (names, shapes, devices)."""
    if teacher.keys() != student.keys():
        only_t = sorted(set(teacher) - set(student))[:3]
        only_s = sorted(set(student) - set(teacher))[:3]
        raise ValueError(
            f"teacher and student must have the same {kind}s (the teacher is a copy of the student), got "
            f"teacher-only {only_t} and student-only {only_s}"
        )
    for name, t in teacher.items():
        s = student[name]
        if t.shape != s.shape:
            raise ShapeError(f"teacher {kind} {name!r} must have the student's shape {tuple(s.shape)}, "
                             f"got {tuple(t.shape)}")  # fmt: skip
        if t.device != s.device or t.dtype != s.dtype:
            raise ValueError(f"teacher {kind} {name!r} must have the student's device and dtype ({s.device}, "
                             f"{s.dtype}), got ({t.device}, {t.dtype})")  # fmt: skip
    return list(teacher)


def check_ema_pair(teacher: torch.nn.Module, student: torch.nn.Module) -> None:
    """Check that ``teacher`` can follow ``student``: same parameter and buffer names, shapes, devices, dtypes.

    Raises:
        TypeError: a network that is not a ``torch.nn.Module``.
        ValueError: different names, devices or dtypes; the teacher is the student itself.
        ShapeError: different shapes.
    """
    for name, net in (("teacher", teacher), ("student", student)):
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"{name} must be a torch.nn.Module, got {type(net).__name__}")
    net_t, net_s = unwrap_network(teacher), unwrap_network(student)
    if net_t is net_s:
        raise ValueError("teacher must be a separate copy of the student, got the student network itself")
    _paired("parameter", dict(net_t.named_parameters()), dict(net_s.named_parameters()))
    _paired("buffer", dict(net_t.named_buffers()), dict(net_s.named_buffers()))


@torch.no_grad()
def _ema_(targets: list[torch.Tensor], sources: list[torch.Tensor], decay: float) -> None:
    """``t <- decay * t + (1 - decay) * s`` for every pair (two fused multi-tensor kernels)."""
    if targets:
        torch._foreach_mul_(targets, decay)
        torch._foreach_add_(targets, sources, alpha=1.0 - decay)


def update_ema_teacher(
    teacher: torch.nn.Module, student: torch.nn.Module, decay: float, buffers: str = "ema", check: bool = True
) -> torch.nn.Module:
    r"""Update the teacher in place: ``theta_t <- decay * theta_t + (1 - decay) * theta_s`` (arXiv 1703.01780).

    Args:
        teacher: the EMA network (e.g. from :func:`make_ema_teacher`): same parameter and buffer names, shapes,
            devices and dtypes as the student.
        student: the trained network. ``DistributedDataParallel``/``DataParallel``/``torch.compile`` wrappers of
            either network are looked through.
        decay: ``d`` in ``[0, 1]``: 0 copies the student, 1 leaves the teacher unchanged.
        buffers: ``"ema"`` (floating-point buffers follow the same formula) or ``"copy"`` (copied from the
            student); integer buffers are copied in both modes.
        check: match the tensors by name and check them on every call (default). ``False`` pairs
            ``parameters()``/``buffers()`` in order without checks (about twice as fast for small networks): only
            after :func:`check_ema_pair` has accepted the pair, as :class:`~monai_jdt.engines.MeanTeacherTrainer` does.

    Returns:
        ``teacher`` (updated in place, without autograd history).

    Raises:
        ValueError: ``decay`` outside ``[0, 1]``, an unknown ``buffers`` mode, networks with different parameter or
            buffer names, devices or dtypes.
        ShapeError: a parameter or buffer whose shape differs.
        TypeError: a network that is not a ``torch.nn.Module``.

    Example:
        >>> student = torch.nn.Linear(2, 1)
        >>> teacher = make_ema_teacher(student)
        >>> with torch.no_grad():
        ...     _ = student.weight.add_(1.0)
        >>> expected = 0.9 * teacher.weight + 0.1 * student.weight
        >>> bool(torch.allclose(update_ema_teacher(teacher, student, 0.9).weight, expected))
        True
    """
    for name, net in (("teacher", teacher), ("student", student)):
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"{name} must be a torch.nn.Module, got {type(net).__name__}")
    decay = check_in_range("decay", decay, 0.0, 1.0)
    buffers = check_option("buffers", buffers, EMA_BUFFER_MODES)
    check_bool("check", check)
    net_t, net_s = unwrap_network(teacher), unwrap_network(student)
    if check:
        t_params, s_params = dict(net_t.named_parameters()), dict(net_s.named_parameters())
        pairs = [(t_params[n], s_params[n]) for n in _paired("parameter", t_params, s_params)]
        t_bufs, s_bufs = dict(net_t.named_buffers()), dict(net_s.named_buffers())
        buffer_pairs = [(t_bufs[n], s_bufs[n]) for n in _paired("buffer", t_bufs, s_bufs)]
    else:
        pairs = list(zip(net_t.parameters(), net_s.parameters()))
        buffer_pairs = list(zip(net_t.buffers(), net_s.buffers()))
    _ema_([t for t, _ in pairs], [s.detach() for _, s in pairs], decay)
    averaged = [(t, s) for t, s in buffer_pairs if buffers == "ema" and t.is_floating_point()]
    _ema_([t for t, _ in averaged], [s for _, s in averaged], decay)
    with torch.no_grad():
        for t, s in buffer_pairs:
            if buffers == "copy" or not t.is_floating_point():
                t.copy_(s)
    return teacher
