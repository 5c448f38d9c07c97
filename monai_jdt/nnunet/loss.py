r"""nnU-Net's ``DC_and_CE_loss`` / ``DC_and_BCE_loss`` with the Dice term replaced by DML or JML (pure torch).

This module does not import nnU-Net: it takes nnU-Net's tensors (the network output of one deep-supervision
level and nnU-Net's target for it) and computes

.. math::

    L = w_{ce}\, \mathrm{CE}(z, y) + w_{dice}\, \mathrm{Overlap}(\mathrm{act}(z), y)

exactly as nnU-Net's compound losses do, except that the Dice term is the Dice semimetric loss (DML,
arXiv 2303.16296) or the Jaccard metric loss (JML, arXiv 2302.05666), which are correct for soft labels:

.. math::

    \mathrm{DML}_c = 1 - \frac{|x_c| + |y_c| - |x_c - y_c| + s}{|x_c| + |y_c| + s}, \qquad
    \mathrm{JML}_c = 1 - \frac{|x_c| + |y_c| - |x_c - y_c| + s}{|x_c| + |y_c| + |x_c - y_c| + s}

(L1 cardinalities over the voxels of one image, or of the whole batch with ``batch_dice``; mean over the kept
classes, then over images). On hard labels ``|x| + |y| - |x - y| = 2 sum x y``, so DML is ``1 -`` nnU-Net's soft
Dice ``(2 sum x y + s) / (sum x + sum y + s)`` with the same ``smooth`` ``s``.

**Sign convention.** nnU-Net's Dice loss is ``-dice`` (in ``[-1, 0]``); ours is ``1 - dice`` (in ``[0, 1]``).
On hard labels ``ours == nnU-Net + weight_dice`` for every deep-supervision level, and since nnU-Net's
deep-supervision weights sum to 1 the whole training loss is offset by exactly ``weight_dice`` (1 by default):
a logged nnU-Net loss of -0.62 reads 0.38 here. Gradients are identical.

nnU-Net semantics that are kept:

* **softmax (labels)**: ``target`` is ``(B, 1, *spatial)`` integer labels (any dtype); softmax over the
  channels; the background is dropped from the overlap term (``do_bg=False``) after the softmax; the CE term
  covers every class. ``ignore_label`` removes its voxels from both terms; the CE term is 0 when nothing is
  annotated.
* **sigmoid (regions)**: ``target`` is ``(B, R, *spatial)`` binary region maps, plus the ignore flag as the last
  channel when ``ignore_label`` is set (nnU-Net's layout); the overlap term keeps every region
  (``do_bg=True``); the BCE term is the mean over voxels and regions, and with an ignore channel nnU-Net's
  ``sum / number of annotated voxels`` (that is ``R`` times the masked mean, reproduced on purpose).
* ``batch_dice`` pools the counts over the batch; ``sync_stats`` all-reduces the pooled counts with gradients
  under ``torch.distributed``, as nnU-Net's ``ddp`` all-gather.

Additions: ``overlap="jaccard"``, ``class_agnostic`` (pool the counts of the kept classes before the ratio),
``active_classes`` (``"all"`` as nnU-Net; ``"present"`` averages only over the classes present in the target)
and boundary label smoothing of the integer target (``smoothing_epsilon > 0``, see
:func:`monai_jdt.transforms.functional.boundary_label_smoothing`), computed on the target's device for each
deep-supervision level and fed to both terms (soft CE and soft DML/JML).
"""

from __future__ import annotations

import torch
from torch import nn

from monai_jdt.losses.functional.compound import CEOverlapParts
from monai_jdt.losses.functional.cross_entropy import soft_cross_entropy
from monai_jdt.losses.functional.overlap import dice_semimetric_loss, jaccard_metric_loss
from monai_jdt.transforms.functional.boundary import boundary_mask
from monai_jdt.transforms.functional.smoothing import boundary_label_smoothing
from monai_jdt.utils.checks import check_bool, check_in_range, check_non_negative, check_option, check_positive_int
from monai_jdt.utils.errors import ShapeError

__all__ = ["NNUNetOverlapCELoss", "nnunet_overlap_ce_loss", "nnunet_overlap_ce_parts"]

