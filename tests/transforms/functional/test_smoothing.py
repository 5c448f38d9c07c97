"""Tests of ``boundary_label_smoothing`` and ``label_smoothing`` against hand-computed values and scipy/numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from monai_jdt.transforms.functional import boundary_label_smoothing, label_smoothing
from monai_jdt.utils import ShapeError


def scipy_bls(labels: np.ndarray, num_classes: int, eps: float, size: list[int], ignore: int | None) -> np.ndarray:
    """Reference: scipy max/min filters on the label map (ignored voxels neutral), numpy one-hot and smoothing."""
    valid = np.ones(labels.shape, bool) if ignore is None else labels != ignore
    lo, hi = -(10**6), 10**6
    high = ndimage.maximum_filter(np.where(valid, labels, lo), size=size, mode="constant", cval=lo)
    low = ndimage.minimum_filter(np.where(valid, labels, hi), size=size, mode="constant", cval=hi)
    edge = (high != low) & valid
    onehot = (labels[None] == np.arange(num_classes).reshape(-1, *[1] * labels.ndim)).astype(np.float64)
    out = np.where(edge[None], onehot * (1 - eps) + eps / num_classes, onehot)
    return out * valid[None]


def test_two_classes_2d_hand_computed() -> None:
    lab = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]])[None, None]
    out = boundary_label_smoothing(lab, 2, epsilon=0.4)[0]
    # boundary columns 1 and 2: own class 1 - 0.4 + 0.2 = 0.8, other class 0.2
    expected_fg = torch.tensor([[0.0, 0.2, 0.8, 1.0]] * 3)
    torch.testing.assert_close(out[1], expected_fg)
    torch.testing.assert_close(out[0], 1 - expected_fg)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 4)


def test_cube_3d_three_classes_hand_computed() -> None:
    lab = torch.zeros(1, 1, 6, 6, 6, dtype=torch.long)
    lab[..., 1:5, 1:5, 1:5] = 2  # 4^3 cube of class 2: its 2^3 core is interior
    out = boundary_label_smoothing(lab, 3, epsilon=0.3)[0]
    eps3 = 0.1
    assert torch.allclose(out[:, 2, 2, 2], torch.tensor([0.0, 0.0, 1.0]))  # cube core
    assert torch.allclose(out[:, 1, 1, 1], torch.tensor([eps3, eps3, 0.7 + eps3]))  # cube corner
    assert torch.allclose(out[:, 0, 0, 0], torch.tensor([0.7 + eps3, eps3, eps3]))  # background next to the corner
    # class 1 is absent but gets epsilon / C at every boundary voxel: 6^3 - 2^3 boundary voxels
    assert torch.isclose(out[1].sum(), torch.tensor((216 - 8) * eps3))


def test_sums_to_one_and_ignore_is_zero() -> None:
    rng = np.random.default_rng(0)
    lab = ndimage.zoom(rng.integers(0, 4, (2, 4, 5, 3)), (1, 3, 3, 3), order=0)
    lab[:, :3, :3] = 255
    out = boundary_label_smoothing(torch.from_numpy(lab)[:, None], 4, epsilon=0.5, ignore_index=255)
    sums = out.sum(1)
    valid = torch.from_numpy(lab != 255)
    torch.testing.assert_close(sums[valid], torch.ones(int(valid.sum())))
    assert torch.all(out.permute(1, 0, 2, 3, 4)[:, ~valid] == 0)


@pytest.mark.parametrize("spatial", [(20, 17), (11, 9, 13)])
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("ignore", [None, 3])
def test_equals_scipy_reference(spatial: tuple[int, ...], kernel: int, ignore: int | None) -> None:
    rng = np.random.default_rng(kernel * 10 + len(spatial))
    coarse = rng.integers(0, 4, [max(s // 3, 1) for s in spatial])
    lab = ndimage.zoom(coarse, [s / c for s, c in zip(spatial, coarse.shape)], order=0)
    eps = 0.35
    out = boundary_label_smoothing(
        torch.from_numpy(lab)[None, None], 3 if ignore else 4, eps, kernel, ignore_index=ignore
    )
    expected = scipy_bls(lab, 3 if ignore else 4, eps, [kernel] * len(spatial), ignore)
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=0, atol=1e-6)


def test_radius_mm_anisotropic() -> None:
    rng = np.random.default_rng(5)
    lab = ndimage.zoom(rng.integers(0, 3, (4, 4, 4)), (4, 4, 2), order=0)
    t = torch.from_numpy(lab)[None, None]
    out = boundary_label_smoothing(t, 3, radius_mm=2.0, spacing=(1.0, 1.0, 5.0))[0].numpy()
    np.testing.assert_allclose(out, scipy_bls(lab, 3, 0.5, [5, 5, 1], None), atol=1e-6)
    voxel_kernel = boundary_label_smoothing(t, 3, kernel_size=5)[0].numpy()
    assert not np.allclose(out, voxel_kernel)
    np.testing.assert_allclose(voxel_kernel, scipy_bls(lab, 3, 0.5, [5, 5, 5], None), atol=1e-6)


def test_dense_one_hot_equals_index_input() -> None:
    rng = np.random.default_rng(6)
    lab = torch.from_numpy(ndimage.zoom(rng.integers(0, 3, (2, 5, 5)), (1, 3, 3), order=0))[:, None]
    onehot = torch.nn.functional.one_hot(lab[:, 0], 3).permute(0, 3, 1, 2)
    torch.testing.assert_close(boundary_label_smoothing(onehot, 3), boundary_label_smoothing(lab, 3))
    torch.testing.assert_close(
        boundary_label_smoothing(onehot.to(torch.float64), 3, dtype=torch.float64),
        boundary_label_smoothing(lab, 3, dtype=torch.float64),
    )


def test_dense_soft_input_boundary_from_argmax() -> None:
    soft = torch.tensor([[[0.9, 0.8, 0.3, 0.1, 0.0]], [[0.1, 0.2, 0.7, 0.9, 0.0]]])[
        None
    ]  # (1, 2, 1, 5); last voxel all zero = ignored
    out = boundary_label_smoothing(soft, 2, epsilon=0.5)[0]
    # argmax: 0 0 1 1 (ignored): boundary at columns 1 and 2 only
    expected = soft[0].clone()
    expected[:, :, 1:3] = soft[0, :, :, 1:3] * 0.5 + 0.25
    torch.testing.assert_close(out, expected)
    assert torch.all(out[:, 0, 4] == 0)


def test_label_smoothing_hand_computed_and_ignore() -> None:
    lab = torch.tensor([[[0, 1, 2, 9]]])[None]  # (1, 1, 1, 4)
    out = label_smoothing(lab, 3, epsilon=0.3, ignore_index=9)[0, :, 0]
    expected = torch.tensor([[0.8, 0.1, 0.1, 0.0], [0.1, 0.8, 0.1, 0.0], [0.1, 0.1, 0.8, 0.0]])
    torch.testing.assert_close(out, expected)
    soft = torch.tensor([[[0.5, 0.0]], [[0.5, 0.0]], [[0.0, 0.0]]])[None]
    torch.testing.assert_close(
        label_smoothing(soft, 3, epsilon=0.3)[0, :, 0], torch.tensor([[0.45, 0.0], [0.45, 0.0], [0.1, 0.0]])
    )


def test_label_smoothing_equals_bls_with_huge_kernel_and_zero_epsilon_is_onehot() -> None:
    lab = torch.tensor([[[0, 0, 1, 1, 2]]])[None]
    torch.testing.assert_close(label_smoothing(lab, 3, 0.2), boundary_label_smoothing(lab, 3, 0.2, kernel_size=9))
    onehot = torch.nn.functional.one_hot(lab[:, 0], 3).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(boundary_label_smoothing(lab, 3, 0.0), onehot)
    torch.testing.assert_close(label_smoothing(lab, 3, 0.0), onehot)


def test_ignore_index_inside_class_range() -> None:
    lab = torch.tensor([[[0, 1, 1, 2]]])[None]
    out = boundary_label_smoothing(lab, 3, 0.5, ignore_index=0)[0, :, 0]
    assert torch.all(out[:, 0] == 0)
    torch.testing.assert_close(out[:, 1], torch.tensor([0.0, 1.0, 0.0]))  # the 0 neighbour is ignored
    torch.testing.assert_close(out[:, 2], torch.tensor([1 / 6, 4 / 6, 1 / 6]))


def test_float_labels_and_no_autograd() -> None:
    lab = torch.tensor([[[[0.0, 1.0]]]], requires_grad=True)
    out = boundary_label_smoothing(lab, 2)
    assert not out.requires_grad
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.75, 0.25]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(7)
    lab = torch.from_numpy(ndimage.zoom(rng.integers(0, 3, (2, 6, 6, 6)), (1, 4, 4, 4), order=0))[:, None]
    gpu = boundary_label_smoothing(lab.cuda(), 3, radius_mm=2.0, spacing=(1.0, 1.0, 2.0), ignore_index=2)
    assert gpu.device.type == "cuda"
    cpu = boundary_label_smoothing(lab, 3, radius_mm=2.0, spacing=(1.0, 1.0, 2.0), ignore_index=2)
    torch.testing.assert_close(gpu.cpu(), cpu)


@pytest.mark.parametrize(
    ("labels", "kwargs", "error", "message"),
    [
        (torch.zeros(1, 1, 4, 4), {"epsilon": 1.5}, ValueError, r"epsilon must be in \[0, 1\], got 1.5"),
        (torch.zeros(1, 1, 4, 4), {"num_classes": 1}, ValueError, "num_classes must be an integer >= 2, got 1"),
        (torch.full((1, 1, 4, 4), 3), {}, ValueError, r"class indices in \[0, 2\), got values \[3\]"),
        (torch.full((1, 1, 4, 4), 7), {"ignore_index": 5}, ValueError, "or equal to ignore_index=5, got values"),
        (torch.full((1, 1, 4, 4), 0.5), {}, ValueError, "labels must hold integer class indices, got value 0.5"),
        (torch.zeros(1, 3, 4, 4), {}, ShapeError, r"\(B, 1, \*spatial\).*\(B, 2, \*spatial\).*got \(1, 3, 4, 4\)"),
        (torch.zeros(1, 1, 4), {}, ShapeError, "with 2 or 3 spatial dims, got"),
        (torch.full((1, 2, 4, 4), 0.7), {}, ValueError, "must sum to 1 .*got a voxel summing to 1.4"),
        (torch.full((1, 2, 4, 4), 2.0), {}, ValueError, r"values must be in \[0, 1\], got values in \[2, 2\]"),
        (torch.full((1, 2, 4, 4), 0.5), {"ignore_index": 0}, ValueError, "ignore_index applies to index-map labels"),
        (torch.zeros(1, 1, 4, 4), {"dtype": torch.int32}, TypeError, "dtype must be a floating torch.dtype"),
        (torch.zeros(1, 1, 4, 4), {"radius_mm": 1.0}, ValueError, "radius_mm needs the voxel spacing"),
        (np.zeros((1, 1, 4, 4)), {}, TypeError, "labels must be a torch.Tensor, got ndarray"),
    ],
)
def test_errors(labels: torch.Tensor, kwargs: dict, error: type, message: str) -> None:
    kwargs = {"num_classes": 2, **kwargs}
    with pytest.raises(error, match=message):
        boundary_label_smoothing(labels, **kwargs)
    if not {"radius_mm"} & kwargs.keys():
        with pytest.raises(error, match=message):
            label_smoothing(labels, **kwargs)


def test_radius_mm_reads_per_item_spacing_from_a_collated_meta_batch() -> None:
    from monai.data import MetaTensor, list_data_collate

    rng = np.random.default_rng(8)
    labs = [ndimage.zoom(rng.integers(0, 3, (4, 4, 4)), 3, order=0) for _ in range(2)]
    items = [
        {"label": MetaTensor(torch.from_numpy(lab)[None], affine=torch.diag(torch.tensor([*sp, 1.0])))}
        for lab, sp in zip(labs, [(1.0, 1.0, 1.0), (1.0, 1.0, 5.0)])
    ]
    batch = list_data_collate(items)["label"]
    assert batch.affine.shape == (2, 4, 4)
    out = boundary_label_smoothing(batch, 3, radius_mm=2.0)
    np.testing.assert_allclose(out[0].numpy(), scipy_bls(labs[0], 3, 0.5, [5, 5, 5], None), atol=1e-6)
    np.testing.assert_allclose(out[1].numpy(), scipy_bls(labs[1], 3, 0.5, [5, 5, 1], None), atol=1e-6)
    with pytest.raises(ValueError, match="radius_mm needs the voxel spacing"):
        boundary_label_smoothing(batch.as_tensor(), 3, radius_mm=2.0)
