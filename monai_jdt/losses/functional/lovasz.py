r"""Lovász-softmax and Lovász-hinge losses: convex surrogates of the Jaccard loss (pure functions).

The Jaccard loss of one class, seen as a function of the set ``M`` of mispredicted voxels, is

.. math::

    \Delta_J(M) = 1 - \frac{|Y \setminus M|}{|Y \cup M|} = \frac{|M|}{|Y \cup M|}, \qquad \Delta_J(\emptyset) = 0,

with ``Y`` the voxels of the class. It is submodular (Yu & Blaschko, TPAMI 2018), so its Lovász extension is
convex and piecewise linear. For a vector of voxel errors ``m >= 0`` sorted in decreasing order
``m_{pi_1} >= ... >= m_{pi_n}`` and the prefixes ``S_i = {pi_1, ..., pi_i}``:

.. math::

    \bar\Delta_J(m) = \sum_{i=1}^{n} m_{\pi_i} \left(\Delta_J(S_i) - \Delta_J(S_{i-1})\right).

* Lovász-softmax (Berman, Rannen Triki & Blaschko, CVPR 2018, arXiv 1705.08790): ``m_i = |y_{ic} - p_{ic}|``
  with ``p`` the class probabilities.
* Lovász-hinge (Yu & Blaschko, TPAMI 2018, arXiv 1512.07797; Berman et al. 2018): ``m_i = max(0, 1 - s_i z_i)``
  with ``z`` the logits and ``s_i = 2 y_i - 1`` the signs.

Both need **hard** labels: the Lovász extension interpolates a set function, so the target must say for each
voxel whether it is in the class or not. For soft (probability) targets use ``JaccardMetricLoss``
(arXiv 2302.05666), which is exact on soft labels.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import cast

import torch

from monai_jdt.utils.checks import check_bool, check_option
from monai_jdt.utils.errors import ShapeError
from monai_jdt.utils.targets import SegTarget, prepare_target

__all__ = ["lovasz_hinge_loss", "lovasz_jaccard_extension", "lovasz_softmax_loss"]

ACTIVE_CLASSES = ("all", "present")
REDUCTIONS = ("mean", "sum", "none")


def _lovasz_jaccard_increments(labels_sorted: torch.Tensor) -> torch.Tensor:
    """``Delta_J(S_i) - Delta_J(S_{i-1})`` along the last dim, for labels sorted by decreasing error."""
    if labels_sorted.shape[-1] > 2**24 and labels_sorted.dtype != torch.float64:
        # voxel counts above 2**24 are not exact in float32
        return _lovasz_jaccard_increments(labels_sorted.double()).to(labels_sorted.dtype)
    num_fg = labels_sorted.sum(dim=-1, keepdim=True)
    fg_seen = labels_sorted.cumsum(dim=-1)
    rank = torch.arange(1, labels_sorted.shape[-1] + 1, device=labels_sorted.device, dtype=labels_sorted.dtype)
    intersection = num_fg - fg_seen
    union = num_fg + (rank - fg_seen)  # >= 1 for every prefix of length >= 1
    jaccard_loss = 1.0 - intersection / union
    return torch.cat([jaccard_loss[..., :1], jaccard_loss[..., 1:] - jaccard_loss[..., :-1]], dim=-1)


def lovasz_jaccard_extension(errors: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovász extension of the Jaccard loss, evaluated row-wise along the last dimension.

    .. math::

        \\bar\\Delta_J(m) = \\sum_i m_{\\pi_i} (\\Delta_J(\\{\\pi_1..\\pi_i\\}) - \\Delta_J(\\{\\pi_1..\\pi_{i-1}\\}))

    with ``pi`` sorting ``m`` in decreasing order and ``Delta_J(M) = |M| / |Y u M|`` (``Y = {i: labels_i = 1}``).
    A voxel with zero error and zero label does not change the value, so excluded voxels can be given both.

    Args:
        errors: ``(..., N)`` non-negative voxel errors (differentiable).
        labels: ``(..., N)`` ground-truth membership in ``{0, 1}``, same shape (no gradient flows to it).

    Returns:
        ``(...)`` the Lovász extension of each row (0 for an empty row).

    Example:
        >>> errors = torch.tensor([1.0, 0.0, 1.0])  # voxels 0 and 2 mispredicted
        >>> labels = torch.tensor([1.0, 1.0, 0.0])  # Y = {0, 1}: Jaccard loss 1 - 1/3
        >>> round(lovasz_jaccard_extension(errors, labels).item(), 4)
        0.6667
    """
    if errors.shape != labels.shape:
        raise ShapeError(
            f"errors and labels must have the same shape, got {tuple(errors.shape)} and {tuple(labels.shape)}"
        )
    if errors.shape[-1] == 0:
        return errors.sum(dim=-1)
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    labels_sorted = labels.detach().to(errors_sorted.dtype).gather(-1, order)
    return (errors_sorted * _lovasz_jaccard_increments(labels_sorted)).sum(dim=-1)


