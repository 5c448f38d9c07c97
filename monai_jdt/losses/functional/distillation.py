r"""Teacher-student knowledge distillation loss for segmentation with soft-label overlap losses (pure functions).

.. math::

    L = \lambda_{label} \left(\lambda_{ce} \mathrm{CE}(z, y) + \lambda_{overlap} \mathrm{Overlap}(\sigma(z), y)\right)
      + \lambda_{teacher} \left(\lambda_{ce} T^2 \mathrm{KL}(q_T \,\|\, \sigma(z / T))
      + \lambda_{overlap} \mathrm{Overlap}(\sigma(z), q_T)\right),
    \qquad q_T = \sigma(t / T)

with the student logits ``z``, the target ``y`` (index map, one-hot or soft), the teacher logits ``t`` and the
softmax ``sigma`` over the channels: the knowledge-distillation recipe of the Jaccard/Dice metric loss papers
(arXiv 2302.05666, 2303.16296). Defaults: ``T = 1``, ``lambda_label = lambda_teacher = 0.5``,
``lambda_ce = 0.25``, ``lambda_overlap = 0.75``, Overlap = the Dice semimetric loss (DML; JML or CTL selectable).

* The KL term is ``T^2 sum_c q_c (log q_c - log softmax(z / T)_c)``: summed over classes, averaged over the kept
  voxels of the batch (as the cross-entropy). Only this term sees the temperature; the teacher's overlap term
  compares the student's ``T = 1`` probabilities with ``q_T`` (as the papers).
* The teacher's overlap term selects classes on the teacher's confidence: ``teacher_active_classes="present"``
  counts a class where ``max q_T > teacher_active_threshold`` over the voxels of the reduction unit.
* A teacher given as probabilities ``p`` (``teacher_is_logits=False``, e.g. maps written by
  :func:`monai_jdt.engines.write_teacher_maps`) must sum to 1 over the classes (within ``teacher_tolerance``) at
  every kept voxel; it is used as logits ``log p``, i.e. ``q_T = p^{1/T} / sum_c p_c^{1/T}`` (exactly ``p``
  renormalised for ``T = 1``).
* The teacher is a fixed target: no gradient flows into it (the papers compute it under ``no_grad``).
* ``mask`` and ``ignore_index`` (of the target) exclude voxels from all four terms.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from monai_jdt.losses.functional._distillation_config import (
    DISTILLATION_OVERLAPS,
    DistillationConfig,
    make_distillation_config,
)
from monai_jdt.losses.functional._overlap_config import check_weight
from monai_jdt.losses.functional.cross_entropy import check_class_weight, soft_cross_entropy
from monai_jdt.losses.functional.overlap import overlap_loss
from monai_jdt.utils.errors import ShapeError
from monai_jdt.utils.targets import prepare_mask, prepare_target

__all__ = [
    "DISTILLATION_OVERLAPS",
    "DistillationConfig",
    "DistillationParts",
    "distillation_kl_div",
    "distillation_loss",
    "distillation_loss_parts",
    "distillation_parts",
    "make_distillation_config",
    "teacher_distribution",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class DistillationParts(NamedTuple):
    """The loss and its unweighted parts (``None`` for a part whose weight is 0, which is not computed).

    ``total = lambda_label * (lambda_ce * label_ce + lambda_overlap * label_overlap)
    + lambda_teacher * (lambda_ce * teacher_kl + lambda_overlap * teacher_overlap)``; ``teacher_kl`` includes the
    ``T^2`` factor.
    """

    total: torch.Tensor
    label_ce: torch.Tensor | None
    label_overlap: torch.Tensor | None
    teacher_kl: torch.Tensor | None
    teacher_overlap: torch.Tensor | None

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The computed parts (not ``total``), detached, for logging."""
        return {k: v.detach() for k, v in self._asdict().items() if k != "total" and v is not None}


def _check_student(input: Any) -> None:
    if not isinstance(input, torch.Tensor) or not input.is_floating_point():
        got = input.dtype if isinstance(input, torch.Tensor) else type(input).__name__
        raise TypeError(f"input must be a floating-point torch.Tensor of student logits, got {got}")
    if input.ndim < 3 or input.shape[1] < 2:
        raise ShapeError(f"input must be (B, C, *spatial) logits with C >= 2 (the loss uses a softmax; give a binary "
                         f"task two channels), got shape {tuple(input.shape)}")  # fmt: skip


