"""The small transforms of the bundles."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import CacheDataset, MetaTensor
from monai.transforms import Compose

from monai_jdt.bundle import (
    EnsureSpatialDimsd,
    FillBackgroundd,
    SelectTargetd,
    ThreadSafeLoadImaged,
    drop_spatial_axis,
)
from monai_jdt.utils.errors import ShapeError


def _affine(spacing: tuple[float, float, float], origin: tuple[float, float, float]) -> torch.Tensor:
    a = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    a[:3, 3] = torch.tensor(origin, dtype=torch.float64)
    return a


def test_drop_trailing_and_leading_singleton_axes() -> None:
    affine = _affine((0.8, 0.7, 3.0), (10.0, 20.0, 30.0))
    # (1, H, W, 1): the 3rd voxel axis goes with world row z
    out = drop_spatial_axis(MetaTensor(torch.zeros(1, 4, 5, 1), affine=affine), 2)
    expected = torch.tensor([[0.8, 0.0, 10.0], [0.0, 0.7, 20.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert tuple(out.shape) == (1, 4, 5) and torch.allclose(out.affine, expected)
    # (1, 1, H, W): the 1st voxel axis (spacing 0.8, world row x) goes; y and z stay
    out = drop_spatial_axis(MetaTensor(torch.zeros(1, 1, 4, 5), affine=affine), 0)
    expected = torch.tensor([[0.7, 0.0, 20.0], [0.0, 3.0, 30.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert tuple(out.shape) == (1, 4, 5) and torch.allclose(out.affine, expected)
    with pytest.raises(ShapeError, match="not a singleton"):
        drop_spatial_axis(torch.zeros(1, 4, 5, 2), 2)


def test_ensure_spatial_dims() -> None:
    t = EnsureSpatialDimsd(["image", "raters"], spatial_dims=2)
    out = t({"image": torch.zeros(1, 8, 6, 1), "raters": torch.zeros(3, 8, 6)})
    assert tuple(out["image"].shape) == (1, 8, 6) and tuple(out["raters"].shape) == (3, 8, 6)
    with pytest.raises(ShapeError, match="image must have 2 spatial axes"):
        t({"image": torch.zeros(1, 8, 6, 2), "raters": torch.zeros(3, 8, 6)})
    with pytest.raises(ShapeError, match="raters must have 2 spatial axes"):
        t({"image": torch.zeros(1, 8, 6), "raters": torch.zeros(8, 6)})
    with pytest.raises(ValueError, match="spatial_dims"):
        EnsureSpatialDimsd("image", spatial_dims=0)


def test_select_target() -> None:
    hard = torch.tensor([[[0, 1], [2, 1]]])
    out = SelectTargetd()({"label": hard})
    assert out["seg"] is hard and out["label"] is hard
    soft = torch.rand(3, 2, 2)
    out = SelectTargetd()({"label": hard, "soft_label": soft})
    assert out["seg"] is hard and out["label"] is soft and "soft_label" not in out
    with pytest.raises(KeyError, match="'label'"):
        SelectTargetd()({"image": hard})


def test_fill_background() -> None:
    probs = torch.tensor([[0.0, 0.5, 0.2], [0.0, 0.5, 0.3], [0.0, 0.0, 0.1]])  # 3 classes, 3 voxels
    out = FillBackgroundd("pred")({"pred": probs})["pred"]
    expected = torch.tensor([[1.0, 0.5, 0.6], [0.0, 0.5, 0.3], [0.0, 0.0, 0.1]])
    assert torch.allclose(out, expected) and torch.allclose(out.sum(0), torch.ones(3))
    assert torch.equal(probs[0], torch.tensor([0.0, 0.5, 0.2]))  # input untouched
    with pytest.raises(ShapeError, match="background=3"):
        FillBackgroundd("pred", background=3)({"pred": probs})


def test_thread_safe_loading_stacks_every_rater(tmp_path: Path) -> None:
    """CacheDataset's threads load lists of different lengths at the same time; every item keeps its raters."""
    rng = np.random.default_rng(0)
    data = []
    for case in range(12):
        files = []
        for r in range(1 + case % 4):  # 1 to 4 raters
            path = tmp_path / f"c{case}_r{r}.nii.gz"
            nib.save(nib.Nifti1Image((rng.random((16, 16)) > 0.5).astype(np.uint8), np.eye(4)), path)
            files.append(str(path))
        image = tmp_path / f"c{case}_img.nii.gz"
        nib.save(nib.Nifti1Image(rng.random((16, 16)).astype(np.float32), np.eye(4)), image)
        data.append({"image": str(image), "raters": files})
    for _ in range(3):
        ds = CacheDataset(
            data, Compose([ThreadSafeLoadImaged(["image", "raters"], image_only=True)]), num_workers=4, progress=False
        )
        counts = [ds[i]["raters"].shape[0] if ds[i]["raters"].ndim == 3 else 1 for i in range(len(ds))]
        assert counts == [1 + case % 4 for case in range(12)]