def _check_common(
    include_background: bool, to_onehot_y: bool, batch: bool, active_classes: str, reduction: str
) -> tuple[str, str]:
    check_bool("include_background", include_background)
    check_bool("to_onehot_y", to_onehot_y)
    check_bool("batch", batch)
    return check_option("active_classes", active_classes, ACTIVE_CLASSES), check_option(
        "reduction", reduction, REDUCTIONS
    )


def _check_activation(sigmoid: bool, softmax: bool, other_act: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
    check_bool("sigmoid", sigmoid)
    check_bool("softmax", softmax)
    if other_act is not None and not callable(other_act):
        raise TypeError(f"other_act must be a callable or None, got {type(other_act).__name__}")
    if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
        raise ValueError(
            f"sigmoid, softmax and other_act are mutually exclusive, got sigmoid={sigmoid}, softmax={softmax}, "
            f"other_act={other_act!r}"
        )


def _activate(
    input: torch.Tensor, sigmoid: bool, softmax: bool, other_act: Callable[[torch.Tensor], torch.Tensor] | None
) -> torch.Tensor:
    _check_activation(sigmoid, softmax, other_act)
    if sigmoid:
        return torch.sigmoid(input)
    if softmax:
        if input.shape[1] == 1:
            warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=4)
            return input
        return torch.softmax(input, dim=1)
    if other_act is not None:
        out = other_act(input)
        if not isinstance(out, torch.Tensor) or out.shape != input.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ShapeError(f"other_act must return a tensor of the input's shape {tuple(input.shape)}, got {got}")
        return out
    lo, hi = torch.aminmax(input.detach())
    if float(lo) < 0 or float(hi) > 1 or bool(torch.isnan(lo)):
        raise ValueError(
            "input must hold probabilities in [0, 1] when sigmoid, softmax and other_act are unset, got values in "
            f"[{float(lo):g}, {float(hi):g}] (pass softmax=True for logits)"
        )
    return input


def _hard_foreground(target: SegTarget, input: torch.Tensor, loss_name: str) -> torch.Tensor:
    """``(B, C, *spatial)`` {0, 1} membership of each voxel in each class, in ``input``'s dtype."""
    if target.index is not None:
        classes = torch.arange(target.num_classes, device=input.device).view(1, -1, *([1] * (input.ndim - 2)))
        return (target.index.unsqueeze(1) == classes).to(input.dtype)
    dense = cast(torch.Tensor, target.dense)  # SegTarget: dense when it is not an index map
    soft = (dense != 0) & (dense != 1)
    if target.mask is not None:
        soft = soft & target.mask.unsqueeze(1)
    if bool(soft.any()):
        raise ValueError(
            f"{loss_name} needs hard labels (0 or 1 in every channel): the Lovász extension is defined on "
            f"set-valued labels, got a soft target value {float(dense[soft].flatten()[0]):g}; "
            "for soft labels use monai_jdt.losses.JaccardMetricLoss"
        )
    return dense.to(input.dtype)


def _upcast_half(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32: the cumulative sums of the Lovász gradient need float32 precision."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _drop_background(x: torch.Tensor, include_background: bool) -> torch.Tensor:
    if include_background:
        return x
    if x.shape[1] == 1:
        warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=4)
        return x
    return x[:, 1:]