def _check_probabilities(p: torch.Tensor, keep: torch.Tensor | None, tolerance: float) -> None:
    kept = p if keep is None else p.movedim(1, -1)[keep]
    if kept.numel() == 0:
        return
    lo, hi = torch.aminmax(kept)
    if float(lo) < -tolerance or float(hi) > 1 + tolerance:
        raise ValueError(f"teacher probabilities must be in [0, 1], got values in [{float(lo):g}, {float(hi):g}] "
                         "(pass teacher_is_logits=True for logits)")  # fmt: skip
    sums = p.sum(1) if keep is None else p.sum(1)[keep]
    slo, shi = torch.aminmax(sums)
    if float(slo) < 1 - tolerance or float(shi) > 1 + tolerance:
        raise ValueError(f"teacher probabilities must sum to 1 over the classes (tolerance {tolerance:g}), got sums "
                         f"in [{float(slo):g}, {float(shi):g}] at kept voxels (pass teacher_is_logits=True for "
                         "logits)")  # fmt: skip


def teacher_distribution(
    teacher: torch.Tensor,
    like: torch.Tensor,
    *,
    temperature: float = 1.0,
    is_logits: bool = True,
    keep: torch.Tensor | None = None,
    tolerance: float = 1e-2,
) -> torch.Tensor:
    """The teacher's softened distribution ``q_T`` (detached, with ``like``'s dtype and device).

    Args:
        teacher: ``(B, C, *spatial)`` logits, or probabilities with ``is_logits=False``.
        like: the student logits (shape, dtype and device to match).
        temperature: ``T > 0``; ``q_T = softmax(t / T)``, for probabilities ``softmax(log p / T)``.
        is_logits: whether ``teacher`` holds logits.
        keep: optional ``(B, *spatial)`` bool, the voxels that count (only they are checked; the others get a
            uniform distribution so that nothing there can be NaN).
        tolerance: allowed deviation of the probabilities from ``[0, 1]`` and of their sum from 1.

    Raises:
        TypeError: ``teacher`` is not a floating-point tensor.
        ShapeError: ``teacher`` does not have the student's shape.
        ValueError: non-finite values; probabilities outside ``[0, 1]`` or not summing to 1.
    """
    if not isinstance(teacher, torch.Tensor) or not teacher.is_floating_point():
        got = teacher.dtype if isinstance(teacher, torch.Tensor) else type(teacher).__name__
        raise TypeError(f"teacher must be a floating-point torch.Tensor, got {got}")
    if teacher.shape != like.shape:
        raise ShapeError(f"teacher must have the student's shape {tuple(like.shape)}, got {tuple(teacher.shape)}")
    t = teacher.detach().to(device=like.device, dtype=like.dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("teacher must hold finite values, got NaN or infinity")
    if not is_logits:
        _check_probabilities(t, keep, tolerance)
        t = t.clamp(0, 1)
        if keep is not None:
            t = torch.where(keep.unsqueeze(1), t, torch.ones((), dtype=t.dtype, device=t.device))
        t = torch.log(t)  # zeros -> -inf: softmax(log p / T) is p^(1/T) renormalised, exactly 0 where p = 0
    return torch.softmax(t / temperature, dim=1)


def _masked_reduce(values: torch.Tensor, keep: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if keep is not None:
        values = torch.where(keep, values, torch.zeros((), dtype=values.dtype, device=values.device))
    total = values.sum()
    if reduction == "sum":
        return total
    count = values.numel() if keep is None else keep.sum()
    count = torch.as_tensor(count, dtype=total.dtype, device=total.device)
    return total / count.clamp_min(1)


def _kl_term(
    input: torch.Tensor, q: torch.Tensor, keep: torch.Tensor | None, temperature: float, reduction: str
) -> torch.Tensor:
    """``T^2 sum_c q_c (log q_c - log softmax(z / T)_c)``, reduced over the kept voxels.

    Computed as the soft-target cross-entropy ``-sum_c q_c log softmax(z / T)_c`` (torch's fused kernel, gradient
    ``softmax(z / T) - q``) minus the teacher's entropy (a constant, without graph).
    """
    x = input.float() if input.dtype in _LOW_PRECISION else input
    with torch.autocast(device_type=x.device.type, enabled=False):
        with torch.no_grad():
            neg_entropy = torch.special.xlogy(q, q).sum(1)
        kl = torch.nn.functional.cross_entropy(x / temperature, q, reduction="none") + neg_entropy
        return temperature**2 * _masked_reduce(kl, keep, reduction)


def distillation_kl_div(
    input: torch.Tensor,
    teacher: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    teacher_is_logits: bool = True,
    teacher_tolerance: float = 1e-2,
    reduction: str = "mean",
) -> torch.Tensor:
    """The distillation KL term ``T^2 KL(softmax(t / T) || softmax(z / T))`` (Hinton et al., arXiv 1503.02531).

    Summed over the classes, averaged over the kept voxels (``reduction="mean"``) or summed (``"sum"``).

    Args:
        input: ``(B, C, *spatial)`` student logits, ``C >= 2``.
        teacher: teacher logits of the same shape, or probabilities with ``teacher_is_logits=False``.
        mask: optional ``(B, 1, *spatial)``/``(B, *spatial)`` bool voxel mask (``True`` = counts).
        temperature: ``T > 0``.
        teacher_is_logits: whether ``teacher`` holds logits.
        teacher_tolerance: tolerance of the probability checks (sum to 1, values in ``[0, 1]``).
        reduction: ``"mean"`` or ``"sum"``.

    Raises:
        ShapeError, TypeError, ValueError: see :func:`teacher_distribution`; bad option values.

    Example:
        >>> z, t = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
        >>> p, log_p = t.softmax(1), t.log_softmax(1)
        >>> ref = (p * (log_p - z.log_softmax(1))).sum(1).mean()
        >>> bool(torch.isclose(distillation_kl_div(z, t), ref))
        True
    """
    _check_student(input)
    cfg = make_distillation_config(temperature=temperature, teacher_is_logits=teacher_is_logits,
                                   teacher_tolerance=teacher_tolerance, reduction=reduction)  # fmt: skip
    keep = prepare_mask(mask, input)
    return _kl_term(input, _teacher_q(input, teacher, keep, cfg), keep, cfg.temperature, cfg.label.reduction)


def _teacher_q(
    input: torch.Tensor, teacher: torch.Tensor, keep: torch.Tensor | None, cfg: DistillationConfig
) -> torch.Tensor:
    """``q_T`` in the dtype the loss is computed in (float32 for a float16/bfloat16 student)."""
    like = input.detach().float() if input.dtype in _LOW_PRECISION else input.detach()
    return teacher_distribution(teacher, like, temperature=cfg.temperature, is_logits=cfg.teacher_is_logits,
                                keep=keep, tolerance=cfg.teacher_tolerance)  # fmt: skip


def distillation_parts(
    input: torch.Tensor,
    target: torch.Tensor | None,
    teacher: torch.Tensor | None,
    cfg: DistillationConfig,
    weight: torch.Tensor | None = None,
    ce_weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> DistillationParts:
    """The loss and its parts for validated settings (what :func:`distillation_loss_parts` and the module call).

    ``target`` may be ``None`` when ``lambda_label == 0`` and ``teacher`` may be ``None`` when
    ``lambda_teacher == 0``.
    """
    _check_student(input)
    weights = cfg.term_weights()
    need_label = weights["label_ce"] > 0 or weights["label_overlap"] > 0
    need_teacher = weights["teacher_kl"] > 0 or weights["teacher_overlap"] > 0
    if need_label and target is None:
        raise ValueError("target must be given when lambda_label > 0, got None")
    if need_teacher and teacher is None:
        raise ValueError("teacher must be given when lambda_teacher > 0, got None")
    if target is not None and cfg.label.ignore_index is not None:  # the voxels ignore_index removes
        keep = prepare_target(input, target, to_onehot_y=cfg.label.to_onehot_y, ignore_index=cfg.label.ignore_index,
                              mask=mask).mask  # fmt: skip
    else:  # the label terms validate the target themselves
        keep = prepare_mask(mask, input)
    parts: dict[str, torch.Tensor | None] = dict.fromkeys(weights)
    if weights["label_ce"] > 0:
        parts["label_ce"] = soft_cross_entropy(input, target, keep, to_onehot_y=cfg.label.to_onehot_y,
                                               weight=ce_weight, ignore_index=cfg.label.ignore_index,
                                               reduction=cfg.label.reduction)  # fmt: skip
    if weights["label_overlap"] > 0:
        parts["label_overlap"] = overlap_loss(input, target, cfg.label, weight, keep)
    if need_teacher:
        q = _teacher_q(input, teacher, keep, cfg)  # type: ignore[arg-type]
        if weights["teacher_kl"] > 0:
            parts["teacher_kl"] = _kl_term(input, q, keep, cfg.temperature, cfg.label.reduction)
        if weights["teacher_overlap"] > 0:
            parts["teacher_overlap"] = overlap_loss(input, q, cfg.teacher, weight, keep)
    total = sum(weights[name] * value for name, value in parts.items() if value is not None)
    return DistillationParts(total=total, **parts)  # type: ignore[arg-type]


def distillation_loss_parts(
    input: torch.Tensor,
    target: torch.Tensor | None,
    teacher: torch.Tensor | None,
    mask: torch.Tensor | None = None,
    *,
    weight: Any = None,
    ce_weight: Any = None,
    **options: Any,
) -> DistillationParts:
    """The distillation loss (module docstring) with its four parts.

    Args:
        input: ``(B, C, *spatial)`` student logits, ``C >= 2`` (a softmax over the channels).
        target: index map (``to_onehot_y=True``), one-hot or soft probabilities; ``None`` only with
            ``lambda_label=0`` (pure distillation, e.g. on unlabelled images).
        teacher: ``(B, C, *spatial)`` teacher logits (or probabilities with ``teacher_is_logits=False``); ``None``
            only with ``lambda_teacher=0``. Treated as a constant (detached).
        mask: optional ``(B, 1, *spatial)``/``(B, *spatial)`` bool voxel mask (``True`` = counts), for all terms.
        weight: class weights of both overlap terms (as :class:`~monai_jdt.losses.DiceSemimetricLoss`).
        ce_weight: class weights (``C`` entries) of the label CE term; the KL term has none.
        options: ``overlap`` (``"dml"``, ``"jml"`` or ``"ctl"``; ``alpha``/``beta`` for CTL, default 0.5/0.5),
            ``temperature`` (``> 0``, default 1), ``lambda_label``, ``lambda_teacher`` (0.5, 0.5), ``lambda_ce``,
            ``lambda_overlap`` (0.25, 0.75; all ``>= 0``), ``teacher_active_classes`` (``"present"``: the
            teacher's ``max q_T > teacher_active_threshold``; or ``"all"``, ``"prob"``, ``"both"``),
            ``teacher_active_threshold`` (0.01), ``teacher_is_logits`` (True), ``teacher_tolerance`` (0.01, for
            probabilities), ``to_onehot_y`` and ``ignore_index`` (of the target; ``ignore_index`` voxels leave every
            term), ``reduction`` (``"mean"``/``"sum"``), the label term's ``active_classes``/``active_threshold``
            (default ``"all"`` as the overlap losses), and the overlap options shared by both overlap terms:
            ``include_background`` (overlap terms only; CE/KL always cover every class), ``smooth_nr``,
            ``smooth_dr``, ``batch``, ``ord``, ``log_loss``, ``gamma``, ``class_agnostic``, ``levels``,
            ``sync_stats``, ``fused``.

    Returns:
        :class:`DistillationParts` ``(total, label_ce, label_overlap, teacher_kl, teacher_overlap)``.

    Raises:
        ValueError: options out of range (``temperature <= 0``, a negative ``lambda_*``, all-zero weights, an
            unknown ``overlap``), bad target values, teacher probabilities that do not sum to 1, non-finite teacher.
        ShapeError: student, target, teacher or mask shapes that do not fit; fewer than 2 channels.
        TypeError: options of the wrong type or unknown options.

    Example:
        >>> z = torch.randn(2, 3, 8, 8, requires_grad=True)
        >>> y = torch.randint(0, 3, (2, 1, 8, 8))
        >>> parts = distillation_loss_parts(z, y, torch.randn(2, 3, 8, 8), to_onehot_y=True)
        >>> total = 0.5 * (0.25 * parts.label_ce + 0.75 * parts.label_overlap)
        >>> total = total + 0.5 * (0.25 * parts.teacher_kl + 0.75 * parts.teacher_overlap)
        >>> bool(torch.isclose(parts.total, total))
        True
    """
    cfg = make_distillation_config(**options)
    return distillation_parts(input, target, teacher, cfg, check_weight(weight),
                              check_class_weight(ce_weight, "ce_weight"), mask)  # fmt: skip


def distillation_loss(
    input: torch.Tensor,
    target: torch.Tensor | None,
    teacher: torch.Tensor | None,
    mask: torch.Tensor | None = None,
    **options: Any,
) -> torch.Tensor:
    """The total of :func:`distillation_loss_parts` (same arguments).

    Example:
        >>> y = torch.randint(0, 3, (2, 1, 8, 8))
        >>> onehot = torch.nn.functional.one_hot(y[:, 0], 3).movedim(-1, 1).float()
        >>> z = torch.randn(2, 3, 8, 8)
        >>> # a teacher equal to the ground truth: the teacher term equals the label term
        >>> kd = distillation_loss(z, y, onehot, to_onehot_y=True, teacher_is_logits=False,
        ...                        lambda_label=0.0, lambda_teacher=1.0, active_classes="present")
        >>> sup = distillation_loss(z, y, None, to_onehot_y=True, lambda_label=1.0, lambda_teacher=0.0,
        ...                         active_classes="present")
        >>> bool(torch.isclose(kd, sup))
        True
    """
    return distillation_loss_parts(input, target, teacher, mask, **options).total
