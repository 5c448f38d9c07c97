from __future__ import annotations

import pytest
import torch

import monai_jdt.metrics.functional.calibration_binning as binning
from monai_jdt.metrics.functional import calibration_statistics, hard_index, top_label


def test_top_label_matches_torch_max_including_ties() -> None:
    p = torch.rand(3, 5, 200)
    p[0, :, :10] = 0.2  # exact ties over all channels -> class 0
    p[1, 2, :10] = p[1, 4, :10] = 2.0  # tie between classes 2 and 4 -> class 2
    y = torch.rand(3, 5, 200)
    conf, pred, acc = top_label(p, y)
    ref_conf, ref_pred = p.max(dim=1)
    assert torch.equal(conf, ref_conf) and torch.equal(pred.long(), ref_pred)
    assert torch.equal(acc, y.gather(1, ref_pred.unsqueeze(1))[:, 0])


def test_hard_index_detects_one_hot_only() -> None:
    labels = torch.randint(0, 4, (2, 50))
    onehot = torch.nn.functional.one_hot(labels, 4).movedim(-1, 1).float()
    assert torch.equal(hard_index(onehot, None), labels.unsqueeze(1))
    soft = onehot.clone()
    soft[0, :, 3] = torch.tensor([0.5, 0.5, 0.0, 0.0])
    assert hard_index(soft, None) is None
    valid = torch.ones(2, 50, dtype=torch.bool)
    valid[0, 3] = False  # the soft voxel is not counted: the rest is one-hot
    assert torch.equal(hard_index(soft, valid)[valid.unsqueeze(1)], labels.unsqueeze(1)[valid.unsqueeze(1)])
    zero = onehot.clone()
    zero[1, :, 7] = 0  # an all-zero (ignored-style) vector is not one-hot
    assert hard_index(zero, None) is None


def test_one_hot_and_soft_paths_agree(monkeypatch) -> None:
    probs = (torch.randn(2, 3, 9, 7, dtype=torch.float64) * 2).softmax(1)
    labels = torch.randint(0, 3, (2, 1, 9, 7))
    onehot = torch.nn.functional.one_hot(labels[:, 0], 3).movedim(-1, 1).double()
    a = calibration_statistics(probs, labels, 10)
    b = calibration_statistics(probs, onehot, 10)
    monkeypatch.setattr(binning, "hard_index", lambda y, valid: None)  # force the soft (dense) path
    c = calibration_statistics(probs, onehot, 10)
    for x, y in ((a, b), (a, c)):
        torch.testing.assert_close(x.top, y.top, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(x.classwise, y.classwise, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(x.totals, y.totals, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunking_does_not_change_the_statistics(monkeypatch, chunk: int) -> None:
    probs = (torch.randn(3, 4, 6, 5, 4, dtype=torch.float64) * 2).softmax(1)
    labels = torch.randint(0, 4, (3, 1, 6, 5, 4))
    soft = torch.rand(3, 4, 6, 5, 4, dtype=torch.float64).softmax(1)
    mask = torch.rand(3, 1, 6, 5, 4) > 0.2
    band = torch.rand(3, 1, 6, 5, 4) > 0.5
    whole = [calibration_statistics(probs, t, 9, mask=mask, band=band) for t in (labels, soft)]
    monkeypatch.setattr(binning, "CHUNK_ELEMENTS", chunk)
    parts = [calibration_statistics(probs, t, 9, mask=mask, band=band) for t in (labels, soft)]
    for x, y in zip(whole, parts):
        for name in ("top", "classwise", "totals", "band"):
            torch.testing.assert_close(getattr(x, name), getattr(y, name), rtol=1e-12, atol=1e-12)


def test_invalid_values_in_a_later_chunk_are_reported(monkeypatch) -> None:
    monkeypatch.setattr(binning, "CHUNK_ELEMENTS", 8)
    probs = torch.full((1, 2, 40), 0.5)
    probs[0, 0, 35] = 0.7
    with pytest.raises(ValueError, match="sum to 1"):
        calibration_statistics(probs, torch.zeros(1, 1, 40, dtype=torch.long))
    soft = torch.full((1, 2, 40), 0.5)
    soft[0, 1, 30] = 1.5
    with pytest.raises(ValueError, match=r"target probabilities must be in \[0, 1\]"):
        calibration_statistics(torch.full((1, 2, 40), 0.5), soft)
