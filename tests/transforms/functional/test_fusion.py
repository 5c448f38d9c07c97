"""Tests of the rater-fusion functional forms on hand-made raters and against SimpleITK called directly."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from monai_jdt.transforms.functional import fuse_raters, rater_agreement_weights


def _raters_2d() -> torch.Tensor:
    """Three binary raters on a 4x4 image: r0 and r1 agree on a 2x2 square, r2 marks a disjoint square."""
    r = torch.zeros(3, 4, 4, dtype=torch.uint8)
    r[0, :2, :2] = 1
    r[1, :2, :2] = 1
    r[1, 2, 0] = 1
    r[2, 2:, 2:] = 1
    return r


def test_mean_hand_computed() -> None:
    out = fuse_raters(_raters_2d(), "mean")
    assert out.shape == (2, 4, 4)
    assert out[1, 0, 0] == pytest.approx(2 / 3) and out[1, 2, 0] == pytest.approx(1 / 3)
    assert out[1, 3, 3] == pytest.approx(1 / 3) and out[1, 0, 3] == 0
    torch.testing.assert_close(out.sum(0), torch.ones(4, 4))


def test_majority_with_ties_goes_to_lowest_class() -> None:
    raters = torch.tensor([[0, 1, 1, 2, 0], [1, 1, 2, 2, 1], [2, 0, 0, 1, 2]])  # 3-way tie in cols 0 and 4
    out = fuse_raters(raters, "majority", num_classes=3)
    assert out.argmax(0).tolist() == [0, 1, 0, 2, 0]
    two = torch.tensor([[0, 1, 1], [1, 0, 1]])  # binary 1-1 tie -> background
    assert fuse_raters(two, "majority").argmax(0).tolist() == [0, 0, 1]
    torch.testing.assert_close(out.sum(0), torch.ones(5))


def test_weighted_downweights_the_outlier() -> None:
    r = _raters_2d()
    w = rater_agreement_weights(r, 2)
    # by hand: r0 vs mean(r1, r2): sum(a*m) = 2, |a| = 4, |m| = (5 + 4) / 2 -> 2 * 2 / (4 + 4.5)
    #          r1 vs mean(r0, r2): sum(a*m) = 2, |a| = 5, |m| = 4             -> 2 * 2 / 9
    #          r2 vs mean(r0, r1): overlap 0                                  -> 0
    torch.testing.assert_close(w, torch.tensor([4 / 8.5, 4 / 9, 0.0], dtype=torch.float64))
    out = fuse_raters(r, "weighted")
    expected_fg = (w[0] * r[0] + w[1] * r[1] + w[2] * r[2]) / w.sum()
    torch.testing.assert_close(out[1], expected_fg.float())
    assert out[1, 3, 3] == 0 < fuse_raters(r, "mean")[1, 3, 3]  # the outlier's square vanishes
    torch.testing.assert_close(out.sum(0), torch.ones(4, 4))


def test_weighted_special_cases() -> None:
    one = torch.tensor([[0, 1, 1]])
    torch.testing.assert_close(rater_agreement_weights(one, 2), torch.ones(1, dtype=torch.float64))
    two = torch.tensor([[0, 1, 1], [1, 1, 0]])  # two raters: equal weights -> weighted == mean
    torch.testing.assert_close(fuse_raters(two, "weighted"), fuse_raters(two, "mean"))
    empty = torch.zeros(3, 4, dtype=torch.long)  # nobody marks foreground: full agreement
    torch.testing.assert_close(rater_agreement_weights(empty, 2), torch.ones(3, dtype=torch.float64))
    disjoint = torch.tensor([[1, 0], [0, 1]])  # no overlap at all: falls back to mean
    torch.testing.assert_close(fuse_raters(disjoint, "weighted"), fuse_raters(disjoint, "mean"))


def test_weighted_multiclass_averages_present_foreground_classes() -> None:
    r = torch.tensor([[1, 1, 2, 0], [1, 1, 2, 2], [1, 0, 0, 0]])
    w = rater_agreement_weights(r, 4)  # class 3 is absent everywhere: not averaged
    # rater 0: class 1: a=[1,1,0,0], m=[1,.5,0,0] -> 2*1.5/(2+1.5); class 2: a=[0,0,1,0], m=[0,0,.5,.5] -> 2*.5/(1+1)
    # rater 2: class 1: a=[1,0,0,0], m=[1,1,0,0] -> 2*1/(1+2); class 2: a=0, m=[0,0,1,.5] -> 0
    expected0 = (3 / 3.5 + 0.5) / 2
    expected2 = (2 / 3 + 0.0) / 2
    assert float(w[0]) == pytest.approx(expected0) and float(w[2]) == pytest.approx(expected2)


def test_random_returns_the_chosen_rater() -> None:
    r = _raters_2d()
    for i in range(3):
        out = fuse_raters(r, "random", rater_index=i)
        assert torch.equal(out[1], r[i].float()) and torch.equal(out[0], 1 - r[i].float())
    with pytest.raises(ValueError, match=r"rater_index must be in \[0, 3\) for method 'random', got 3"):
        fuse_raters(r, "random", rater_index=3)


def test_staple_binary_equals_simpleitk() -> None:
    rng = np.random.default_rng(0)
    truth = np.zeros((12, 12, 6), np.uint8)
    truth[3:9, 2:10, 1:5] = 1
    raters = np.stack([np.where(rng.random(truth.shape) < 0.1, 1 - truth, truth) for _ in range(4)])
    direct = sitk.GetArrayFromImage(sitk.STAPLE([sitk.GetImageFromArray(a) for a in raters], 1.0, 1.0))
    out = fuse_raters(torch.from_numpy(raters), "staple", dtype=torch.float64)
    np.testing.assert_allclose(out[1].numpy(), direct, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[0].numpy(), 1 - direct, rtol=0, atol=1e-12)
    assert ((direct > 0.1) & (direct < 0.9)).any()  # a real probability map, not a vote


def test_staple_multiclass_equals_simpleitk_one_hot() -> None:
    rng = np.random.default_rng(1)
    truth = np.zeros((10, 10), np.uint8)
    truth[2:8, 2:5] = 1
    truth[2:8, 5:9] = 2
    raters = np.stack(
        [np.where(rng.random(truth.shape) < 0.15, rng.integers(0, 3, truth.shape), truth) for _ in range(3)]
    )
    raters = raters.astype(np.uint8)
    direct = sitk.GetArrayFromImage(sitk.MultiLabelSTAPLE([sitk.GetImageFromArray(a) for a in raters], 3))
    out = fuse_raters(torch.from_numpy(raters), "staple", num_classes=3).numpy()
    decided = direct < 3
    assert decided.any()
    np.testing.assert_array_equal(out.argmax(0)[decided], direct[decided])
    np.testing.assert_array_equal(out.max(0)[decided], 1.0)
    mean = fuse_raters(torch.from_numpy(raters), "mean", num_classes=3).numpy()
    np.testing.assert_allclose(out[:, ~decided], mean[:, ~decided])


def test_staple_undefined_falls_back_to_mean() -> None:
    empty = torch.zeros(2, 5, 5, dtype=torch.uint8)  # SimpleITK STAPLE returns NaN here
    out = fuse_raters(empty, "staple")
    assert not torch.isnan(out).any()
    torch.testing.assert_close(out, fuse_raters(empty, "mean"))


def test_errors() -> None:
    with pytest.raises(ValueError, match="method must be one of 'mean', 'weighted', 'majority', 'random', 'staple'"):
        fuse_raters(_raters_2d(), "median")
    with pytest.raises(ValueError, match="fusion needs at least 1 rater, got 0"):
        fuse_raters(torch.zeros(0, 4, 4), "mean")
