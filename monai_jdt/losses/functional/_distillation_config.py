"""Validated settings of the distillation loss (shared by the functional form and ``DistillationLoss``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monai_jdt.losses.functional._overlap_config import OverlapConfig, make_config
from monai_jdt.utils.checks import check_bool, check_in_range, check_non_negative, check_option, check_real

__all__ = ["DISTILLATION_OVERLAPS", "DistillationConfig", "make_distillation_config"]

#: overlap losses of the label and teacher terms: name -> (alpha, beta, scale) of the Tversky form.
DISTILLATION_OVERLAPS: dict[str, tuple[float, float, float]] = {"dml": (0.5, 0.5, 2.0), "jml": (1.0, 1.0, 2.0)}
_OVERLAP_NAMES = ("dml", "jml", "ctl")
_REDUCTIONS = ("mean", "sum")
_PASSED_OPTIONS = frozenset(
    {"include_background", "smooth_nr", "smooth_dr", "batch", "ord", "log_loss", "gamma", "class_agnostic",
     "levels", "sync_stats", "fused"}
)  # fmt: skip


@dataclass(frozen=True)
class DistillationConfig:
    """Validated settings: the two overlap configurations and the distillation weights."""

    label: OverlapConfig
    teacher: OverlapConfig
    temperature: float
    lambda_label: float
    lambda_teacher: float
    lambda_ce: float
    lambda_overlap: float
    teacher_is_logits: bool
    teacher_tolerance: float

    def term_weights(self) -> dict[str, float]:
        """The weight of each part in the total (a part with weight 0 is not computed)."""
        return {
            "label_ce": self.lambda_label * self.lambda_ce,
            "label_overlap": self.lambda_label * self.lambda_overlap,
            "teacher_kl": self.lambda_teacher * self.lambda_ce,
            "teacher_overlap": self.lambda_teacher * self.lambda_overlap,
        }


def _overlap_shape(overlap: Any, alpha: Any, beta: Any) -> tuple[float, float, float]:
    name = check_option("overlap", overlap, _OVERLAP_NAMES)
    if name == "ctl":
        return (0.5 if alpha is None else alpha), (0.5 if beta is None else beta), 1.0
    if alpha is not None or beta is not None:
        raise ValueError(f"alpha and beta are fixed by overlap={name!r}; use overlap='ctl' to choose them, "
                         f"got alpha={alpha}, beta={beta}")  # fmt: skip
    return DISTILLATION_OVERLAPS[name]


def make_distillation_config(
    *,
    overlap: str = "dml",
    temperature: float = 1.0,
    lambda_label: float = 0.5,
    lambda_teacher: float = 0.5,
    lambda_ce: float = 0.25,
    lambda_overlap: float = 0.75,
    teacher_active_classes: str = "present",
    teacher_active_threshold: float = 0.01,
    teacher_is_logits: bool = True,
    teacher_tolerance: float = 1e-2,
    alpha: float | None = None,
    beta: float | None = None,
    to_onehot_y: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
    active_classes: str = "all",
    active_threshold: float = 0.01,
    **overlap_options: Any,
) -> DistillationConfig:
    """Check every option (errors name the argument) and return a :class:`DistillationConfig`.

    See :func:`distillation_loss_parts` for the meaning of each option.
    """
    unknown = sorted(set(overlap_options) - _PASSED_OPTIONS)
    if unknown:
        raise TypeError(f"unexpected option(s) {unknown}; the overlap options accepted here are "
                        f"{sorted(_PASSED_OPTIONS)} (the student always goes through a softmax)")  # fmt: skip
    alpha_, beta_, scale = _overlap_shape(overlap, alpha, beta)
    lambdas = {name: check_non_negative(name, value) for name, value in (
        ("lambda_label", lambda_label), ("lambda_teacher", lambda_teacher), ("lambda_ce", lambda_ce),
        ("lambda_overlap", lambda_overlap))}  # fmt: skip
    lam = lambdas
    if lam["lambda_label"] + lam["lambda_teacher"] == 0 or lam["lambda_ce"] + lam["lambda_overlap"] == 0:
        raise ValueError(f"the loss would be identically 0: at least one of lambda_label/lambda_teacher and one of "
                         f"lambda_ce/lambda_overlap must be > 0, got {lambdas}")  # fmt: skip
    reduction = check_option("reduction", reduction, _REDUCTIONS)
    common = dict(alpha=alpha_, beta=beta_, scale=scale, softmax=True, reduction=reduction, **overlap_options)
    label = make_config(to_onehot_y=to_onehot_y, ignore_index=ignore_index, active_classes=active_classes,
                        active_threshold=active_threshold, **common)  # fmt: skip
    teacher = make_config(active_classes=teacher_active_classes, active_threshold=teacher_active_threshold, **common)
    temperature = check_real("temperature", temperature)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature:g}")
    return DistillationConfig(
        label=label,
        teacher=teacher,
        temperature=temperature,
        teacher_is_logits=check_bool("teacher_is_logits", teacher_is_logits),
        teacher_tolerance=check_in_range("teacher_tolerance", teacher_tolerance, 0, 1, low_inclusive=False),
        **lambdas,
    )
