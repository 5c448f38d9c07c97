"""Functional soft-label overlap losses: compatible Tversky (CTL), Dice semimetric (DML), Jaccard metric (JML).

References:
    Wang & Blaschko, "Jaccard Metric Losses: Optimizing the Jaccard Index with Soft Labels", arXiv 2302.05666.
    Wang et al., "Dice Semimetric Losses: Optimizing the Dice Score with Soft Labels", arXiv 2303.16296.
    Wang et al., "Revisiting Evaluation Metrics for Semantic Segmentation" (fine-grained mIoU), arXiv 2310.19252.

With L^p cardinalities ``|v| = sum_n |v_n|^p`` over the voxels of one image (or of the batch), for a prediction
``x`` and a target ``y`` in ``[0, 1]``:

    tp = (|x| + |y| - |x - y|) / 2,    fp = |x| - tp,    fn = |y| - tp

(for p = 1: ``tp = sum min(x, y)``, ``fp = sum (x - y)+``, ``fn = sum (y - x)+``; for a hard ``y`` these are the
classic soft counts) and the per-class score

    score = (k tp + smooth_nr) / (k (tp + alpha fp + beta fn) + smooth_dr)

with k = 1 for CTL and k = 2 for DML (alpha = beta = 0.5) and JML (alpha = beta = 1), which is exactly MONAI's
``TverskyLoss(soft_label=True)``, ``DiceLoss(soft_label=True)`` and ``DiceLoss(jaccard=True, soft_label=True)``.
So DML with smoothing (a, b) equals CTL(0.5, 0.5) with smoothing (a / 2, b / 2).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch

from monai_jdt.losses.functional._overlap_config import OverlapConfig, check_weight, make_config, weight_for
from monai_jdt.losses.functional._overlap_fused import fused_stats
from monai_jdt.losses.functional._overlap_reduce import reduce_levels
from monai_jdt.losses.functional._overlap_stats import OverlapStats, generic_stats
from monai_jdt.utils.errors import ShapeError
from monai_jdt.utils.targets import prepare_target

__all__ = ["compatible_tversky_loss", "dice_semimetric_loss", "jaccard_metric_loss", "overlap_loss"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _activate(input: torch.Tensor, cfg: OverlapConfig) -> torch.Tensor:
    if cfg.sigmoid:
        return torch.sigmoid(input)
    if cfg.softmax:
        if input.shape[1] == 1:
            warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=4)
            return input
        return torch.softmax(input, 1)
    if cfg.other_act is not None:
        out = cfg.other_act(input)
        if not isinstance(out, torch.Tensor) or out.shape != input.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ShapeError(f"other_act must return a tensor of the input's shape {tuple(input.shape)}, got {got}")
        return out
    return input


def _use_fused(input: torch.Tensor, target: torch.Tensor, cfg: OverlapConfig) -> bool:
    return (
        cfg.fused
        and ((cfg.softmax and input.shape[1] > 1) or cfg.sigmoid)
        and cfg.ord == 1
        and not target.requires_grad
        and not torch.compiler.is_compiling()
    )


def _stats(input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, cfg: OverlapConfig) -> OverlapStats:
    want_max = (cfg.active_classes in ("present", "both"), cfg.active_classes in ("prob", "both"))
    fused = _use_fused(input, target, cfg)  # the fused kernel checks a dense target's values in its own pass
    seg = prepare_target(
        input, target, to_onehot_y=cfg.to_onehot_y, ignore_index=cfg.ignore_index, mask=mask, check_values=not fused
    )
    if fused:
        card_pred, card_target, card_diff, target_max, pred_max = fused_stats(
            input, seg.dense, seg.index, seg.mask, want_max=want_max, softmax=cfg.softmax
        )
        return OverlapStats(
            pred=card_pred,
            target=card_target,
            diff=card_diff,
            target_max=target_max if want_max[0] else None,
            pred_max=pred_max if want_max[1] else None,
        )
    nonneg = cfg.sigmoid or (cfg.softmax and input.shape[1] > 1)
    return generic_stats(_activate(input, cfg), seg, cfg.ord, want_max=want_max, nonneg=nonneg)


def overlap_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    cfg: OverlapConfig,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The overlap loss for validated settings (what the public functions and the modules call).

    Args:
        input: ``(B, C, *spatial)`` logits (with an activation) or probabilities.
        target: index map, one-hot or soft target (see :func:`monai_jdt.utils.targets.prepare_target`).
        cfg: settings from :func:`~monai_jdt.losses.functional._overlap_config.make_config`.
        weight: class weights from :func:`~monai_jdt.losses.functional._overlap_config.check_weight`.
        mask: optional ``(B, 1, *spatial)`` or ``(B, *spatial)`` bool voxel mask (``True`` = counts).

    Example:
        >>> from monai_jdt.losses.functional._overlap_config import make_config
        >>> cfg = make_config(alpha=0.5, beta=0.5, scale=2.0, softmax=True)  # DML
        >>> float(overlap_loss(torch.zeros(1, 2, 4), torch.full((1, 2, 4), 0.5), cfg))  # softmax(0) == target
        0.0
    """
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    out_dtype = torch.float32 if input.dtype in _LOW_PRECISION else input.dtype
    if input.dtype in _LOW_PRECISION:
        input = input.float()
    with torch.autocast(device_type=input.device.type, enabled=False):
        stats = _stats(input, target, mask, cfg)
        if not cfg.include_background:
            if input.shape[1] == 1:
                warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=3)
            else:
                stats = stats.drop_first_class()
        class_weight = weight_for(weight, stats.pred.shape[1], stats.pred)
        loss = reduce_levels(stats, class_weight, cfg, spatial_dims=input.ndim - 2)
    return loss.to(out_dtype)


