r"""Cross-entropy + overlap compound losses: ``lambda_ce * CE + lambda_overlap * DML/JML`` (pure functions).

.. math::

    L = \lambda_{ce}\, \mathrm{CE}(z, y) + \lambda_{overlap}\, \mathrm{Overlap}(\mathrm{act}(z), y),
    \qquad \lambda_{ce} = 0.25,\ \lambda_{overlap} = 0.75

(the recipe of the DML/JML papers, arXiv 2303.16296 and 2302.05666), with the soft-label cross-entropy of
:func:`~monai_jdt.losses.functional.cross_entropy.soft_cross_entropy` and the Dice semimetric or Jaccard metric
loss of :mod:`monai_jdt.losses.functional.overlap`. Both terms see the same target (index map, one-hot or soft),
``ignore_index`` and ``mask``.

Choices where MONAI's ``DiceCELoss`` differs:

* **Activation.** The input is logits. ``softmax=None`` (default) means "softmax over the channels for ``C > 1``,
  sigmoid for ``C = 1``" unless ``sigmoid`` or ``other_act`` is set: the CE term needs logits, and MONAI's
  ``softmax=False`` default silently feeds those logits to the Dice term. ``sigmoid=True`` switches both terms
  to the binary / multi-label form. ``other_act`` applies to the overlap term only (the CE term stays on logits,
  softmax or sigmoid form). Without any activation the overlap term would see logits, so that is an error.
* **Background.** ``include_background=False`` removes channel 0 from the overlap term. In the softmax form the
  CE term always covers every class (the softmax couples them; MONAI issue #6855 asks for the option, but a
  softmax CE without channel 0 leaves background voxels without any signal). In the sigmoid form every channel
  is its own binary problem, so the CE term drops channel 0 too.
* **Weights.** ``weight`` is the overlap loss's class weight (as in ``DiceSemimetricLoss``); ``ce_weight`` is the
  CE term's class weight (one per channel the CE covers). MONAI uses one ``weight`` for both and as BCE
  ``pos_weight``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from monai_jdt.losses.functional.cross_entropy import check_class_weight, soft_cross_entropy
from monai_jdt.losses.functional.overlap import dice_semimetric_loss, jaccard_metric_loss
from monai_jdt.utils.checks import check_bool, check_non_negative, check_option

__all__ = [
    "CEOverlapParts",
    "ce_overlap_loss",
    "dice_semimetric_ce_loss",
    "jaccard_metric_ce_loss",
    "resolve_activation",
]

COMPOUND_REDUCTIONS = ("mean", "sum")
OVERLAPS: dict[str, Callable[..., torch.Tensor]] = {"dice": dice_semimetric_loss, "jaccard": jaccard_metric_loss}


class CEOverlapParts(NamedTuple):
    """The compound loss and its two (unweighted) terms: ``total = lambda_ce * ce + lambda_overlap * overlap``."""

    total: torch.Tensor
    ce: torch.Tensor
    overlap: torch.Tensor


def resolve_activation(
    num_channels: int, softmax: bool | None, sigmoid: bool, other_act: Callable[[torch.Tensor], torch.Tensor] | None
) -> tuple[bool, bool]:
    """The effective ``(softmax, sigmoid)`` flags of the overlap term for ``num_channels`` logits channels.

    Raises:
        ValueError: no activation at all (the overlap term would see logits), or a softmax over one channel.
        TypeError: flags that are not bools.
    """
    check_bool("sigmoid", sigmoid)
    if softmax is None:
        auto = not sigmoid and other_act is None
        return auto and num_channels > 1, sigmoid or (auto and num_channels == 1)
    check_bool("softmax", softmax)
    if not (softmax or sigmoid or other_act is not None):
        raise ValueError(
            "the CE + overlap losses take logits: set softmax=True (multi-class), sigmoid=True (binary or "
            "multi-label) or other_act for the overlap term, got softmax=False, sigmoid=False, other_act=None"
        )
    if softmax and num_channels == 1:
        raise ValueError(
            "softmax=True over a single channel is constant; for a one-channel binary head use sigmoid=True "
            "(or leave softmax=None), got softmax=True for input with 1 channel"
        )
    return softmax, sigmoid


def ce_overlap_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    overlap: str = "dice",
    lambda_ce: float = 0.25,
    lambda_overlap: float = 0.75,
    ce_weight: Any = None,
    softmax: bool | None = None,
    sigmoid: bool = False,
    other_act: Callable[[torch.Tensor], torch.Tensor] | None = None,
    to_onehot_y: bool = False,
    include_background: bool = True,
    ignore_index: int | None = None,
    reduction: str = "mean",
    **overlap_options: Any,
) -> CEOverlapParts:
    """``lambda_ce * soft_cross_entropy + lambda_overlap * DML/JML``, returned with its two terms.

    Args:
        input: ``(B, C, *spatial)`` logits.
        target: index map (``to_onehot_y=True``), one-hot or soft probabilities; shared by both terms.
        mask: optional ``(B, 1, *spatial)``/``(B, *spatial)`` bool voxel mask, shared by both terms.
        overlap: ``"dice"`` (Dice semimetric loss, DML) or ``"jaccard"`` (Jaccard metric loss, JML).
        lambda_ce: weight of the CE term, ``>= 0``.
        lambda_overlap: weight of the overlap term, ``>= 0``.
        ce_weight: per-class weights of the CE term (``C`` entries; ``C - 1`` in the sigmoid form without
            background), or None.
        softmax: None (auto: softmax for ``C > 1``, sigmoid for ``C = 1``, unless ``sigmoid``/``other_act`` is
            set), True or False. See the module docstring.
        sigmoid: binary / multi-label form for both terms.
        other_act: activation of the overlap term only (the CE term stays on logits).
        to_onehot_y: whether ``target`` is an index map.
        include_background: if False, channel 0 leaves the overlap term (and the CE term in the sigmoid form).
        ignore_index: label value (index maps) or channel/sentinel (dense targets) of voxels to exclude.
        reduction: ``"mean"`` or ``"sum"``, applied to both terms (the terms have different ``"none"`` shapes;
            use the returned parts for per-term values).
        overlap_options: the other options of :func:`~monai_jdt.losses.functional.dice_semimetric_loss`
            (``weight``, ``batch``, ``smooth_nr``, ``smooth_dr``, ``ord``, ``log_loss``, ``gamma``,
            ``class_agnostic``, ``active_classes``, ``active_threshold``, ``levels``, ``sync_stats``, ``fused``).

    Returns:
        :class:`CEOverlapParts` ``(total, ce, overlap)``.

    Raises:
        ValueError: negative ``lambda_*``, an unknown ``overlap``/``reduction``, no activation, a softmax over one
            channel, and every error of the two terms (shapes, target values, options).
        TypeError: arguments of the wrong type.

    Example:
        >>> logits = torch.randn(2, 3, 8, 8)
        >>> labels = torch.randint(0, 3, (2, 1, 8, 8))
        >>> parts = ce_overlap_loss(logits, labels, to_onehot_y=True)
        >>> bool(torch.isclose(parts.total, 0.25 * parts.ce + 0.75 * parts.overlap))
        True
    """
    overlap_fn = OVERLAPS[check_option("overlap", overlap, tuple(OVERLAPS))]
    lambda_ce = check_non_negative("lambda_ce", lambda_ce)
    lambda_overlap = check_non_negative("lambda_overlap", lambda_overlap)
    reduction = check_option("reduction", reduction, COMPOUND_REDUCTIONS)
    if not isinstance(input, torch.Tensor) or input.ndim < 2:
        raise TypeError(f"input must be a (B, C, *spatial) torch.Tensor of logits, got {type(input).__name__}")
    softmax, sigmoid = resolve_activation(input.shape[1], softmax, sigmoid, other_act)
    check_bool("include_background", include_background)
    ce_binary = sigmoid or input.shape[1] == 1
    ce_weight = _check_ce_weight(ce_weight, input.shape[1], ce_binary and not include_background)
    overlap_value = overlap_fn(
        input,
        target,
        mask=mask,
        softmax=softmax,
        sigmoid=sigmoid,
        other_act=other_act,
        to_onehot_y=to_onehot_y,
        include_background=include_background,
        ignore_index=ignore_index,
        reduction=reduction,
        **overlap_options,
    )
    ce_value = soft_cross_entropy(
        input,
        target,
        mask,
        to_onehot_y=to_onehot_y,
        sigmoid=ce_binary,
        include_background=include_background or not ce_binary,
        weight=ce_weight,
        ignore_index=ignore_index,
        reduction=reduction,
    )
    total = lambda_ce * ce_value + lambda_overlap * overlap_value
    return CEOverlapParts(total=total, ce=ce_value, overlap=overlap_value)


def dice_semimetric_ce_loss(input: torch.Tensor, target: torch.Tensor, **options: Any) -> torch.Tensor:
    """``lambda_ce * CE + lambda_overlap * DML`` (0.25 / 0.75 by default; arXiv 2303.16296).

    Args:
        input: ``(B, C, *spatial)`` logits.
        target: index map (``to_onehot_y=True``), one-hot or soft target.
        options: the keyword options of :func:`ce_overlap_loss` except ``overlap``.

    Raises:
        ValueError, TypeError: as :func:`ce_overlap_loss`.

    Example:
        >>> soft = torch.softmax(torch.randn(2, 3, 8, 8), 1)
        >>> loss = dice_semimetric_ce_loss(soft.log(), soft)  # softmax(log p) = p: the DML term vanishes
        >>> entropy = -(soft * soft.log()).sum(1).mean()
        >>> bool(torch.isclose(loss, 0.25 * entropy, atol=1e-6))
        True
    """
    return _named(input, target, "dice", options).total


def jaccard_metric_ce_loss(input: torch.Tensor, target: torch.Tensor, **options: Any) -> torch.Tensor:
    """``lambda_ce * CE + lambda_overlap * JML`` (0.25 / 0.75 by default; arXiv 2302.05666).

    Args:
        input: ``(B, C, *spatial)`` logits.
        target: index map (``to_onehot_y=True``), one-hot or soft target.
        options: the keyword options of :func:`ce_overlap_loss` except ``overlap``.

    Raises:
        ValueError, TypeError: as :func:`ce_overlap_loss`.

    Example:
        >>> logits = torch.randn(2, 1, 8, 8)  # one channel: sigmoid form for both terms
        >>> loss = jaccard_metric_ce_loss(logits, (torch.rand(2, 1, 8, 8) > 0.5).float())
        >>> bool(loss > 0)
        True
    """
    return _named(input, target, "jaccard", options).total


def _check_ce_weight(ce_weight: Any, num_channels: int, drop_background: bool) -> torch.Tensor | None:
    weight = check_class_weight(ce_weight, "ce_weight")
    expected = num_channels - 1 if drop_background and num_channels > 1 else num_channels
    if weight is not None and weight.shape[0] != expected:
        raise ValueError(
            f"ce_weight must have one entry per channel of the CE term ({expected}), got {weight.shape[0]} entries"
        )
    return weight


def _named(input: torch.Tensor, target: torch.Tensor, overlap: str, options: dict[str, Any]) -> CEOverlapParts:
    if "overlap" in options:
        raise TypeError(f"overlap is fixed to {overlap!r} here; use ce_overlap_loss to choose it")
    return ce_overlap_loss(input, target, overlap=overlap, **options)