_OVERLAPS = {"dice": dice_semimetric_loss, "jaccard": jaccard_metric_loss}
_ACTIVE = ("all", "present")


def _check_options(
    overlap: str, smooth: float, weight_ce: float, weight_dice: float, active_classes: str, epsilon: float,
    kernel_size: int, flags: dict[str, bool], ignore_label: int | None,
) -> None:
    check_option("overlap", overlap, tuple(_OVERLAPS))
    check_non_negative("smooth", smooth)
    check_non_negative("weight_ce", weight_ce)
    check_non_negative("weight_dice", weight_dice)
    check_option("active_classes", active_classes, _ACTIVE)
    check_in_range("smoothing_epsilon", epsilon, 0.0, 1.0)
    check_positive_int("smoothing_kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(f"smoothing_kernel_size must be odd, got {kernel_size}")
    for name, value in flags.items():
        check_bool(name, value)
    if ignore_label is not None and (isinstance(ignore_label, bool) or not isinstance(ignore_label, int)):
        raise TypeError(f"ignore_label must be an int or None, got {type(ignore_label).__name__} {ignore_label!r}")


def _target_dtype(net_output: torch.Tensor) -> torch.dtype:
    """float32 at least: under CUDA autocast the logits are float16, the smoothed targets must not be."""
    return torch.promote_types(net_output.dtype, torch.float32)


def _ce_logits(net_output: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 logits as float32 for the CE term, so a soft target is not rounded to the logits' dtype."""
    return net_output.float() if net_output.dtype in (torch.float16, torch.bfloat16) else net_output


def _label_target(
    net_output: torch.Tensor, target: torch.Tensor, ignore_label: int | None, epsilon: float, kernel_size: int
) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """(target for both terms, voxel mask, is an index map) of the softmax form."""
    if target.ndim != net_output.ndim or target.shape[1] != 1:
        raise ShapeError(
            f"target must be nnU-Net's (B, 1, *spatial) label map for output {tuple(net_output.shape)}, "
            f"got {tuple(target.shape)}"
        )
    if epsilon == 0:
        return target, None, True
    smoothed = boundary_label_smoothing(  # validates the labels (integers in [0, C) or the ignore label)
        target, net_output.shape[1], epsilon, kernel_size, ignore_index=ignore_label, dtype=_target_dtype(net_output)
    ).detach()
    mask = None if ignore_label is None else target != ignore_label
    return smoothed, mask, False


def _region_target(
    net_output: torch.Tensor, target: torch.Tensor, has_ignore: bool, epsilon: float, kernel_size: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(float region target ``(B, R, ...)``, voxel mask) of the sigmoid form (ignore flag in the last channel)."""
    expected = net_output.shape[1] + int(has_ignore)
    if target.ndim != net_output.ndim or target.shape[1] != expected or target.shape[2:] != net_output.shape[2:]:
        layout = "R regions + 1 ignore channel" if has_ignore else "R regions"
        raise ShapeError(
            f"target must be nnU-Net's region map (B, {layout} = {expected}, *spatial) for output "
            f"{tuple(net_output.shape)}, got {tuple(target.shape)}"
        )
    mask = None
    if has_ignore:
        mask = target[:, -1:] == 0
        target = target[:, :-1]
    regions = target.to(_target_dtype(net_output))
    if epsilon > 0:
        b, r = regions.shape[:2]
        labels = regions.detach().round().to(torch.uint8).reshape(b * r, 1, *regions.shape[2:])
        if mask is not None:
            labels = torch.where(mask.repeat_interleave(r, 0), labels, torch.full_like(labels, 2))
        edge = boundary_mask(labels, kernel_size, ignore_index=2 if mask is not None else None,
                             spatial_dims=regions.ndim - 2).reshape(regions.shape)
        regions = torch.where(edge, regions * (1 - epsilon) + epsilon / 2, regions)  # binary BLS per region
    return regions, mask


def nnunet_overlap_ce_parts(
    net_output: torch.Tensor,
    target: torch.Tensor,
    *,
    overlap: str = "dice",
    regions: bool = False,
    batch_dice: bool = False,
    do_bg: bool | None = None,
    smooth: float = 1e-5,
    ignore_label: int | None = None,
    weight_ce: float = 1.0,
    weight_dice: float = 1.0,
    class_agnostic: bool = False,
    active_classes: str = "all",
    sync_stats: bool = False,
    smoothing_epsilon: float = 0.0,
    smoothing_kernel_size: int = 3,
) -> CEOverlapParts:
    """nnU-Net's compound loss with DML/JML as the overlap term, returned with its two unweighted terms.

    See the module docstring for the formulas and the nnU-Net semantics.

    Args:
        net_output: ``(B, C, *spatial)`` logits of one deep-supervision level.
        target: nnU-Net's target of that level: ``(B, 1, *spatial)`` labels, or with ``regions`` the
            ``(B, R [+ 1 ignore channel], *spatial)`` region maps.
        overlap: ``"dice"`` (DML) or ``"jaccard"`` (JML).
        regions: nnU-Net's region-based training (sigmoid outputs, BCE, ``do_bg=True``).
        batch_dice: pool the counts over the batch (nnU-Net's ``batch_dice`` from the plans).
        do_bg: keep the background channel in the overlap term; ``None`` means nnU-Net's choice (``False`` for
            labels, ``True`` for regions).
        smooth: nnU-Net's ``smooth``, added to the numerator and the denominator (``smooth_nr = smooth_dr``).
        ignore_label: labels: the ignore label value; regions: not ``None`` means the last target channel is the
            ignore flag (nnU-Net's ``use_ignore_label``).
        weight_ce: weight of the CE/BCE term (nnU-Net: 1).
        weight_dice: weight of the overlap term (nnU-Net: 1).
        class_agnostic: pool tp/fp/fn of the kept classes before the ratio (one foreground score).
        active_classes: ``"all"`` (nnU-Net: every kept class, absent ones included) or ``"present"``.
        sync_stats: all-reduce the pooled counts under ``torch.distributed`` (nnU-Net's ``ddp`` with
            ``batch_dice``).
        smoothing_epsilon: boundary label smoothing strength in ``[0, 1]``; 0 trains on the hard labels.
        smoothing_kernel_size: odd boundary window in voxels at every deep-supervision level.

    Returns:
        :class:`~monai_jdt.losses.functional.compound.CEOverlapParts` ``(total, ce, overlap)``.

    Raises:
        ShapeError: a target that is not nnU-Net's layout for this output.
        ValueError: options outside their range, labels outside ``[0, C)`` that are not the ignore label.
        TypeError: options of the wrong type.

    Example:
        >>> logits = torch.randn(2, 3, 8, 8, 8)
        >>> labels = torch.randint(0, 3, (2, 1, 8, 8, 8)).float()  # nnU-Net's target layout
        >>> parts = nnunet_overlap_ce_parts(logits, labels, batch_dice=True)
        >>> bool(torch.isclose(parts.total, parts.ce + parts.overlap))
        True
    """
    _check_options(
        overlap, smooth, weight_ce, weight_dice, active_classes, smoothing_epsilon, smoothing_kernel_size,
        {"regions": regions, "batch_dice": batch_dice, "class_agnostic": class_agnostic, "sync_stats": sync_stats},
        ignore_label,
    )
    if not isinstance(net_output, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"net_output and target must be torch.Tensors, got {type(net_output).__name__} and {type(target).__name__}"
        )
    keep_bg = regions if do_bg is None else check_bool("do_bg", do_bg)
    common = {
        "batch": batch_dice,
        "smooth_nr": smooth,
        "smooth_dr": smooth,
        "include_background": keep_bg,
        "class_agnostic": class_agnostic,
        "active_classes": active_classes,
        "sync_stats": sync_stats,
    }
    if regions:
        region_target, mask = _region_target(
            net_output, target, ignore_label is not None, smoothing_epsilon, smoothing_kernel_size
        )
        overlap_value = _OVERLAPS[overlap](net_output, region_target, mask=mask, sigmoid=True, **common)
        ce_value = soft_cross_entropy(_ce_logits(net_output), region_target, mask, sigmoid=True)
        if mask is not None:
            ce_value = ce_value * net_output.shape[1]  # nnU-Net: masked BCE sum / number of annotated voxels
    else:
        label_target, mask, is_index = _label_target(
            net_output, target, ignore_label, smoothing_epsilon, smoothing_kernel_size
        )
        ignore = ignore_label if is_index else None
        overlap_value = _OVERLAPS[overlap](
            net_output, label_target, mask=mask, softmax=True, to_onehot_y=is_index, ignore_index=ignore, **common
        )
        ce_value = soft_cross_entropy(
            _ce_logits(net_output), label_target, mask, to_onehot_y=is_index, ignore_index=ignore
        )
    total = weight_ce * ce_value + weight_dice * overlap_value
    return CEOverlapParts(total=total, ce=ce_value, overlap=overlap_value)


def nnunet_overlap_ce_loss(net_output: torch.Tensor, target: torch.Tensor, **options: object) -> torch.Tensor:
    """``weight_ce * CE + weight_dice * DML/JML`` on nnU-Net's tensors (the ``total`` of
    :func:`nnunet_overlap_ce_parts`, which documents the options).

    Example:
        >>> logits = torch.randn(1, 2, 6, 6)
        >>> labels = torch.randint(0, 2, (1, 1, 6, 6))
        >>> bool(nnunet_overlap_ce_loss(logits, labels, overlap="jaccard") > 0)
        True
    """
    return nnunet_overlap_ce_parts(net_output, target, **options).total  # type: ignore[arg-type]


class NNUNetOverlapCELoss(nn.Module):
    """Drop-in for nnU-Net's ``DC_and_CE_loss`` / ``DC_and_BCE_loss`` with DML or JML as the Dice term.

    Stores the options of :func:`nnunet_overlap_ce_parts` (checked once) and calls it; wrap it in nnU-Net's
    ``DeepSupervisionWrapper`` exactly like the original. ``last_parts`` holds the detached ``{"ce", "overlap"}``
    terms of the last call, for logging.

    Example:
        >>> loss = NNUNetOverlapCELoss(overlap="dice", batch_dice=True, ignore_label=3)
        >>> logits = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
        >>> labels = torch.randint(0, 4, (2, 1, 8, 8, 8)).float()  # 3 = ignore
        >>> loss(logits, labels).backward()
        >>> sorted(loss.last_parts)
        ['ce', 'overlap']
    """

    def __init__(
        self,
        overlap: str = "dice",
        *,
        regions: bool = False,
        batch_dice: bool = False,
        do_bg: bool | None = None,
        smooth: float = 1e-5,
        ignore_label: int | None = None,
        weight_ce: float = 1.0,
        weight_dice: float = 1.0,
        class_agnostic: bool = False,
        active_classes: str = "all",
        sync_stats: bool = False,
        smoothing_epsilon: float = 0.0,
        smoothing_kernel_size: int = 3,
    ) -> None:
        """
        Args:
            overlap, regions, batch_dice, do_bg, smooth, ignore_label, weight_ce, weight_dice, class_agnostic,
                active_classes, sync_stats, smoothing_epsilon, smoothing_kernel_size: see
                :func:`nnunet_overlap_ce_parts`.

        Raises:
            ValueError, TypeError: an option outside its range or of the wrong type.
        """
        super().__init__()
        flags = {"regions": regions, "batch_dice": batch_dice, "class_agnostic": class_agnostic,
                 "sync_stats": sync_stats}
        _check_options(overlap, smooth, weight_ce, weight_dice, active_classes, smoothing_epsilon,
                       smoothing_kernel_size, flags, ignore_label)
        if do_bg is not None:
            check_bool("do_bg", do_bg)
        self.options = {
            "overlap": overlap, "regions": regions, "batch_dice": batch_dice, "do_bg": do_bg,
            "smooth": float(smooth), "ignore_label": ignore_label, "weight_ce": float(weight_ce),
            "weight_dice": float(weight_dice), "class_agnostic": class_agnostic, "active_classes": active_classes,
            "sync_stats": sync_stats, "smoothing_epsilon": float(smoothing_epsilon),
            "smoothing_kernel_size": int(smoothing_kernel_size),
        }
        self.last_parts: dict[str, torch.Tensor] = {}

    def forward(self, net_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of one deep-supervision level (``net_output`` logits, ``target`` in nnU-Net's layout)."""
        parts = nnunet_overlap_ce_parts(net_output, target, **self.options)
        self.last_parts = {"ce": parts.ce.detach(), "overlap": parts.overlap.detach()}
        return parts.total

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())
