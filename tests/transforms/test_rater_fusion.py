"""Tests of FuseRaters / FuseRatersd (and the Rand* variants): input forms, metadata, reproducibility, errors."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.data import CacheDataset, MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Randomizable
from monai.utils import set_determinism

from monai_jdt.transforms import (
    FuseRaters,
    FuseRatersD,
    FuseRatersd,
    FuseRatersDict,
    RandFuseRaters,
    RandFuseRatersd,
    fuse_raters,
)
from monai_jdt.utils import ShapeError


def _raters(n: int = 3, shape: tuple[int, ...] = (6, 5, 4)) -> list[np.ndarray]:
    """Binary raters: boxes shifted by one voxel each."""
    out = []
    for i in range(n):
        a = np.zeros(shape, np.uint8)
        a[i : i + 3, 1:4, 1:3] = 1
        out.append(a[None])
    return out


def _meta(a: np.ndarray, spacing: tuple[float, ...] = (0.8, 0.8, 2.5), name: str = "r.nii.gz") -> MetaTensor:
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    return MetaTensor(torch.from_numpy(a), affine=affine, meta={"filename_or_obj": name})


def test_array_sequence_and_stacked_forms_agree() -> None:
    raters = _raters()
    expected_fg = np.mean([r[0] for r in raters], axis=0)
    from_list = FuseRaters("mean")([_meta(r, name=f"r{i}") for i, r in enumerate(raters)])
    from_stack = FuseRaters("mean")(_meta(np.concatenate(raters)))
    channel_last = FuseRaters("mean", rater_dim=-1)(np.moveaxis(np.concatenate(raters), 0, -1))
    for out in (from_list, from_stack):
        assert isinstance(out, MetaTensor) and out.shape == (2, 6, 5, 4)
        np.testing.assert_allclose(out[1].numpy(), expected_fg, atol=1e-6)
        np.testing.assert_allclose(out[0].numpy(), 1 - expected_fg, atol=1e-6)
    np.testing.assert_allclose(torch.as_tensor(channel_last)[1].numpy(), np.moveaxis(expected_fg, 0, 0), atol=1e-6)
    assert from_list.meta["filename_or_obj"] == "r0"
    torch.testing.assert_close(from_list.affine, _meta(raters[0]).affine)


def test_foreground_only_and_dtype() -> None:
    raters = np.concatenate(_raters())
    out = FuseRaters("mean", foreground_only=True, dtype=torch.float64)(raters)
    assert out.shape == (1, 6, 5, 4) and out.dtype == torch.float64
    np.testing.assert_allclose(torch.as_tensor(out)[0].numpy(), raters.mean(0))


def test_multiclass_methods_on_hand_made_raters() -> None:
    raters = torch.tensor([[[0, 1, 2, 2]], [[0, 1, 1, 2]], [[1, 1, 0, 2]]])  # (R=3, H=1, W=4)
    mean = FuseRaters("mean", num_classes=3)(raters)
    torch.testing.assert_close(mean[:, 0, 2].as_tensor(), torch.tensor([1 / 3, 1 / 3, 1 / 3]))
    majority = FuseRaters("majority", num_classes=3)(raters)
    assert majority.argmax(0)[0].tolist() == [0, 1, 0, 2]  # 3-way tie in column 2 -> class 0
    weighted = FuseRaters("weighted", num_classes=3)(raters)
    torch.testing.assert_close(weighted.as_tensor(), fuse_raters(raters, "weighted", 3))


def test_staple_transform_equals_simpleitk() -> None:
    rng = np.random.default_rng(3)
    truth = np.zeros((10, 9, 5), np.uint8)
    truth[2:8, 2:7, 1:4] = 1
    raters = [np.where(rng.random(truth.shape) < 0.1, 1 - truth, truth).astype(np.uint8) for _ in range(3)]
    direct = sitk.GetArrayFromImage(sitk.STAPLE([sitk.GetImageFromArray(r) for r in raters], 1.0, 1.0))
    d = FuseRatersd(["a", "b", "c"], method="staple")({k: r[None] for k, r in zip("abc", raters)})
    np.testing.assert_allclose(d["label"][1].numpy(), direct, atol=1e-6)


def test_dict_multi_key_and_single_stacked_key() -> None:
    raters = _raters()
    data = {f"rater{i}": _meta(r, name=f"rater{i}") for i, r in enumerate(raters)}
    out = FuseRatersd(list(data), output_key="label", method="mean")(data)
    assert set(out) == {*data, "label"}
    stacked = FuseRatersd("raters", output_key="raters")({"raters": _meta(np.concatenate(raters))})
    torch.testing.assert_close(out["label"].as_tensor(), stacked["raters"].as_tensor())
    assert out["label"].meta["filename_or_obj"] == "rater0"
    assert FuseRatersD is FuseRatersd and FuseRatersDict is FuseRatersd


def test_dict_allow_missing_keys() -> None:
    raters = _raters(2)
    t = FuseRatersd(["a", "b", "c"], allow_missing_keys=True)
    out = t({"a": raters[0], "b": raters[1]})
    np.testing.assert_allclose(out["label"][1].numpy(), (raters[0][0] + raters[1][0]) / 2)
    assert t({"x": 1}) == {"x": 1}
    with pytest.raises(KeyError):
        FuseRatersd(["a", "c"])({"a": raters[0]})


def test_random_is_randomizable_and_reproducible() -> None:
    raters = np.concatenate(_raters(4))
    t = FuseRaters("random")
    assert isinstance(t, RandFuseRaters) and isinstance(t, Randomizable)
    assert not isinstance(FuseRaters("mean"), Randomizable)  # deterministic methods stay cacheable

    def drawn(out: object) -> int:
        fg = torch.as_tensor(out)[1].numpy()
        return next(i for i, r in enumerate(raters) if np.array_equal(fg, r))

    picks = []
    for _ in range(2):
        t.set_random_state(seed=123)
        picks.append([drawn(t(raters)) for _ in range(12)])
    assert picks[0] == picks[1]
    assert len(set(picks[0])) > 1
    last = picks[1][-1]
    assert drawn(t(raters, randomize=False)) == last


def test_random_dict_in_compose_follows_set_determinism() -> None:
    raters = _raters(3)
    for i, r in enumerate(raters):  # make the raters distinguishable by size
        r[0, :i, :, 3] = 1
    data = {f"r{i}": r for i, r in enumerate(raters)}
    t = FuseRatersd(list(data), method="random")
    assert isinstance(t, RandFuseRatersd) and isinstance(t, Randomizable)

    def draws() -> list[int]:
        pipeline = Compose([FuseRatersd(list(data), method="random")])
        pipeline.set_random_state(seed=7)
        return [int(pipeline(data)["label"][1].sum()) for _ in range(10)]

    assert draws() == draws()
    set_determinism(seed=1)
    try:
        first = [int(FuseRatersd(list(data), method="random")(data)["label"][1].sum()) for _ in range(3)]
    finally:
        set_determinism(None)
    assert all(v in {int(r.sum()) for r in raters} for v in first)


def test_cache_dataset_caches_deterministic_fusion_only() -> None:
    data = [{"a": r} for r in _raters(2)]
    mean_ds = CacheDataset(data, Compose([FuseRatersd("a", method="mean")]), progress=False)
    assert mean_ds._cache[0] is not None and "label" in mean_ds._cache[0]
    rand_ds = CacheDataset(data, Compose([FuseRatersd("a", method="random")]), progress=False)
    assert "label" not in rand_ds._cache[0]


def test_copy_and_pickle_keep_the_class() -> None:
    for t in (FuseRaters("random", num_classes=3), FuseRatersd("a", method="random"), FuseRaters("weighted")):
        for clone in (copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
            assert type(clone) is type(t) and clone.__dict__.keys() == t.__dict__.keys()


def test_compose_with_load_imaged_stacked_rater_files(tmp_path: Path) -> None:
    files = []
    for i, r in enumerate(_raters()):
        path = tmp_path / f"rater{i}.nii.gz"
        nib.save(nib.Nifti1Image(r[0], np.diag([0.8, 0.8, 2.5, 1.0])), str(path))
        files.append(str(path))
    pipeline = Compose([LoadImaged("raters"), EnsureChannelFirstd("raters"), FuseRatersd("raters", method="mean")])
    out = pipeline({"raters": files})["label"]
    np.testing.assert_allclose(out[1].numpy(), np.mean([r[0] for r in _raters()], axis=0), atol=1e-6)
    np.testing.assert_allclose(out.affine.numpy(), np.diag([0.8, 0.8, 2.5, 1.0]), atol=1e-6)
    per_key = Compose(
        [
            LoadImaged(["r0", "r1", "r2"]),
            EnsureChannelFirstd(["r0", "r1", "r2"]),
            FuseRatersd(["r0", "r1", "r2"], method="weighted"),
        ]
    )({f"r{i}": f for i, f in enumerate(files)})
    assert per_key["label"].shape == (2, 6, 5, 4)
    torch.testing.assert_close(per_key["label"].affine, out.affine)


def test_errors_name_both_keys() -> None:
    a, b = _raters(2)
    with pytest.raises(ShapeError, match=r"raters 'left' and 'right' must have the same spatial shape, got"):
        FuseRatersd(["left", "right"])({"left": a, "right": b[:, :5]})
    with pytest.raises(
        ValueError,
        match=r"raters 'left' and 'right' must be on the same voxel grid .*spacing "
        r"\(0\.8, 0\.8, 2\.5\) vs \(0\.8, 0\.8, 5\.0\)",
    ):
        FuseRatersd(["left", "right"])({"left": _meta(a), "right": _meta(b, spacing=(0.8, 0.8, 5.0))})
    shifted = _meta(b)
    shifted.affine[0, 3] = 3.0
    with pytest.raises(ValueError, match="raters 'left' and 'right' must be on the same voxel grid"):
        FuseRatersd(["left", "right"])({"left": _meta(a), "right": shifted})


def test_errors_values_outside_label_set() -> None:
    a, b = _raters(2)
    b = b * 255
    with pytest.raises(ValueError, match=r"rater 'right' holds values \[255\] outside the label set \{0, ..., 1\}"):
        FuseRatersd(["left", "right"])({"left": a, "right": b})
    stacked = np.concatenate([a, a, a * 3])
    with pytest.raises(ValueError, match=r"rater 'raters\[2\]' holds values \[3\] outside the label set \{0, ..., 2\}"):
        FuseRatersd("raters", num_classes=3)({"raters": stacked})
    with pytest.raises(ValueError, match=r"rater 'rater 1' holds values \[0.5\]"):
        FuseRaters()([a, a * 0.5])
    with pytest.raises(ValueError, match=r"holds values \[-1\]"):
        FuseRaters()([a.astype(np.int64) - 1])
    with_nan = a.astype(np.float32)
    with_nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"rater 'rater 0' holds values \[nan\]"):
        FuseRaters()([with_nan, a])
    c, d = _raters(2)
    as_bool = FuseRaters()([c.astype(bool), d.astype(bool)])  # bool masks are valid binary raters
    np.testing.assert_allclose(as_bool[1].numpy(), (c[0] + d[0]) / 2)


def test_errors_arguments_and_counts() -> None:
    with pytest.raises(ValueError, match="method must be one of 'mean', 'weighted', 'majority', 'random', 'staple'"):
        FuseRaters("median")
    with pytest.raises(ValueError, match="method must be one of"):
        FuseRatersd("a", method="vote")
    with pytest.raises(ValueError, match="foreground_only=True needs binary raters"):
        FuseRaters(num_classes=3, foreground_only=True)
    with pytest.raises(ValueError, match="RandFuseRaters only supports method='random'"):
        RandFuseRaters("mean")
    with pytest.raises(TypeError, match="output_key must be a str"):
        FuseRatersd("a", output_key=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="FuseRaters needs at least 1 rater, got 0"):
        FuseRaters()([])
    with pytest.raises(ValueError, match="FuseRaters needs at least 1 rater, got 0"):
        FuseRaters()(np.zeros((0, 4, 4)))
    with pytest.raises(ShapeError, match=r"rater 'raters' must be channel-first"):
        FuseRaters()(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="rater_dim=3 is out of range"):
        FuseRaters(rater_dim=3)(np.zeros((2, 4, 4)))
