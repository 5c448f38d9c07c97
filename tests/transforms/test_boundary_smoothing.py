"""Tests of the BoundaryLabelSmoothing array/dict transforms: metadata, spacing from the affine, Compose+LoadImaged."""

from __future__ import annotations

import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged
from scipy import ndimage

from monai_jdt.transforms import (
    BoundaryLabelSmoothing,
    BoundaryLabelSmoothingD,
    BoundaryLabelSmoothingd,
    BoundaryLabelSmoothingDict,
    boundary_label_smoothing,
)
from monai_jdt.utils import ShapeError


def _label_volume(seed: int = 0, shape: tuple[int, ...] = (5, 4, 3), zoom: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.zoom(rng.integers(0, 3, shape), zoom, order=0)


def _expected_3d(lab: np.ndarray, half_widths: tuple[int, ...], eps: float = 0.5, num_classes: int = 3) -> np.ndarray:
    """numpy/scipy reference: boundary by max/min filter, one-hot, smoothing."""
    size = [2 * h + 1 for h in half_widths]
    edge = ndimage.maximum_filter(lab, size=size, mode="nearest") != ndimage.minimum_filter(
        lab, size=size, mode="nearest"
    )
    onehot = (lab[None] == np.arange(num_classes).reshape(-1, 1, 1, 1)).astype(np.float32)
    return np.where(edge[None], onehot * (1 - eps) + eps / num_classes, onehot)


def test_array_transform_equals_functional_and_keeps_meta() -> None:
    lab = _label_volume()
    affine = torch.diag(torch.tensor([0.7, 0.7, 3.0, 1.0], dtype=torch.float64))
    img = MetaTensor(torch.from_numpy(lab)[None].float(), affine=affine, meta={"filename_or_obj": "case.nii.gz"})
    out = BoundaryLabelSmoothing(num_classes=3, epsilon=0.4, kernel_size=(3, 3, 1))(img)
    assert isinstance(out, MetaTensor) and out.shape == (3, *lab.shape) and out.dtype == torch.float32
    torch.testing.assert_close(out.affine, affine)
    assert out.meta["filename_or_obj"] == "case.nii.gz"
    batched = boundary_label_smoothing(torch.from_numpy(lab)[None, None], 3, 0.4, (3, 3, 1))[0]
    torch.testing.assert_close(out.as_tensor(), batched)
    np.testing.assert_allclose(out.numpy(), _expected_3d(lab, (1, 1, 0), eps=0.4), atol=1e-6)


def test_radius_mm_reads_spacing_from_affine() -> None:
    lab = _label_volume(1)
    affine = torch.diag(torch.tensor([1.0, 1.0, 5.0, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor([10.0, -4.0, 2.0])
    img = MetaTensor(torch.from_numpy(lab)[None], affine=affine)
    out = BoundaryLabelSmoothing(3, radius_mm=2.0)(img)
    np.testing.assert_allclose(out.numpy(), _expected_3d(lab, (2, 2, 0)), atol=1e-6)
    explicit = BoundaryLabelSmoothing(3, radius_mm=2.0, spacing=(1.0, 1.0, 1.0))(img)
    np.testing.assert_allclose(explicit.numpy(), _expected_3d(lab, (2, 2, 2)), atol=1e-6)  # spacing= wins


def test_radius_mm_with_rotated_affine_and_2d() -> None:
    lab = _label_volume(2, (5, 6), 3)
    c, s = np.cos(0.3), np.sin(0.3)
    affine = torch.tensor([[0.5 * c, -3.0 * s, 0, 0], [0.5 * s, 3.0 * c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    out = BoundaryLabelSmoothing(3, radius_mm=1.5)(MetaTensor(torch.from_numpy(lab)[None], affine=affine))
    expected = boundary_label_smoothing(torch.from_numpy(lab)[None, None], 3, kernel_size=(7, 1))[0]
    torch.testing.assert_close(out.as_tensor(), expected)


def test_radius_mm_needs_spacing_for_plain_tensors() -> None:
    with pytest.raises(ValueError, match="radius_mm needs the voxel spacing: pass a MetaTensor .* got a Tensor"):
        BoundaryLabelSmoothing(3, radius_mm=2.0)(torch.zeros(1, 4, 4, 4))
    out = BoundaryLabelSmoothing(2, radius_mm=2.0, spacing=(1.0, 2.0))(np.array([[[0, 1], [0, 1]]]))
    assert out.shape == (2, 2, 2)


def test_numpy_and_one_hot_input() -> None:
    lab = _label_volume(3)
    onehot = (lab[None] == np.arange(3).reshape(-1, 1, 1, 1)).astype(np.uint8)
    from_index = BoundaryLabelSmoothing(3)(lab[None])
    from_onehot = BoundaryLabelSmoothing(3)(onehot)
    torch.testing.assert_close(torch.as_tensor(from_onehot), torch.as_tensor(from_index))
    np.testing.assert_allclose(np.asarray(from_index), _expected_3d(lab, (1, 1, 1)), atol=1e-6)


def test_dict_transform_mask_key_and_aliases() -> None:
    lab = _label_volume(4)
    lab[:4, :4, :4] = 255
    data = {"label": MetaTensor(torch.from_numpy(lab)[None]), "image": torch.zeros(1, 2, 2)}
    out = BoundaryLabelSmoothingd("label", num_classes=3, ignore_index=255, mask_key="label_mask")(data)
    assert out["image"] is data["image"]
    mask = out["label_mask"]
    assert isinstance(mask, MetaTensor) and mask.dtype == torch.bool and mask.shape == (1, *lab.shape)
    assert torch.equal(mask[0], torch.from_numpy(lab != 255))
    sums = out["label"].sum(0)
    torch.testing.assert_close(sums[mask[0]].as_tensor(), torch.ones(int(mask.sum())))
    assert BoundaryLabelSmoothingD is BoundaryLabelSmoothingd and BoundaryLabelSmoothingDict is BoundaryLabelSmoothingd
    no_mask = BoundaryLabelSmoothingd("label", num_classes=3, ignore_index=255)(data)
    assert set(no_mask) == {"label", "image"}


def test_dict_transform_several_keys_and_missing_keys() -> None:
    lab = torch.tensor([[[0, 1, 1, 1]]])
    data = {"a": lab, "b": lab.clone()}
    out = BoundaryLabelSmoothingd(["a", "b", "c"], 2, mask_key=["ma", "mb", "mc"], allow_missing_keys=True)(data)
    torch.testing.assert_close(out["a"], out["b"])
    assert "ma" in out and "mb" in out and "mc" not in out
    with pytest.raises(KeyError):
        BoundaryLabelSmoothingd(["a", "c"], 2)(data)


def test_compose_with_load_imaged_on_nifti(tmp_path: Path) -> None:
    lab = _label_volume(5).astype(np.uint8)
    affine = np.diag([0.8, 0.8, 5.0, 1.0])
    affine[:3, 3] = [-30.0, 12.0, 4.0]
    path = tmp_path / "label.nii.gz"
    nib.save(nib.Nifti1Image(lab, affine), str(path))
    pipeline = Compose(
        [
            LoadImaged("label"),
            EnsureChannelFirstd("label"),
            BoundaryLabelSmoothingd("label", num_classes=3, epsilon=0.5, radius_mm=2.0, mask_key="mask"),
        ]
    )
    out = pipeline({"label": str(path)})
    loaded = LoadImaged("label")({"label": str(path)})["label"]
    torch.testing.assert_close(out["label"].affine, loaded.affine)
    np.testing.assert_allclose(out["label"].affine.numpy(), affine, atol=1e-6)
    # 2 mm on 0.8 x 0.8 x 5 mm voxels: half-widths (2, 2, 0)
    np.testing.assert_allclose(out["label"].numpy(), _expected_3d(lab, (2, 2, 0)), atol=1e-6)
    assert out["mask"].all() and out["label"].meta["filename_or_obj"] == str(path)


def test_pickles_for_dataloader_workers() -> None:
    t = BoundaryLabelSmoothingd("label", num_classes=3, radius_mm=(2.0, 2.0, 4.0), mask_key="m")
    clone = pickle.loads(pickle.dumps(t))
    lab = torch.from_numpy(_label_volume(6))[None]
    data = {"label": MetaTensor(lab, affine=torch.diag(torch.tensor([1.0, 2.0, 2.0, 1.0])))}
    torch.testing.assert_close(clone(data)["label"], t(data)["label"])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_classes": 1}, ValueError, "num_classes must be an integer >= 2, got 1"),
        ({"num_classes": 3, "epsilon": -0.1}, ValueError, r"epsilon must be in \[0, 1\], got -0.1"),
        ({"num_classes": 3, "kernel_size": 2}, ValueError, "kernel_size must be odd, got 2"),
        ({"num_classes": 3, "radius_mm": -1.0}, ValueError, "radius_mm must be >= 0, got -1"),
        ({"num_classes": 3, "radius_mm": 1.0, "spacing": (1.0, -2.0)}, ValueError, r"spacing\[1\] must be > 0 mm"),
        ({"num_classes": 3, "spacing": (1.0, 1.0)}, ValueError, "spacing is only used with radius_mm"),
        ({"num_classes": 3, "ignore_index": "255"}, TypeError, "ignore_index must be an int or None, got str '255'"),
        ({"num_classes": 3, "dtype": torch.int64}, TypeError, "dtype must be a floating torch.dtype"),
    ],
)
def test_constructor_errors(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        BoundaryLabelSmoothing(**kwargs)
    with pytest.raises(error, match=message):
        BoundaryLabelSmoothingd("label", **kwargs)


def test_call_errors() -> None:
    t = BoundaryLabelSmoothing(3)
    with pytest.raises(ShapeError, match=r"img must be channel-first .* got shape \(4, 4\)"):
        t(torch.zeros(4, 4))
    with pytest.raises(ShapeError, match=r"\(B, 3, \*spatial\)"):
        t(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\), got values \[5\]"):
        t(torch.full((1, 4, 4), 5))
    with pytest.raises(TypeError, match="img must be a torch.Tensor, MetaTensor or numpy array, got list"):
        t([[[0, 1]]])
    with pytest.raises(ValueError, match="kernel_size must be a number or a sequence of 3 numbers"):
        BoundaryLabelSmoothing(3, kernel_size=(3, 3))(torch.zeros(1, 4, 4, 4))