def compatible_tversky_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.5,
    beta: float = 0.5,
    *,
    mask: torch.Tensor | None = None,
    include_background: bool = True,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    softmax: bool = False,
    other_act: Callable[[torch.Tensor], torch.Tensor] | None = None,
    reduction: str = "mean",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    weight: Any = None,
    ord: float = 1,
    log_loss: bool = False,
    gamma: float = 1.0,
    class_agnostic: bool = False,
    active_classes: str = "all",
    active_threshold: float = 0.01,
    levels: Mapping[str, float] | None = None,
    ignore_index: int | None = None,
    sync_stats: bool = False,
    fused: bool = True,
) -> torch.Tensor:
    """Compatible Tversky loss (CTL, arXiv 2310.19252 / 2302.05666), soft-label correct.

    Per image (or pooled over the batch) and class, with ``tp, fp, fn`` from the L^p cardinalities (module
    docstring), ``score = (tp + smooth_nr) / (tp + alpha fp + beta fn + smooth_dr)`` and the per-class loss
    ``(1 - score) ** gamma`` (``(-log score) ** gamma`` with ``log_loss``), times the class ``weight``.
    Equals ``monai.losses.TverskyLoss(soft_label=True)`` for the options both have. It is 0 iff ``x == y``
    (for alpha, beta > 0 and soft targets), and a semimetric/metric of the papers for alpha = beta.

    Args:
        input: ``(B, C, *spatial)`` logits (with ``sigmoid``/``softmax``/``other_act``) or probabilities.
        target: ``(B, C, *spatial)`` one-hot or soft probabilities in ``[0, 1]``, or with ``to_onehot_y=True`` an
            index map ``(B, 1, *spatial)``/``(B, *spatial)`` (integer dtype, or float holding integers). An index
            map is never expanded to one-hot.
        alpha: weight of the false positives, ``>= 0``.
        beta: weight of the false negatives, ``>= 0``.
        mask: optional bool ``(B, 1, *spatial)``/``(B, *spatial)``; ``False`` voxels are excluded (both the
            prediction and the target count as 0 there, as MONAI's ``ignore_index`` masking).
        include_background: if False, drop channel 0 after the activation (softmax runs over all channels).
        to_onehot_y: the target is an index map.
        sigmoid: apply a sigmoid to ``input``.
        softmax: apply a softmax over the channels (ignored with a warning for one channel). With ``ord=1`` and
            ``fused=True``, ``softmax`` and ``sigmoid`` run the fused kernel (faster, one volume-sized buffer).
        other_act: another activation callable; ``sigmoid``, ``softmax`` and ``other_act`` are exclusive.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``; see ``levels``. ``"none"`` returns, broadcastable against
            the input as MONAI: ``(B, C, 1, ...)`` for the image level, ``(C, 1, ...)`` for the batch level
            (MONAI's ``batch=True`` shape) and the class level (per-class means); ``C`` is 1 with
            ``class_agnostic``; inactive entries are 0. It needs a single level.
        smooth_nr: added to the numerator, ``>= 0``.
        smooth_dr: added to the denominator, ``>= 0``. A zero denominator (an empty class with
            ``smooth_dr = 0``) gives score 1 (loss 0) with finite gradients.
        batch: MONAI's flag, used when ``levels`` is None: pool the counts over the batch (``{"batch": 1}``)
            instead of one loss per image (``{"image": 1}``).
        weight: per-class weight ``>= 0`` (a number, or one value per class after removing the background).
            It multiplies the per-class loss before averaging (MONAI); with ``class_agnostic`` it multiplies
            each class's tp/fp/fn before they are pooled (as generalised Dice).
        ord: p of the L^p cardinalities, ``>= 1``; 1 is the metric form, 2 the squared-L2 form (MONAI
            ``squared_pred=True``).
        log_loss: per-class loss ``-log(score)`` instead of ``1 - score`` (needs ``smooth_nr > 0``).
        gamma: focal exponent ``>= 1`` on the per-class loss (gradients stay finite at loss 0).
        class_agnostic: pool tp/fp/fn over the (active, non-excluded) classes before the ratio.
        active_classes: ``"all"``; ``"present"`` (an entry counts where the masked target's max exceeds
            ``active_threshold``); ``"prob"`` (the prediction's max exceeds it); ``"both"`` (either). Means run
            over active entries only; nothing active gives a zero loss that keeps the graph.
        active_threshold: threshold of ``active_classes``, in ``[0, 1)``.
        levels: None, or non-negative weights over ``"batch"`` (pool the whole batch: dataset level),
            ``"image"`` (per image: mean over its active classes, then over images with an active class) and
            ``"class"`` (per class: mean over the images where it is active, then over classes); the loss is
            the weighted sum. ``"sum"`` sums the entries that ``"none"`` would return.
        ignore_index: label value of index maps to exclude, or for dense targets MONAI's convention (a valid
            channel excludes the voxels of that class, another value the all-zero voxels).
        sync_stats: under ``torch.distributed``, all-reduce the pooled statistics (with gradients) so every
            level is computed over the global batch; every rank then gets the global loss and DDP's gradient
            averaging yields the global-batch gradient (``reduction="none"``: the image level stays per rank).
        fused: allow the fused kernel (softmax or sigmoid, ord 1, a target without gradient, not under
            ``torch.compile``); ``False`` forces the generic autograd path (needed for double backward).

    Returns:
        The loss: a scalar for ``"mean"``/``"sum"``; float32 for float16/bfloat16 input.

    Raises:
        ShapeError: input/target/mask shapes that do not fit (a ``ValueError`` and an ``AssertionError``).
        ValueError: an argument outside its range, a wrong number of class weights, target values outside
            ``[0, 1]`` or class indices outside ``[0, C)``.
        TypeError: arguments of the wrong type.

    Example:
        >>> x = torch.tensor([[[0.9, 0.2]], [[0.4, 0.6]]])  # (B=2, C=1, N=2) probabilities
        >>> y = torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]]])
        >>> loss = compatible_tversky_loss(x, y, alpha=0.3, beta=0.7, smooth_nr=0, smooth_dr=0, reduction="none")
        >>> loss.flatten()  # image 0: tp = 0.9, fp = 0.2, fn = 0.1; image 1: tp = 0.9, fp = fn = 0.1
        tensor([0.1262, 0.1000])
    """
    cfg = make_config(
        alpha=alpha,
        beta=beta,
        scale=1.0,
        include_background=include_background,
        to_onehot_y=to_onehot_y,
        sigmoid=sigmoid,
        softmax=softmax,
        other_act=other_act,
        reduction=reduction,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        batch=batch,
        ord=ord,
        log_loss=log_loss,
        gamma=gamma,
        class_agnostic=class_agnostic,
        active_classes=active_classes,
        active_threshold=active_threshold,
        levels=levels,
        ignore_index=ignore_index,
        sync_stats=sync_stats,
        fused=fused,
    )
    return overlap_loss(input, target, cfg, check_weight(weight), mask)


