"""weak_strong_views: voxel alignment of the two views on a coordinate pattern, chain checks, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import (
    Compose,
    OneOf,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSimulateLowResolutiond,
    RandSpatialCropd,
    ScaleIntensityd,
)

from monai_jdt.transforms import check_intensity_chain, weak_strong_views

SHAPE = (12, 10, 8)


def coordinate_item() -> dict[str, torch.Tensor]:
    """Image and label hold the same identifiable pattern: z, y, x ramps and a unique voxel id per channel."""
    z, y, x = torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in SHAPE), indexing="ij")
    ids = z * SHAPE[1] * SHAPE[2] + y * SHAPE[2] + x
    pattern = torch.stack([z, y, x, ids])
    return {"image": pattern.clone(), "label": pattern.clone()}


def spatial_chain() -> list:
    keys = ["image", "label"]
    return [
        RandFlipd(keys, prob=0.5, spatial_axis=0),
        RandFlipd(keys, prob=0.5, spatial_axis=2),
        RandRotate90d(keys, prob=0.75, spatial_axes=(0, 1)),
        RandAffined(keys, prob=1.0, rotate_range=(0.3, 0.3, 0.3), translate_range=(1, 1, 1), mode="nearest",
                    padding_mode="border"),  # fmt: skip
        RandSpatialCropd(keys, roi_size=(6, 6, 6), random_size=False),
    ]


def affine_residual(source: torch.Tensor, target: torch.Tensor) -> float:
    """Largest residual of the least-squares fit ``target = a * source + b`` over all voxels and channels at once.

    0 when the target is one intensity map of the source voxel for voxel (RandScale/ShiftIntensityd apply one factor
    and one offset to every channel). A spatial change of one view breaks the fit, even where a single coordinate
    channel alone would stay affine (a flipped ramp ``n - 1 - z`` is affine in ``z``).
    """
    s, t = source.double().flatten().numpy(), target.double().flatten().numpy()
    design = np.stack([s, np.ones_like(s)], axis=1)
    coef, *_ = np.linalg.lstsq(design, t, rcond=None)
    return float(np.abs(design @ coef - t).max())


@pytest.mark.parametrize("lazy", [False, True])
def test_views_stay_voxel_aligned_with_the_label(lazy: bool) -> None:
    views = weak_strong_views(
        spatial=spatial_chain(),
        weak=[RandShiftIntensityd("image", offsets=(2.0, 5.0), prob=1.0)],
        strong=[RandScaleIntensityd("image_strong", factors=(0.2, 0.8), prob=1.0),
                RandShiftIntensityd("image_strong", offsets=(-9.0, -3.0), prob=1.0)],  # fmt: skip
        lazy=lazy,
    )
    for seed in range(6):
        views.set_random_state(seed=seed)
        out = views(coordinate_item())
        weak, strong, label = (torch.as_tensor(out[k]).float() for k in ("image", "image_strong", "label"))
        assert weak.shape == strong.shape == label.shape == (4, 6, 6, 6)
        # the label went through the spatial transforms only: a non-trivial geometry was applied ...
        assert not torch.equal(label[3], coordinate_item()["label"][3, :6, :6, :6])
        # ... and each view is an intensity map of the label voxel for voxel (same coordinates, same voxel ids)
        offset = weak - label
        assert float(offset.max() - offset.min()) < 1e-3  # one shift for the whole weak image
        assert 2.0 - 1e-4 <= float(offset.mean()) <= 5.0 + 1e-4
        assert affine_residual(label, strong) < 1e-3
        scale = (strong[3].max() - strong[3].min()) / (label[3].max() - label[3].min())
        assert 1.2 - 1e-4 <= float(scale) <= 1.8 + 1e-4  # RandScaleIntensityd multiplies by 1 + factor


def test_alignment_check_detects_a_flip_of_one_view() -> None:
    """Negative control: the alignment check of the test above fails when one view alone is flipped."""
    item = coordinate_item()
    flipped = RandFlipd("image_strong", prob=1.0, spatial_axis=0)
    out = Compose([*weak_strong_views(spatial=[], weak=[], strong=[]).transforms, flipped])(item)
    assert affine_residual(torch.as_tensor(out["label"]), torch.as_tensor(out["image"])) < 1e-6
    assert affine_residual(torch.as_tensor(out["label"]), torch.as_tensor(out["image_strong"])) > 1.0


def test_strong_view_differs_and_copy_is_independent() -> None:
    views = weak_strong_views([], [], [RandGaussianNoised("image_strong", prob=1.0, std=0.5, sample_std=False)])
    item = coordinate_item()
    out = views(item)
    assert out["image_strong"] is not out["image"]
    assert torch.equal(torch.as_tensor(out["image"]), item["label"])  # the weak view is untouched
    assert float((torch.as_tensor(out["image_strong"]) - item["label"]).abs().max()) > 0.1


def test_custom_keys_and_nested_chains() -> None:
    views = weak_strong_views(
        spatial=Compose([RandFlipd(["ct", "seg"], prob=1.0, spatial_axis=1)]),
        weak=OneOf([ScaleIntensityd("ct", minv=0.0, maxv=1.0)]),
        strong=[OneOf([RandSimulateLowResolutiond("ct_aug", prob=1.0, zoom_range=(0.5, 0.5))])],
        image_key="ct",
        strong_key="ct_aug",
    )
    item = coordinate_item()
    out = views({"ct": item["image"], "seg": item["label"]})
    assert sorted(out) == ["ct", "ct_aug", "seg"]
    assert out["ct"].shape == out["ct_aug"].shape == out["seg"].shape == (4, *SHAPE)
    expected_y = torch.arange(SHAPE[1] - 1, -1, -1, dtype=torch.float32)
    assert torch.equal(torch.as_tensor(out["seg"][1, 0, :, 0]), expected_y)  # flipped along y


@pytest.mark.parametrize(
    "weak, strong, match",
    [
        ([RandFlipd("image", prob=1.0)], [], "weak must hold intensity transforms only.*RandFlipd"),
        ([], [RandSpatialCropd("image_strong", (4, 4, 4))], "strong must hold intensity.*RandSpatialCropd"),
        ([], [OneOf([RandRotate90d("image_strong")])], "strong must hold intensity.*RandRotate90d"),
        ([RandGaussianNoised(["image", "image_strong"])], [], "weak transforms must not act on 'image_strong'"),
        ([], [RandGaussianNoised("image")], "strong transforms must not act on 'image'"),
    ],
)
def test_misaligning_chains_are_refused(weak: list, strong: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        weak_strong_views([], weak, strong)


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="strong_key must differ from image_key, got 'image'"):
        weak_strong_views([], [], [], strong_key="image")
    with pytest.raises(TypeError, match="strong_key must be a str, got int"):
        weak_strong_views([], [], [], strong_key=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"spatial\[1\] must be a callable transform, got int"):
        weak_strong_views([RandFlipd("image"), 5], [], [])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="strong must be a sequence of transforms"):
        weak_strong_views([], [], "noise")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="weak must be a sequence of transforms"):
        check_intensity_chain("weak", 3, "image_strong")  # type: ignore[arg-type]
