"""Lovász-softmax / Lovász-hinge against the Lovász extension computed from its definition (numpy, loops)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from monai_jdt.losses.functional.lovasz import lovasz_hinge_loss, lovasz_jaccard_extension, lovasz_softmax_loss
from monai_jdt.losses.lovasz import LovaszHingeLoss, LovaszSoftmaxLoss
from monai_jdt.utils.errors import ShapeError

# ----------------------------------------------------------------------------------------------------------------
# independent references


def jaccard_set_loss(mispredicted: set[int], positives: set[int]) -> float:
    """Delta_J(M) = |M| / |Y u M| with Delta_J(empty) = 0, straight from the set definition."""
    if not mispredicted:
        return 0.0
    return len(mispredicted) / len(positives | mispredicted)


def extension_by_sorting(errors: np.ndarray, labels: np.ndarray) -> float:
    """Lovász extension: sort errors decreasingly, weight by the set-function increments."""
    positives = {i for i in range(len(labels)) if labels[i] == 1}
    order = np.argsort(-errors, kind="stable")
    total, prefix, previous = 0.0, set(), 0.0
    for i in order:
        prefix.add(int(i))
        current = jaccard_set_loss(prefix, positives)
        total += errors[i] * (current - previous)
        previous = current
    return total


def extension_by_polytope(errors: np.ndarray, labels: np.ndarray) -> float:
    """max over the vertices of the base polytope of Delta_J (every permutation): valid as Delta_J is submodular."""
    positives = {i for i in range(len(labels)) if labels[i] == 1}
    best = -np.inf
    for perm in itertools.permutations(range(len(errors))):
        total, prefix, previous = 0.0, set(), 0.0
        for i in perm:
            prefix.add(i)
            current = jaccard_set_loss(prefix, positives)
            total += errors[i] * (current - previous)
            previous = current
        best = max(best, total)
    return best


def reference_loss(
    errors: np.ndarray, labels: np.ndarray, keep: np.ndarray, batch: bool, present: bool, reduction: str = "mean"
):
    """errors/labels (B, C, N), keep (B, N) bool: excluded voxels are removed, then per-class extension."""
    num_images, num_classes, _ = errors.shape
    groups = [list(range(num_images))] if batch else [[b] for b in range(num_images)]
    rows, actives = [], []
    for images in groups:
        row, act = [], []
        for c in range(num_classes):
            e = np.concatenate([errors[b, c][keep[b]] for b in images])
            y = np.concatenate([labels[b, c][keep[b]] for b in images])
            row.append(extension_by_sorting(e, y) if len(e) else 0.0)
            act.append(bool(y.sum() > 0) if present else True)
        rows.append(row)
        actives.append(act)
    loss, active = np.array(rows), np.array(actives)
    if reduction == "none":
        return np.where(active, loss, 0.0)
    if reduction == "sum":
        return float(loss[active].sum())
    per_image = [loss[i][active[i]].mean() for i in range(len(loss)) if active[i].any()]
    return float(np.mean(per_image)) if per_image else 0.0


def one_hot(index: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(index, num_classes).movedim(-1, 1).double()


# ----------------------------------------------------------------------------------------------------------------
# the extension itself


@pytest.mark.parametrize("n", [1, 2, 5, 6])
def test_extension_equals_definition_and_polytope(n: int) -> None:
    gen = np.random.default_rng(n)
    for _ in range(3):
        errors = gen.random(n)
        labels = (gen.random(n) > 0.5).astype(float)
        got = lovasz_jaccard_extension(torch.tensor(errors), torch.tensor(labels)).item()
        assert got == pytest.approx(extension_by_sorting(errors, labels), abs=1e-12)
        assert got == pytest.approx(extension_by_polytope(errors, labels), abs=1e-12)


def test_extension_rows_and_indicator_vertices() -> None:
    labels = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    mispredicted = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    # on indicator vectors the extension is the set function: |M| / |Y u M| = 2/3 and 1/1
    assert lovasz_jaccard_extension(mispredicted, labels).tolist() == pytest.approx([2 / 3, 1.0])
    assert lovasz_jaccard_extension(torch.zeros(2, 4), labels).tolist() == [0.0, 0.0]


def test_extension_shape_mismatch() -> None:
    with pytest.raises(ShapeError, match="same shape"):
        lovasz_jaccard_extension(torch.rand(3), torch.ones(4))


# ----------------------------------------------------------------------------------------------------------------
# Lovász-softmax


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("active_classes", ["all", "present"])
def test_softmax_equals_definition_with_absent_class(batch: bool, active_classes: str) -> None:
    logits = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    index = torch.randint(0, 3, (3, 3, 3))  # class 3 absent everywhere
    index[1] = torch.where(index[1] == 2, torch.zeros_like(index[1]), index[1])  # class 2 absent from image 1
    probs = torch.softmax(logits, 1)
    labels = one_hot(index, 4)
    expected = reference_loss(
        (labels - probs).abs().flatten(2).numpy(),
        labels.flatten(2).numpy(),
        np.ones((3, 9), bool),
        batch,
        active_classes == "present",
    )
    got = lovasz_softmax_loss(
        logits, index[:, None], softmax=True, to_onehot_y=True, batch=batch, active_classes=active_classes
    )
    assert got.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("batch", [False, True])
def test_softmax_ignore_index_and_mask_remove_voxels(batch: bool) -> None:
    probs = torch.softmax(torch.randn(2, 3, 4, 5, dtype=torch.float64), 1)
    index = torch.randint(0, 3, (2, 4, 5))
    index[0, 0] = 255
    mask = torch.rand(2, 4, 5) > 0.3
    keep = (index != 255) & mask
    labels = one_hot(torch.where(index == 255, 0, index), 3)
    for reduction in ("mean", "sum", "none"):
        expected = reference_loss(
            (labels - probs).abs().flatten(2).numpy(),
            labels.flatten(2).numpy(),
            keep.flatten(1).numpy(),
            batch,
            True,
            reduction,
        )
        got = lovasz_softmax_loss(
            probs,
            index,
            mask[:, None],
            to_onehot_y=True,
            ignore_index=255,
            batch=batch,
            active_classes="present",
            reduction=reduction,
        )
        if reduction == "none":
            assert got.shape == ((3, 1, 1) if batch else (2, 3, 1, 1))
            got = got.reshape(np.shape(expected))
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_softmax_hard_predictions_equal_one_minus_iou() -> None:
    gen = np.random.default_rng(1)
    for _ in range(5):
        pred = torch.tensor(gen.integers(0, 3, (2, 6, 5)))
        index = torch.tensor(gen.integers(0, 3, (2, 6, 5)))
        got = lovasz_softmax_loss(one_hot(pred, 3), index, to_onehot_y=True, reduction="none")
        for b, c in itertools.product(range(2), range(3)):
            p = {i for i, v in enumerate(pred[b].flatten().tolist()) if v == c}
            y = {i for i, v in enumerate(index[b].flatten().tolist()) if v == c}
            iou = len(p & y) / len(p | y) if p | y else 1.0
            assert got[b, c].item() == pytest.approx(1 - iou, abs=1e-12)


def test_softmax_one_hot_target_and_include_background() -> None:
    probs = torch.softmax(torch.randn(2, 3, 6, dtype=torch.float64), 1)
    index = torch.randint(0, 3, (2, 6))
    labels = one_hot(index, 3)
    a = lovasz_softmax_loss(probs, labels, include_background=False, reduction="none")
    b = lovasz_softmax_loss(probs, index, to_onehot_y=True, include_background=False, reduction="none")
    full = lovasz_softmax_loss(probs, labels, reduction="none")
    assert a.shape == (2, 2, 1)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, full[:, 1:])


def test_softmax_sigmoid_multilabel() -> None:
    logits = torch.randn(2, 2, 7, dtype=torch.float64)
    labels = (torch.rand(2, 2, 7) > 0.5).double()
    probs = torch.sigmoid(logits)
    expected = reference_loss(
        (labels - probs).abs().numpy(), labels.numpy(), np.ones((2, 7), bool), False, False, "none"
    )
    got = lovasz_softmax_loss(logits, labels, sigmoid=True, reduction="none")
    np.testing.assert_allclose(got[..., 0].numpy(), expected, atol=1e-12)
    other = lovasz_softmax_loss(logits, labels, other_act=torch.sigmoid, reduction="none")
    torch.testing.assert_close(other, got)


def test_soft_target_is_rejected_with_reason() -> None:
    soft = torch.softmax(torch.randn(1, 3, 4, 4), 1)
    with pytest.raises(ValueError, match="set-valued labels.*JaccardMetricLoss"):
        lovasz_softmax_loss(torch.rand(1, 3, 4, 4), soft)
    with pytest.raises(ValueError, match="LovaszHingeLoss needs hard labels"):
        LovaszHingeLoss()(torch.randn(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5))
    # a soft value on an excluded voxel does not matter
    target = one_hot(torch.randint(0, 3, (1, 4, 4)), 3).float()
    target[0, :, 0, 0] = torch.tensor([0.2, 0.3, 0.5])
    mask = torch.ones(1, 4, 4, dtype=torch.bool)
    mask[0, 0, 0] = False
    assert torch.isfinite(lovasz_softmax_loss(torch.rand(1, 3, 4, 4), target, mask))


def test_nothing_active_gives_zero_with_graph() -> None:
    logits = torch.randn(2, 3, 4, requires_grad=True)
    index = torch.zeros(2, 4, dtype=torch.long)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    for fn, kwargs in ((lovasz_softmax_loss, {"softmax": True}), (lovasz_hinge_loss, {})):
        loss = fn(logits, index, mask, to_onehot_y=True, active_classes="present", **kwargs)
        assert loss.item() == 0.0 and loss.requires_grad
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.equal(grad, torch.zeros_like(grad))
    loss = lovasz_softmax_loss(logits, index, softmax=True, to_onehot_y=True, include_background=False,
                               active_classes="present")  # fmt: skip
    assert loss.item() == 0.0


def test_gradcheck_softmax_float64() -> None:
    logits = torch.randn(2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 3, (2, 1, 3, 2))
    mask = torch.rand(2, 3, 2) > 0.2
    for batch in (False, True):
        assert torch.autograd.gradcheck(
            lambda x, b=batch: lovasz_softmax_loss(
                x, index, mask, softmax=True, to_onehot_y=True, batch=b, active_classes="present"
            ),
            (logits,),
        )


def test_gradient_is_the_sorted_increment() -> None:
    # d loss / d p: for one class and no ties, the gradient w.r.t. m_{pi_i} is the Jaccard increment g_i
    probs = torch.tensor([[[0.9, 0.2, 0.6]]], dtype=torch.float64, requires_grad=True)  # C = 1
    labels = torch.tensor([[[0.0, 1.0, 1.0]]], dtype=torch.float64)
    lovasz_softmax_loss(probs, labels).backward()
    # errors 0.9 (neg), 0.8 (pos), 0.4 (pos); Y = {1, 2}: Delta_J = 1/3, 2/3, 1 -> increments 1/3 each
    # d|y - p|/dp = +1 for y = 0, -1 for y = 1
    np.testing.assert_allclose(probs.grad.flatten().numpy(), [1 / 3, -1 / 3, -1 / 3])


# ----------------------------------------------------------------------------------------------------------------
# Lovász-hinge


@pytest.mark.parametrize("batch", [False, True])
def test_hinge_binary_equals_definition(batch: bool) -> None:
    logits = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    labels = (torch.rand(3, 1, 4, 4) > 0.6).double()
    labels[2] = 0  # an image without foreground
    errors = torch.relu(1 - logits * (2 * labels - 1))
    for active_classes in ("all", "present"):
        expected = reference_loss(
            errors.flatten(2).numpy(), labels.flatten(2).numpy(), np.ones((3, 16), bool), batch,
            active_classes == "present",
        )  # fmt: skip
        got = lovasz_hinge_loss(logits, labels, batch=batch, active_classes=active_classes)
        assert got.item() == pytest.approx(expected, abs=1e-12)


def test_hinge_multichannel_is_one_vs_rest_with_ignore() -> None:
    logits = torch.randn(2, 3, 8, dtype=torch.float64)
    index = torch.randint(0, 3, (2, 8))
    index[:, :2] = 9
    labels = one_hot(torch.where(index == 9, 0, index), 3)
    keep = (index != 9).numpy()
    errors = torch.relu(1 - logits * (2 * labels - 1))
    expected = reference_loss(errors.numpy(), labels.numpy(), keep, False, False, "none")
    got = lovasz_hinge_loss(logits, index[:, None], to_onehot_y=True, ignore_index=9, reduction="none")
    np.testing.assert_allclose(got[..., 0].numpy(), expected, atol=1e-12)
    # each channel alone is the binary loss of that channel
    for c in range(3):
        single = lovasz_hinge_loss(logits[:, c : c + 1], labels[:, c : c + 1], torch.tensor(keep), reduction="none")
        torch.testing.assert_close(single[:, 0], got[:, c])
    no_bg = lovasz_hinge_loss(logits, index, to_onehot_y=True, ignore_index=9, include_background=False,
                              reduction="none")  # fmt: skip
    torch.testing.assert_close(no_bg, got[:, 1:])


def test_hinge_perfect_margin_is_zero_and_gradcheck() -> None:
    labels = (torch.rand(2, 1, 5) > 0.5).double()
    assert lovasz_hinge_loss(3 * (2 * labels - 1), labels).item() == 0.0
    logits = (torch.randn(2, 1, 5, dtype=torch.float64) * 0.5).requires_grad_()
    for batch in (False, True):
        assert torch.autograd.gradcheck(lambda x, b=batch: lovasz_hinge_loss(x, labels, batch=b), (logits,))


# ----------------------------------------------------------------------------------------------------------------
# modules, dtypes, errors


def test_modules_equal_functions() -> None:
    logits = torch.randn(2, 3, 4, 4)
    index = torch.randint(0, 3, (2, 1, 4, 4))
    mask = torch.rand(2, 1, 4, 4) > 0.2
    kwargs = {"to_onehot_y": True, "batch": True, "active_classes": "present", "include_background": False}
    module = LovaszSoftmaxLoss(softmax=True, **kwargs)
    assert torch.equal(module(logits, index, mask), lovasz_softmax_loss(logits, index, mask, softmax=True, **kwargs))
    hinge = LovaszHingeLoss(reduction="sum", **kwargs)
    assert torch.equal(hinge(logits, index, mask), lovasz_hinge_loss(logits, index, mask, reduction="sum", **kwargs))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype: torch.dtype) -> None:
    logits = torch.randn(2, 3, 6, 6)
    index = torch.randint(0, 3, (2, 1, 6, 6))
    ref = lovasz_softmax_loss(logits.to(dtype).float(), index, softmax=True, to_onehot_y=True)
    x = logits.to(dtype).requires_grad_()
    loss = lovasz_softmax_loss(x, index, softmax=True, to_onehot_y=True)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(x.grad.float()).all()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hinge = LovaszHingeLoss(to_onehot_y=True)(logits, index)
    assert torch.isfinite(hinge)


def test_errors_have_clear_messages() -> None:
    x = torch.rand(2, 3, 4, 4)
    index = torch.randint(0, 3, (2, 1, 4, 4))
    with pytest.raises(ValueError, match="active_classes must be one of 'all', 'present', got 'prob'"):
        LovaszSoftmaxLoss(active_classes="prob")
    with pytest.raises(ValueError, match="reduction must be one of"):
        LovaszHingeLoss(reduction="max")
    with pytest.raises(ValueError, match="mutually exclusive"):
        LovaszSoftmaxLoss(sigmoid=True, softmax=True)
    with pytest.raises(TypeError, match="other_act must be a callable"):
        LovaszSoftmaxLoss(other_act="softmax")
    with pytest.raises(TypeError, match="batch must be a bool"):
        LovaszSoftmaxLoss(batch=1)
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        LovaszHingeLoss(ignore_index=1.5)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*softmax=True"):
        lovasz_softmax_loss(torch.randn(2, 3, 4, 4) * 5, index, to_onehot_y=True)
    with pytest.raises(AssertionError):  # ShapeError: MONAI code catching AssertionError keeps working
        lovasz_softmax_loss(x, torch.rand(2, 2, 4, 4))
    with pytest.raises(ShapeError, match="mask must have shape"):
        lovasz_hinge_loss(x, index, torch.ones(2, 1, 4, 3, dtype=torch.bool), to_onehot_y=True)
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\)"):
        lovasz_softmax_loss(x, index + 1, to_onehot_y=True)
    with pytest.raises(ShapeError, match="other_act must return a tensor of the input's shape"):
        lovasz_softmax_loss(x, index, to_onehot_y=True, other_act=lambda z: z[:, :2])
