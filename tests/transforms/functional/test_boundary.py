"""Tests of ``boundary_mask``: hand-computed cases, a brute-force reference and scipy.ndimage."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage

from monai_jdt.transforms.functional import boundary_mask, box_half_widths, spacing_half_widths
from monai_jdt.utils import ShapeError


def brute_force_boundary(labels: np.ndarray, half_widths: tuple[int, ...], ignore: int | None = None) -> np.ndarray:
    """Loop over every offset of the box; a voxel is boundary if a valid in-image neighbour has another label."""
    valid = np.ones(labels.shape, bool) if ignore is None else labels != ignore
    out = np.zeros(labels.shape, bool)
    ranges = [range(-h, h + 1) for h in half_widths]
    for offset in itertools.product(*ranges):
        src, dst = [], []
        for o, n in zip(offset, labels.shape):
            src.append(slice(max(o, 0), n + min(o, 0)))
            dst.append(slice(max(-o, 0), n + min(-o, 0)))
        src_t, dst_t = tuple(src), tuple(dst)
        differs = (labels[src_t] != labels[dst_t]) & valid[src_t]
        out[dst_t] |= differs
    return out & valid


def scipy_boundary(labels: np.ndarray, half_widths: tuple[int, ...], ignore: int | None = None) -> np.ndarray:
    valid = np.ones(labels.shape, bool) if ignore is None else labels != ignore
    size = [2 * h + 1 for h in half_widths]
    lo, hi = -(10**9), 10**9
    high = ndimage.maximum_filter(np.where(valid, labels, lo), size=size, mode="constant", cval=lo)
    low = ndimage.minimum_filter(np.where(valid, labels, hi), size=size, mode="constant", cval=hi)
    return (high != low) & valid


def test_square_2d_hand_computed() -> None:
    lab = torch.zeros(1, 1, 6, 6, dtype=torch.long)
    lab[0, 0, 1:5, 1:5] = 1  # 4x4 square: its 2x2 interior is not boundary
    expected = torch.zeros(6, 6, dtype=torch.bool)
    expected[0:6, 0:6] = True
    expected[2:4, 2:4] = False
    assert torch.equal(boundary_mask(lab)[0], expected)


def test_cube_3d_hand_computed() -> None:
    lab = torch.zeros(1, 7, 7, 7, dtype=torch.int64)
    lab[0, 2:5, 2:5, 2:5] = 1  # 3x3x3 cube in a 7^3 volume
    mask = boundary_mask(lab)[0]
    expected = torch.zeros(7, 7, 7, dtype=torch.bool)
    expected[1:6, 1:6, 1:6] = True  # one voxel around the cube, the cube's shell ...
    expected[3, 3, 3] = False  # ... but not its centre voxel
    assert torch.equal(mask, expected)
    assert int(mask.sum()) == 5**3 - 1


def test_sphere_touching_border() -> None:
    grid = np.stack(np.meshgrid(*[np.arange(12)] * 3, indexing="ij"))
    sphere = (((grid - np.array([0, 6, 6])[:, None, None, None]) ** 2).sum(0) <= 25).astype(np.int64)
    for k in (3, 5):
        got = boundary_mask(torch.from_numpy(sphere)[None], kernel_size=k)[0].numpy()
        np.testing.assert_array_equal(got, brute_force_boundary(sphere, (k // 2,) * 3))
    # the flat cut face lies on the image border: its face voxels are boundary only through the curved rim
    got3 = boundary_mask(torch.from_numpy(sphere)[None])[0].numpy()
    assert not got3[0, 6, 6] and got3[0, 6, 1] and got3[5, 6, 6] and not got3[3, 6, 6]


def test_two_classes_meeting() -> None:
    lab = torch.ones(1, 4, 8, dtype=torch.long)
    lab[..., 4:] = 2  # no background at all
    expected3 = torch.zeros(4, 8, dtype=torch.bool)
    expected3[:, 3:5] = True
    expected5 = torch.zeros(4, 8, dtype=torch.bool)
    expected5[:, 2:6] = True
    assert torch.equal(boundary_mask(lab, 3)[0], expected3)
    assert torch.equal(boundary_mask(lab, 5)[0], expected5)
    assert torch.equal(boundary_mask(lab, (1, 5))[0], expected5)
    assert not boundary_mask(lab, (5, 1)).any()


def test_ignore_region() -> None:
    lab = torch.tensor([[0, 0, 255, 1, 1, 1, 1, 0]])[None]
    got = boundary_mask(lab, (1, 3), ignore_index=255)[0, 0]
    # 255 is never boundary and its neighbours 0 and 1 do not see each other through it
    assert got.tolist() == [False, False, False, False, False, False, True, True]
    got5 = boundary_mask(lab, (1, 5), ignore_index=255)[0, 0]
    assert got5.tolist() == [False, True, False, True, False, True, True, True]
    assert not boundary_mask(torch.full((1, 3, 3), 255), ignore_index=255).any()


def test_radius_mm_anisotropic_exact_half_widths() -> None:
    assert spacing_half_widths(2.0, (1.0, 1.0, 5.0), 3) == (2, 2, 0)
    assert spacing_half_widths((3.0, 3.0, 5.0), (1.5, 0.7, 5.0), 3) == (2, 4, 1)
    assert spacing_half_widths(0.3, 0.1, 2) == (3, 3)
    rng = np.random.default_rng(1)
    lab = ndimage.zoom(rng.integers(0, 3, (5, 5, 4)), (3, 3, 2), order=0)
    t = torch.from_numpy(lab)[None, None]
    by_radius = boundary_mask(t, radius_mm=2.0, spacing=(1.0, 1.0, 5.0))[0].numpy()
    np.testing.assert_array_equal(by_radius, brute_force_boundary(lab, (2, 2, 0)))
    np.testing.assert_array_equal(by_radius, boundary_mask(t, kernel_size=(5, 5, 1))[0].numpy())
    assert not np.array_equal(by_radius, boundary_mask(t, kernel_size=5)[0].numpy())


def test_per_item_spacing() -> None:
    rng = np.random.default_rng(2)
    lab = np.stack([ndimage.zoom(rng.integers(0, 3, (4, 4, 4)), 3, order=0) for _ in range(3)])
    spacing = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 5.0], [1.0, 1.0, 1.0]])
    got = boundary_mask(torch.from_numpy(lab), radius_mm=2.0, spacing=spacing).numpy()
    for b, hw in enumerate([(2, 2, 2), (2, 2, 0), (2, 2, 2)]):
        np.testing.assert_array_equal(got[b], brute_force_boundary(lab[b], hw))


@pytest.mark.parametrize("spatial", [(17, 23), (9, 14, 11)])
@pytest.mark.parametrize("kernel", [1, 3, 5, 9])
@pytest.mark.parametrize("ignore", [None, 2])
def test_equals_scipy_on_random_volumes(spatial: tuple[int, ...], kernel: int, ignore: int | None) -> None:
    rng = np.random.default_rng(kernel + len(spatial))
    coarse = rng.integers(0, 4, [max(s // 3, 1) for s in spatial])
    lab = ndimage.zoom(coarse, [s / c for s, c in zip(spatial, coarse.shape)], order=0)
    noisy = np.where(rng.random(lab.shape) < 0.05, rng.integers(0, 4, lab.shape), lab)
    batch = np.stack([lab, noisy])
    got = boundary_mask(torch.from_numpy(batch)[:, None], kernel, ignore_index=ignore).numpy()
    for b in range(2):
        np.testing.assert_array_equal(got[b], scipy_boundary(batch[b], (kernel // 2,) * len(spatial), ignore))


def test_large_and_anisotropic_kernels_equal_scipy() -> None:
    rng = np.random.default_rng(3)
    lab = ndimage.zoom(rng.integers(0, 3, (6, 7, 5)), 4, order=0)
    for hw in [(7, 0, 3), (12, 30, 1), (0, 0, 0), (25, 25, 25)]:
        got = boundary_mask(torch.from_numpy(lab)[None], [2 * h + 1 for h in hw], ignore_index=1)[0].numpy()
        np.testing.assert_array_equal(got, scipy_boundary(lab, hw, 1))


@pytest.mark.parametrize(
    "values",
    [
        np.array([0, 1, 2], dtype=np.uint8),
        np.array([-3, 0, 7], dtype=np.int8),
        np.array([-120, 0, 120], dtype=np.int8),
        np.array([0, 1, 2], dtype=np.float32),
        np.array([0, 1000, 70000], dtype=np.int64),
        np.array([0, 1, 2**40], dtype=np.int64),
    ],
)
def test_dtypes_and_label_values(values: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    idx = ndimage.zoom(rng.integers(0, 3, (5, 6)), 3, order=0)
    lab = values[idx]
    expected = brute_force_boundary(idx, (1, 1))
    np.testing.assert_array_equal(boundary_mask(torch.from_numpy(lab)[None])[0].numpy(), expected)
    ign = values[2].item()
    expected_ign = brute_force_boundary(idx, (1, 1), ignore=2)
    got = boundary_mask(torch.from_numpy(lab)[None], ignore_index=int(ign))[0].numpy()
    np.testing.assert_array_equal(got, expected_ign)


def test_bool_labels_and_meta_tensor_input() -> None:
    from monai.data import MetaTensor

    lab = torch.zeros(1, 1, 5, 5, dtype=torch.bool)
    lab[..., 2, 2] = True
    out = boundary_mask(MetaTensor(lab))
    assert type(out) is torch.Tensor and out.dtype == torch.bool
    assert int(out.sum()) == 9


def test_no_autograd_needed() -> None:
    lab = torch.tensor([[[0.0, 1.0, 1.0]]], requires_grad=True)
    out = boundary_mask(lab)
    assert not out.requires_grad and out.tolist() == [[[True, True, False]]]


def test_box_half_widths() -> None:
    assert box_half_widths(3, 3) == (1, 1, 1)
    assert box_half_widths([1, 5], 2) == (0, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kernel_size": 4}, ValueError, "kernel_size must be odd, got 4"),
        ({"kernel_size": 0}, ValueError, "kernel_size must be an integer >= 1, got 0"),
        ({"kernel_size": (3, 2)}, ValueError, r"kernel_size\[1\] must be odd, got 2"),
        ({"kernel_size": (3, 3, 3)}, ValueError, "kernel_size must be a number or a sequence of 2 numbers"),
        ({"kernel_size": 2.5}, TypeError, "kernel_size must be an integer, got float 2.5"),
        ({"radius_mm": 2.0}, ValueError, "radius_mm needs the voxel spacing"),
        ({"spacing": (1.0, 1.0)}, ValueError, "spacing is only used with radius_mm"),
        ({"radius_mm": -1.0, "spacing": 1.0}, ValueError, "radius_mm must be >= 0, got -1"),
        ({"radius_mm": 1.0, "spacing": (1.0, 0.0)}, ValueError, r"spacing\[1\] must be > 0 mm, got 0"),
        ({"radius_mm": 1.0, "spacing": [[1.0, 1.0]] * 3}, ValueError, r"spacing must have shape \(2,\) or \(2, 2\)"),
        ({"ignore_index": 1.5}, TypeError, "ignore_index must be an int or None, got float 1.5"),
        ({"spatial_dims": 4}, ValueError, "spatial_dims must be 2 or 3, got 4"),
    ],
)
def test_argument_errors(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        boundary_mask(torch.zeros(2, 1, 4, 4, dtype=torch.long), **kwargs)


def test_label_errors() -> None:
    with pytest.raises(ValueError, match="labels must hold integer class indices, got value 0.5"):
        boundary_mask(torch.tensor([[[0.0, 0.5]]]))
    with pytest.raises(ValueError, match="got value nan"):
        boundary_mask(torch.tensor([[[0.0, float("nan")]]]))
    with pytest.raises(ValueError, match="got value inf"):
        boundary_mask(torch.tensor([[[0.0, float("inf")]]]))
    with pytest.raises(ShapeError, match=r"index map of shape \(B, 1, \*spatial\).*got \(1, 2, 3, 3, 3\)"):
        boundary_mask(torch.zeros(1, 2, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"2 or 3 spatial dims, got \(4, 4\)"):
        boundary_mask(torch.zeros(4, 4))
    with pytest.raises(TypeError, match="labels must be a torch.Tensor, got ndarray"):
        boundary_mask(np.zeros((1, 4, 4)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype torch.complex64"):
        boundary_mask(torch.zeros(1, 4, 4, dtype=torch.complex64))


def test_ambiguous_4d_resolved_by_spatial_dims() -> None:
    lab = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    lab[..., 0, 0, 0] = 1
    assert boundary_mask(lab).shape == (2, 4, 4)
    assert boundary_mask(lab, spatial_dims=3).shape == (2, 1, 4, 4)
    assert int(boundary_mask(lab, spatial_dims=3).sum()) == 2 * 4
