"""``DistillationLoss``: teacher-student knowledge distillation with CE/KL and soft-label overlap terms.

A thin :class:`torch.nn.modules.loss._Loss` that checks and stores the settings once and calls
:func:`monai_jdt.losses.functional.distillation.distillation_parts`; the last parts are kept for logging.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.modules.loss import _Loss

from monai_jdt.losses.functional._overlap_config import check_weight
from monai_jdt.losses.functional.cross_entropy import check_class_weight
from monai_jdt.losses.functional.distillation import DistillationConfig, distillation_parts, make_distillation_config

__all__ = ["DistillationLoss"]


class DistillationLoss(_Loss):
    r"""Knowledge distillation loss of the JML/DML papers (arXiv 2302.05666, 2303.16296) for segmentation.

    .. math::

        L = \lambda_{label} (\lambda_{ce} \mathrm{CE}(z, y) + \lambda_{overlap} \mathrm{Overlap}(\sigma(z), y))
          + \lambda_{teacher} (\lambda_{ce} T^2 \mathrm{KL}(\sigma(t/T) \| \sigma(z/T))
          + \lambda_{overlap} \mathrm{Overlap}(\sigma(z), \sigma(t/T)))

    with student logits ``z``, target ``y`` (index map, one-hot or soft), teacher logits ``t`` (or probabilities),
    ``sigma`` the softmax over the channels and Overlap the Dice semimetric (``"dml"``), Jaccard metric
    (``"jml"``) or compatible Tversky (``"ctl"``) loss. The KL term is summed over classes and averaged over the
    kept voxels; the teacher's overlap term uses the student's ``T = 1`` probabilities and, by default, only the
    classes the teacher is confident about (``teacher_active_classes="present"``: ``max q_T > 0.01``).
    ``mask``/``ignore_index`` voxels leave every term. The teacher is a constant target (detached).
    After each call ``last_parts`` holds ``{"label_ce", "label_overlap", "teacher_kl", "teacher_overlap"}``
    (detached; ``teacher_kl`` includes ``T^2``; a part with weight 0 is not computed and not listed).
    See :mod:`monai_jdt.losses.functional.distillation`.

    Example:
        >>> loss_fn = DistillationLoss(to_onehot_y=True, temperature=2.0)
        >>> student = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
        >>> labels = torch.randint(0, 3, (2, 1, 8, 8, 8))
        >>> teacher = torch.randn(2, 3, 8, 8, 8)  # teacher logits
        >>> loss = loss_fn(student, labels, teacher)
        >>> loss.backward()
        >>> sorted(loss_fn.last_parts)
        ['label_ce', 'label_overlap', 'teacher_kl', 'teacher_overlap']
    """

    weight: torch.Tensor | None
    ce_weight: torch.Tensor | None

    def __init__(
        self,
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
        weight: Any = None,
        ce_weight: Any = None,
        **overlap_options: Any,
    ) -> None:
        """
        Args:
            overlap: ``"dml"`` (Dice semimetric loss), ``"jml"`` (Jaccard metric loss) or ``"ctl"`` (compatible
                Tversky loss; then ``alpha``/``beta`` may be given, default 0.5/0.5).
            temperature: ``T > 0`` of the KL term (the teacher's overlap term uses ``softmax(t / T)`` as target).
            lambda_label: weight of the label term, ``>= 0``.
            lambda_teacher: weight of the teacher term, ``>= 0``.
            lambda_ce: weight of CE (label term) and KL (teacher term), ``>= 0``.
            lambda_overlap: weight of the overlap losses in both terms, ``>= 0``.
            teacher_active_classes: active classes of the teacher's overlap term: ``"present"`` (the teacher's
                ``max q_T`` over the reduction unit exceeds ``teacher_active_threshold``), ``"all"``, ``"prob"``
                (the student's probability) or ``"both"``.
            teacher_active_threshold: threshold of ``teacher_active_classes``, in ``[0, 1)``.
            teacher_is_logits: the teacher is logits (True) or probabilities (False, e.g. offline teacher maps);
                probabilities must sum to 1 over the classes within ``teacher_tolerance``.
            teacher_tolerance: tolerance of the probability checks, in ``(0, 1]`` (the default 0.01 accepts maps
                stored in 16 or 8 bits).
            weight: class weights of both overlap terms (a number or one per class after removing the background).
            ce_weight: class weights (``C`` entries) of the label CE term.
            overlap_options: options of the label term's target and overlap loss: ``to_onehot_y``,
                ``ignore_index``, ``active_classes`` / ``active_threshold`` (label term only; default ``"all"``),
                ``alpha``, ``beta`` (CTL only), ``reduction`` (``"mean"``/``"sum"``), and, shared by both overlap
                terms, ``include_background`` (CE/KL always cover every class), ``smooth_nr``, ``smooth_dr``,
                ``batch``, ``ord``, ``log_loss``, ``gamma``, ``class_agnostic``, ``levels``, ``sync_stats``,
                ``fused``.

        Raises:
            ValueError: an option out of range (``temperature <= 0``, a negative ``lambda_*``, all weights 0, an
                unknown ``overlap`` or ``active_classes``, ``alpha`` given for DML/JML, ...).
            TypeError: an option of the wrong type or an unknown option (e.g. ``sigmoid``: the student always goes
                through a softmax).
        """
        self.config: DistillationConfig = make_distillation_config(
            overlap=overlap,
            temperature=temperature,
            lambda_label=lambda_label,
            lambda_teacher=lambda_teacher,
            lambda_ce=lambda_ce,
            lambda_overlap=lambda_overlap,
            teacher_active_classes=teacher_active_classes,
            teacher_active_threshold=teacher_active_threshold,
            teacher_is_logits=teacher_is_logits,
            teacher_tolerance=teacher_tolerance,
            **overlap_options,
        )
        super().__init__(reduction=self.config.label.reduction)
        self.overlap = overlap
        self.register_buffer("weight", check_weight(weight))
        self.register_buffer("ce_weight", check_class_weight(ce_weight, "ce_weight"))
        self.last_parts: dict[str, torch.Tensor] = {}

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None,
        teacher: torch.Tensor | None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss; ``last_parts`` then holds the computed parts (detached).

        Args:
            input: ``(B, C, *spatial)`` student logits, ``C >= 2``.
            target: ``(B, C, *spatial)`` one-hot/soft target, or an index map with ``to_onehot_y=True``; ``None``
                only with ``lambda_label=0``.
            teacher: ``(B, C, *spatial)`` teacher logits (or probabilities with ``teacher_is_logits=False``);
                ``None`` only with ``lambda_teacher=0``.
            mask: optional bool ``(B, 1, *spatial)``/``(B, *spatial)`` voxel mask, ``True`` where a voxel counts.

        Raises:
            ShapeError, ValueError, TypeError: see
                :func:`~monai_jdt.losses.functional.distillation.distillation_loss_parts`.
        """
        parts = distillation_parts(input, target, teacher, self.config, self.weight, self.ce_weight, mask)
        self.last_parts = parts.as_dict()
        return parts.total

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"overlap={self.overlap!r}, temperature={c.temperature}, lambda_label={c.lambda_label}, "
            f"lambda_teacher={c.lambda_teacher}, lambda_ce={c.lambda_ce}, lambda_overlap={c.lambda_overlap}, "
            f"teacher_active_classes={c.teacher.active_classes!r}"
        )