def _scaled_loss(input: torch.Tensor, target: torch.Tensor, alpha: float, options: dict[str, Any]) -> torch.Tensor:
    for name in ("alpha", "beta"):
        if name in options:
            raise TypeError(f"{name} is fixed to {alpha} for this loss; use compatible_tversky_loss to choose it")
    mask = options.pop("mask", None)
    weight = check_weight(options.pop("weight", None))
    cfg = make_config(alpha=alpha, beta=alpha, scale=2.0, **options)
    return overlap_loss(input, target, cfg, weight, mask)


def dice_semimetric_loss(input: torch.Tensor, target: torch.Tensor, **options: Any) -> torch.Tensor:
    """Dice semimetric loss (DML, arXiv 2303.16296): ``1 - (2 tp + smooth_nr) / (2 tp + fp + fn + smooth_dr)``.

    Equals ``monai.losses.DiceLoss(soft_label=True)`` for the options both have, and the classic soft Dice
    loss ``1 - 2 sum xy / (sum x + sum y)`` on hard labels (p = 1). With p = 1 it is
    ``1 - (|x| + |y| - |x - y|) / (|x| + |y|)``, zero iff ``x == y``. It is CTL(0.5, 0.5) with halved smoothing.

    Args:
        input: ``(B, C, *spatial)`` logits or probabilities.
        target: index map (``to_onehot_y=True``), one-hot or soft target.
        options: the keyword options of :func:`compatible_tversky_loss` except ``alpha`` and ``beta``
            (``mask``, ``include_background``, ``to_onehot_y``, ``sigmoid``, ``softmax``, ``other_act``,
            ``reduction``, ``smooth_nr``, ``smooth_dr``, ``batch``, ``weight``, ``ord``, ``log_loss``, ``gamma``,
            ``class_agnostic``, ``active_classes``, ``active_threshold``, ``levels``, ``ignore_index``,
            ``sync_stats``, ``fused``).

    Raises:
        ShapeError, ValueError, TypeError: as :func:`compatible_tversky_loss`.

    Example:
        >>> logits = torch.randn(2, 3, 8, 8, 8)
        >>> labels = torch.randint(0, 3, (2, 1, 8, 8, 8))
        >>> loss = dice_semimetric_loss(logits, labels, softmax=True, to_onehot_y=True)
        >>> bool(0 <= loss <= 1)
        True
    """
    return _scaled_loss(input, target, 0.5, dict(options))


