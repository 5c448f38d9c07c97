from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric
from monai.metrics.utils import do_metric_reduction

import monai_jdt.metrics.functional.calibration_binning as binning
from monai_jdt.metrics import ThresholdedSoftDiceMetric, thresholded_soft_dice
from monai_jdt.utils import ShapeError


def _numpy_reference(pred: np.ndarray, ref: np.ndarray, thresholds) -> np.ndarray:
    out = np.zeros(pred.shape[:2])
    for b in range(pred.shape[0]):
        for c in range(pred.shape[1]):
            vals = []
            for t in thresholds:
                p, g = pred[b, c] > t, ref[b, c] > t
                size = p.sum() + g.sum()
                vals.append(1.0 if size == 0 else 2 * np.sum(p & g) / size)
            out[b, c] = np.mean(vals)
    return out


def test_hand_computed_three_raters() -> None:
    pred = torch.tensor([[[[0.95, 0.55, 0.15, 0.0]]]])
    ref = torch.tensor([[[[1.0, 2 / 3, 1 / 3, 0.0]]]])
    # t=.1..: P = {0,1,2} for t<.15 ; G = {0,1,2} for t < 1/3, {0,1} for t < 2/3, {0} below 1
    # t=0.1: P{0,1,2} G{0,1,2} 1 ; 0.2: P{0,1} G{0,1,2} 0.8 ; 0.3: same 0.8 ; 0.4: P{0,1} G{0,1} 1 ; 0.5: 1
    # t=0.6: P{0} G{0,1} 2/3 ; 0.7: P{0} G{0} 1 ; 0.8: 1 ; 0.9: 1
    expected = (1 + 0.8 + 0.8 + 1 + 1 + 2 / 3 + 1 + 1 + 1) / 9
    assert thresholded_soft_dice(pred, ref).item() == pytest.approx(expected, rel=1e-6)


def test_strict_threshold_and_empty_rule() -> None:
    # a rater fraction equal to the threshold is below it; both empty at a threshold -> Dice 1
    pred = torch.tensor([[[[0.5, 0.0]]]])
    ref = torch.tensor([[[[0.5, 0.0]]]])
    assert thresholded_soft_dice(pred, ref, thresholds=(0.5,)).item() == 1.0
    assert thresholded_soft_dice(torch.tensor([[[[0.6, 0.0]]]]), ref, thresholds=(0.5,)).item() == 0.0
    assert thresholded_soft_dice(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)).eq(1).all()


def test_matches_numpy_reference_and_monai_per_threshold() -> None:
    pred = torch.rand(3, 2, 9, 8, dtype=torch.float64)
    raters = torch.randint(0, 2, (5, 3, 2, 9, 8)).double()
    ref = raters.mean(0)
    thresholds = (0.1, 0.3, 0.5, 0.7, 0.9)
    out = thresholded_soft_dice(pred, ref, thresholds)
    assert out.shape == (3, 2) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), _numpy_reference(pred.numpy(), ref.numpy(), thresholds), rtol=1e-12)
    # MONAI DiceMetric(ignore_empty=False) on the binarised maps, averaged over thresholds
    dm = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    monai_mean = torch.stack([dm((pred > t).double(), (ref > t).double()) for t in thresholds]).mean(0)
    torch.testing.assert_close(out, monai_mean)


def test_index_target_include_background_and_ignore_index() -> None:
    probs = torch.tensor([[[[0.8, 0.3, 0.1]], [[0.2, 0.7, 0.9]]]])
    labels = torch.tensor([[[[0, 1, 7]]]])
    out = thresholded_soft_dice(probs, labels, include_background=False, ignore_index=7)
    # channel 1 over voxels 0, 1: pred 0.2, 0.7 ; ref 0, 1 -> thresholds <= .1: P{0,1} G{1} 2/3 ;
    # .2 <= t < .7: P{1} G{1} 1 (t=0.2: 0.2 > 0.2 is False) ; t >= .7: P{} G{1} 0
    expected = (2 / 3 + 1 + 1 + 1 + 1 + 1 + 0 + 0 + 0) / 9
    assert out.shape == (1, 1) and out.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("chunk", [1, 5])
def test_chunking_and_threshold_order_do_not_change_the_result(monkeypatch, chunk: int) -> None:
    pred = torch.rand(2, 3, 7, 5, dtype=torch.float64)
    ref = torch.rand(2, 3, 7, 5, dtype=torch.float64)
    mask = torch.rand(2, 1, 7, 5) > 0.3
    whole = thresholded_soft_dice(pred, ref, mask=mask)
    monkeypatch.setattr(binning, "CHUNK_ELEMENTS", chunk)
    torch.testing.assert_close(thresholded_soft_dice(pred, ref, mask=mask), whole, rtol=1e-12, atol=0)
    shuffled = (0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6)
    torch.testing.assert_close(thresholded_soft_dice(pred, ref, shuffled, mask=mask), whole, rtol=1e-12, atol=0)


def test_metric_accumulates_and_reduces_like_monai() -> None:
    pred = torch.rand(5, 3, 6, 6)
    ref = torch.rand(5, 3, 6, 6)
    metric = ThresholdedSoftDiceMetric()
    metric(pred[:2], ref[:2])
    metric(list(pred[2:]), list(ref[2:]))
    full = thresholded_soft_dice(pred, ref)
    torch.testing.assert_close(metric.aggregate(), full.mean().reshape(1))
    torch.testing.assert_close(metric.aggregate("mean_batch"), full.mean(0))
    torch.testing.assert_close(metric.aggregate("none"), full)
    both = ThresholdedSoftDiceMetric(get_not_nans=True)
    both(pred, ref)
    value, not_nans = both.aggregate()
    assert value.item() == pytest.approx(full.mean().item())
    assert not_nans.item() == do_metric_reduction(full, "mean")[1].item() == 5  # MONAI counts the cases


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"thresholds": ()}, ValueError, "1 to 255 values, got 0"),
        ({"thresholds": [0.5] * 256}, ValueError, "1 to 255 values, got 256"),
        ({"thresholds": (0.5, 1.0)}, ValueError, r"thresholds\[1\] must be in \[0, 1\)"),
        ({"thresholds": 0.5}, TypeError, "sequence"),
        ({"reduction": "median"}, ValueError, "reduction must be one of"),
    ],
)
def test_option_errors(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        ThresholdedSoftDiceMetric(**kwargs)


def test_input_errors() -> None:
    with pytest.raises(ValueError, match=r"pred must hold probabilities in \[0, 1\]"):
        thresholded_soft_dice(torch.full((1, 1, 4), 2.0), torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match=r"target probabilities must be in \[0, 1\]"):
        thresholded_soft_dice(torch.zeros(1, 1, 4), torch.full((1, 1, 4), 2.0))
    with pytest.raises(ShapeError):
        thresholded_soft_dice(torch.zeros(1, 2, 4), torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match="needs a target"):
        ThresholdedSoftDiceMetric()(torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="no data"):
        ThresholdedSoftDiceMetric().aggregate()