def _per_class_extension(
    errors: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None, batch: bool, active_classes: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lovász extension per (image, class) or per class (``batch``), and which entries are active."""
    num_images, num_classes = errors.shape[:2]
    errors = errors.reshape(num_images, num_classes, -1)
    labels = labels.reshape(num_images, num_classes, -1)
    if mask is not None:
        keep = mask.reshape(num_images, 1, -1)
        errors = torch.where(keep, errors, torch.zeros((), dtype=errors.dtype, device=errors.device))
        labels = labels * keep
    if batch:
        errors = errors.transpose(0, 1).reshape(1, num_classes, -1)
        labels = labels.transpose(0, 1).reshape(1, num_classes, -1)
    loss = lovasz_jaccard_extension(errors, labels)
    if active_classes == "present":
        active = labels.amax(dim=-1) > 0
    else:
        active = torch.ones_like(loss, dtype=torch.bool)
    return loss, active


def _reduce(loss: torch.Tensor, active: torch.Tensor, reduction: str, batch: bool, spatial_dims: int) -> torch.Tensor:
    """Mean over active classes per image then over images with an active class; sum; or the masked matrix.

    ``"none"`` keeps MONAI's broadcastable shape: ``(B, C, 1, ...)`` per image, ``(C, 1, ...)`` with ``batch``.
    """
    loss = torch.where(active, loss, torch.zeros((), dtype=loss.dtype, device=loss.device))
    if reduction == "none":
        loss = loss[0] if batch else loss
        return loss.reshape(*loss.shape, *([1] * spatial_dims))
    if reduction == "sum":
        return loss.sum()
    per_image_count = active.sum(dim=1)
    per_image = loss.sum(dim=1) / per_image_count.clamp_min(1).to(loss.dtype)
    has_active = per_image_count > 0
    return (per_image * has_active).sum() / has_active.sum().clamp_min(1).to(loss.dtype)


def lovasz_softmax_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    include_background: bool = True,
    to_onehot_y: bool = False,
    sigmoid: bool = False,
    softmax: bool = False,
    other_act: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch: bool = False,
    active_classes: str = "all",
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Lovász-softmax loss (Berman et al., CVPR 2018, arXiv 1705.08790).

    For each class ``c`` (and each image, unless ``batch``) the loss is the Lovász extension of the Jaccard loss
    (see :func:`lovasz_jaccard_extension`) at the errors ``m_i = |y_{ic} - p_{ic}|`` over the kept voxels ``i``:
    on hard predictions ``p`` in ``{0, 1}`` it equals ``1 - |P n Y| / |P u Y|``.

    Args:
        input: ``(B, C, *spatial)`` probabilities, or logits with ``softmax``/``sigmoid``/``other_act``.
        target: ``(B, 1, *spatial)``/``(B, *spatial)`` index map (``to_onehot_y=True``) or ``(B, C, *spatial)``
            one-hot (or multi-label {0, 1}) map. Soft targets are rejected.
        mask: optional ``(B, 1, *spatial)``/``(B, *spatial)`` bool, ``True`` where a voxel counts.
        include_background: if False, channel 0 is excluded (after the activation).
        to_onehot_y: whether ``target`` is an index map.
        sigmoid: apply a sigmoid (multi-label: each channel its own binary problem).
        softmax: apply a softmax over the channels.
        other_act: another activation callable. The three activations are mutually exclusive; without one the
            input must hold values in ``[0, 1]``.
        batch: pool the voxels of the whole batch per class (one sort per class) instead of per image.
        active_classes: ``"all"`` or ``"present"`` (a class counts for an image, or for the batch when ``batch``,
            only if it has a kept voxel in the target; Berman et al.'s default).
        ignore_index: label value (index maps) or channel/sentinel (dense targets) of voxels to exclude.
        reduction: ``"mean"`` (mean over the active classes of each image, then over the images that have an
            active class; a zero loss with a graph when nothing is active), ``"sum"`` (sum of active entries) or
            ``"none"`` (per image and class ``(B, C, 1, ...)``, or ``(C, 1, ...)`` with ``batch``: MONAI's
            broadcastable shapes; inactive entries 0).

    Returns:
        The loss, a scalar unless ``reduction="none"``.

    Raises:
        ValueError: a soft target, bad option values, an input outside ``[0, 1]`` without activation.
        ShapeError: input/target/mask shapes that do not fit.
        TypeError: wrong argument types.

    Example:
        >>> probs = torch.tensor([[[[1.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]]]])  # (1, 2, 1, 3), hard prediction
        >>> labels = torch.tensor([[[[0, 1, 1]]]])
        >>> loss = lovasz_softmax_loss(probs, labels, to_onehot_y=True, reduction="none")
        >>> [round(v, 4) for v in loss.flatten().tolist()]  # 1 - IoU per class: 1 - 1/2, 1 - 1/2
        [0.5, 0.5]
    """
    active_classes, reduction = _check_common(include_background, to_onehot_y, batch, active_classes, reduction)
    seg = prepare_target(input, target, to_onehot_y=to_onehot_y, ignore_index=ignore_index, mask=mask)
    probs = _activate(_upcast_half(input), sigmoid, softmax, other_act)
    labels = _hard_foreground(seg, probs, "LovaszSoftmaxLoss")
    probs = _drop_background(probs, include_background)
    labels = labels[:, 1:] if probs.shape[1] != labels.shape[1] else labels
    errors = (labels - probs).abs()
    loss, active = _per_class_extension(errors, labels, seg.mask, batch, active_classes)
    return _reduce(loss, active, reduction, batch, input.ndim - 2)


def lovasz_hinge_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    include_background: bool = True,
    to_onehot_y: bool = False,
    batch: bool = False,
    active_classes: str = "all",
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Lovász-hinge loss (Yu & Blaschko, TPAMI 2018, arXiv 1512.07797; Berman et al., CVPR 2018).

    Each channel ``c`` is a binary problem on the logits ``z``: with signs ``s_i = 2 y_{ic} - 1`` the loss is the
    Lovász extension of the Jaccard loss (see :func:`lovasz_jaccard_extension`) at the hinge errors
    ``m_i = max(0, 1 - s_i z_{ic})``. A single-channel input is the usual binary foreground problem; with
    ``C > 1`` channels every channel is an independent one-vs-rest problem (multi-label, as with a sigmoid), and
    the result is averaged over channels like the other losses of the package.

    Args:
        input: ``(B, C, *spatial)`` logits (real-valued scores; no activation is applied).
        target: ``(B, 1, *spatial)``/``(B, *spatial)`` index map (``to_onehot_y=True``, ``C > 1``) or
            ``(B, C, *spatial)`` {0, 1} map (for ``C = 1`` the binary foreground mask). Soft targets are rejected.
        mask: optional ``(B, 1, *spatial)``/``(B, *spatial)`` bool, ``True`` where a voxel counts.
        include_background: if False, channel 0 is excluded (ignored with a warning when ``C = 1``).
        to_onehot_y: whether ``target`` is an index map.
        batch: pool the voxels of the whole batch per channel instead of per image.
        active_classes: ``"all"`` or ``"present"`` (a channel counts only where its target has a kept voxel).
        ignore_index: label value (index maps) or channel/sentinel (dense targets) of voxels to exclude.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``, as in :func:`lovasz_softmax_loss`.

    Returns:
        The loss, a scalar unless ``reduction="none"``.

    Raises:
        ValueError: a soft target or bad option values.
        ShapeError: input/target/mask shapes that do not fit.
        TypeError: wrong argument types.

    Example:
        >>> logits = torch.tensor([[[[2.0, -3.0, 0.5]]]])  # (1, 1, 1, 3)
        >>> labels = torch.tensor([[[[1.0, 0.0, 1.0]]]])
        >>> round(lovasz_hinge_loss(logits, labels).item(), 4)  # only voxel 2 has a hinge error: 0.5 * 1/2
        0.25
    """
    active_classes, reduction = _check_common(include_background, to_onehot_y, batch, active_classes, reduction)
    seg = prepare_target(input, target, to_onehot_y=to_onehot_y, ignore_index=ignore_index, mask=mask)
    logits = _upcast_half(input)
    labels = _hard_foreground(seg, logits, "LovaszHingeLoss")
    logits = _drop_background(logits, include_background)
    labels = labels[:, 1:] if logits.shape[1] != labels.shape[1] else labels
    errors = torch.relu(1.0 - logits * (2.0 * labels - 1.0))
    loss, active = _per_class_extension(errors, labels, seg.mask, batch, active_classes)
    return _reduce(loss, active, reduction, batch, input.ndim - 2)