def jaccard_metric_loss(input: torch.Tensor, target: torch.Tensor, **options: Any) -> torch.Tensor:
    """Jaccard metric loss (JML, arXiv 2302.05666): ``1 - (2 tp + smooth_nr) / (2 (tp + fp + fn) + smooth_dr)``.

    Equals ``monai.losses.DiceLoss(jaccard=True, soft_label=True)`` for the options both have. With p = 1 it is
    ``1 - (|x| + |y| - |x - y|) / (|x| + |y| + |x - y|)``, a metric on ``[0, 1]^n`` (symmetric, zero iff
    ``x == y``, triangle inequality). It is CTL(1, 1) with halved smoothing.

    Args:
        input: ``(B, C, *spatial)`` logits or probabilities.
        target: index map (``to_onehot_y=True``), one-hot or soft target.
        options: the keyword options of :func:`compatible_tversky_loss` except ``alpha`` and ``beta``.

    Raises:
        ShapeError, ValueError, TypeError: as :func:`compatible_tversky_loss`.

    Example:
        >>> x = torch.tensor([[[0.2, 0.7, 1.0]]])
        >>> float(jaccard_metric_loss(x, x, smooth_nr=0, smooth_dr=0))
        0.0
    """
    return _scaled_loss(input, target, 1.0, dict(options))
