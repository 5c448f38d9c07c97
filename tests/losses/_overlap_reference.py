"""An independent, loop-based float64 reference of the overlap losses, written from the papers' formulas.

It shares no code with ``monai_jdt`` and uses plain Python loops over images and classes (slow but obvious), so
the tests can compare values and gradients (it is differentiable through torch autograd).
"""

from __future__ import annotations

import torch


def cardinalities(x: torch.Tensor, y: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """tp, fp, fn of two flat vectors from ``|v| = sum |v_i|^p``."""
    size_x, size_y, size_d = (v.abs().pow(p).sum() for v in (x, y, x - y))
    tp = (size_x + size_y - size_d) / 2
    return tp, size_x - tp, size_y - tp


def score(tp, fp, fn, alpha: float, beta: float, k: float, smooth_nr: float, smooth_dr: float) -> torch.Tensor:
    den = k * (tp + alpha * fp + beta * fn) + smooth_dr
    if float(den.detach()) == 0.0:
        return torch.ones((), dtype=torch.float64) + 0 * (tp + fp + fn)
    return (k * tp + smooth_nr) / den


def entry(s: torch.Tensor, log_loss: bool, gamma: float) -> torch.Tensor:
    v = -torch.log(s) if log_loss else 1 - s
    return v.clamp_min(0) ** gamma if gamma != 1 else v


def reference_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    alpha: float,
    beta: float,
    k: float,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    p: float = 1,
    mask: torch.Tensor | None = None,
    levels: dict[str, float] | None = None,
    weight: list[float] | None = None,
    log_loss: bool = False,
    gamma: float = 1.0,
    class_agnostic: bool = False,
    active: str = "all",
    threshold: float = 0.01,
    reduction: str = "mean",
) -> torch.Tensor:
    """The loss for activated ``x`` and dense ``y`` of shape ``(B, C, N)`` (background already removed).

    ``reduction="sum"`` sums the active entries of the batch and image levels and the per-class means of the class
    level (the documented meaning: the sum of what ``reduction="none"`` returns).
    """
    levels = levels or {"image": 1.0}
    b_size, c_size, _ = x.shape
    m = torch.ones(b_size, x.shape[2], dtype=torch.bool) if mask is None else mask
    w = [1.0] * c_size if weight is None else weight

    def is_active(xs: torch.Tensor, ys: torch.Tensor, ms: torch.Tensor) -> bool:
        if not bool(ms.any()):
            return active == "all"
        present = float(ys[ms].detach().max()) > threshold
        prob = float(xs[ms].detach().max()) > threshold
        return {"all": True, "present": present, "prob": prob, "both": present or prob}[active]

    def counts(images: list[int], c: int):
        xs = torch.cat([x[b, c][m[b]] for b in images])
        ys = torch.cat([y[b, c][m[b]] for b in images])
        return cardinalities(xs, ys, p)

    def active_of(images: list[int], c: int) -> bool:
        return any(is_active(x[b, c], y[b, c], m[b]) for b in images)

    def losses(images: list[int]) -> list[tuple[torch.Tensor, bool]]:
        """Per class (or one pooled entry): (loss, active) for the voxels of ``images``."""
        flags = [active_of(images, c) for c in range(c_size)]
        if class_agnostic:
            pooled = [torch.zeros((), dtype=torch.float64)] * 3
            for c in range(c_size):
                if flags[c]:
                    pooled = [acc + w[c] * t for acc, t in zip(pooled, counts(images, c))]
            return [(entry(score(*pooled, alpha, beta, k, smooth_nr, smooth_dr), log_loss, gamma), any(flags))]
        return [
            (w[c] * entry(score(*counts(images, c), alpha, beta, k, smooth_nr, smooth_dr), log_loss, gamma), flags[c])
            for c in range(c_size)
        ]

    def mean(values: list[torch.Tensor]) -> torch.Tensor:
        return sum(values) / len(values) if values else torch.zeros((), dtype=torch.float64)

    def total_of(values: list[torch.Tensor]) -> torch.Tensor:
        return sum(values) if values else torch.zeros((), dtype=torch.float64)

    outer = mean if reduction == "mean" else total_of

    total = torch.zeros((), dtype=torch.float64)
    if "batch" in levels:
        total = total + levels["batch"] * outer([v for v, a in losses(list(range(b_size))) if a])
    per_image = [losses([b]) for b in range(b_size)]
    if "image" in levels:
        image_means = [outer([v for v, a in row if a]) for row in per_image if any(a for _, a in row)]
        total = total + levels["image"] * outer(image_means)
    if "class" in levels:
        n_entries = len(per_image[0])
        class_means = []
        for c in range(n_entries):
            vals = [per_image[b][c][0] for b in range(b_size) if per_image[b][c][1]]
            if vals:
                class_means.append(mean(vals))
        total = total + levels["class"] * outer(class_means)
    return total


def classic_soft_dice(x: torch.Tensor, y: torch.Tensor, smooth: float = 0.0) -> torch.Tensor:
    """``1 - (2 sum xy + s) / (sum x + sum y + s)`` per (image, class), then the mean; ``x, y`` are ``(B, C, N)``."""
    inter = (x * y).sum(-1)
    return (1 - (2 * inter + smooth) / (x.sum(-1) + y.sum(-1) + smooth)).mean()


def classic_soft_jaccard(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1 - sum xy / (sum x + sum y - sum xy)`` per (image, class), then the mean."""
    inter = (x * y).sum(-1)
    return (1 - inter / (x.sum(-1) + y.sum(-1) - inter)).mean()
