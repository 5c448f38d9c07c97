from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.metrics import CalibrationErrorMetric
from scipy import ndimage

from monai_jdt.metrics import CalibrationMetric, calibration_errors, calibration_statistics
from monai_jdt.metrics.functional import bin_index, reliability_bins
from monai_jdt.utils import ShapeError


# ----------------------------------------------------------------------------------------------- references
def _bins_torchmetrics_style(values: np.ndarray, n_bins: int) -> np.ndarray:
    """torchmetrics ``_binning_bucketize``: bucketize(right=True) - 1 on linspace edges, clamped to the last bin."""
    edges = np.linspace(0, 1, n_bins + 1)
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, n_bins - 1)


def _binned_error(conf: np.ndarray, acc: np.ndarray, n_bins: int) -> tuple[float, float]:
    idx = _bins_torchmetrics_style(conf, n_bins)
    ece, mce = 0.0, 0.0
    for k in range(n_bins):
        sel = idx == k
        if sel.any():
            gap = abs(acc[sel].mean() - conf[sel].mean())
            ece += sel.mean() * gap
            mce = max(mce, gap)
    return ece, mce


def _numpy_reference(p: np.ndarray, y: np.ndarray, n_bins: int, classes=None) -> dict:
    """``p``, ``y``: (C, V) probabilities and one-hot/soft reference of the counted voxels of one pool."""
    pred = p.argmax(0)
    conf = p.max(0)
    acc = y[pred, np.arange(p.shape[1])]
    ece, mce = _binned_error(conf, acc, n_bins)
    classes = range(p.shape[0]) if classes is None else classes
    sce = np.mean([_binned_error(p[c], y[c], n_bins)[0] for c in classes])
    brier = np.mean(np.sum((p - y) ** 2, axis=0))  # multi-class Brier score
    nll = np.mean(-np.sum(y * np.log(np.clip(p, np.finfo(p.dtype).eps, None)), axis=0))  # sklearn log_loss style
    return {"ece": ece, "mce": mce, "sce": sce, "brier": brier, "nll": nll}


def _flat(p: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    c = p.shape[1]
    return p.movedim(1, 0).reshape(c, -1).numpy(), y.movedim(1, 0).reshape(c, -1).numpy()


def _onehot(labels: torch.Tensor, c: int, dtype=torch.float64) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.long(), c).movedim(-1, 1).to(dtype)


def _random_case(b=3, c=3, shape=(7, 6, 5), temperature=2.0):
    probs = (torch.randn(b, c, *shape, dtype=torch.float64) * temperature).softmax(1)
    labels = torch.randint(0, c, (b, 1, *shape))
    return probs, labels


# ------------------------------------------------------------------------------------------- hand computed
def test_hand_computed_all_figures() -> None:
    p1 = torch.tensor([0.2, 0.4, 0.7, 0.9], dtype=torch.float64)
    probs = torch.stack([1 - p1, p1]).reshape(1, 2, 1, 4)
    labels = torch.tensor([[[[0, 1, 1, 0]]]])
    r = calibration_errors(probs, labels, n_bins=4)
    # conf 0.8 0.6 0.7 0.9 ; acc 1 0 1 0 ; bin [.5,.75): gap |1 - 1.3| ; bin [.75, 1]: |1 - 1.7|
    assert r["ece"] == pytest.approx((0.3 + 0.7) / 4)
    assert r["mce"] == pytest.approx(0.35)
    assert r["sce"] == pytest.approx(0.5)  # each class: (0.2 + 0.6 + 0.3 + 0.9) / 4
    assert r["sce_per_class"] == {0: pytest.approx(0.5), 1: pytest.approx(0.5)}
    assert r["brier"] == pytest.approx((0.08 + 0.72 + 0.18 + 1.62) / 4)
    assert r["nll"] == pytest.approx(-math.log(0.8 * 0.4 * 0.7 * 0.1) / 4)
    assert "bece" not in r and r["n_images"] == 1


def test_soft_reference_accuracy_is_reference_probability_of_predicted_class() -> None:
    probs = torch.tensor([[[[0.3]], [[0.7]]]], dtype=torch.float64)
    soft = torch.tensor([[[[0.4]], [[0.6]]]], dtype=torch.float64)
    r = calibration_errors(probs, soft, n_bins=10)
    assert r["ece"] == pytest.approx(0.1) and r["mce"] == pytest.approx(0.1)
    assert r["brier"] == pytest.approx(2 * 0.1**2)
    assert r["nll"] == pytest.approx(-(0.4 * math.log(0.3) + 0.6 * math.log(0.7)))


def test_bin_edges_one_falls_in_last_bin() -> None:
    assert bin_index(torch.tensor([0.0, 0.5, 0.75, 1.0, -1e-7, 1 + 1e-7]), 4).tolist() == [0, 2, 3, 3, 0, 3]
    # confidences exactly 1.0 and 0.5 with a single foreground channel: p = 1 -> conf 1 ; p = 0.5 -> conf 0.5
    s = calibration_statistics(torch.tensor([[[1.0, 0.5]]]), torch.tensor([[[1.0, 1.0]]]), n_bins=2)
    assert s.top[0, 0].tolist() == [0.0, 2.0]
    np.testing.assert_array_equal(
        bin_index(torch.linspace(0, 1, 101, dtype=torch.float64), 7).numpy(),
        _bins_torchmetrics_style(np.linspace(0, 1, 101), 7),
    )


def test_single_foreground_channel_equals_two_class_form() -> None:
    p = torch.rand(2, 1, 5, 5, dtype=torch.float64)
    y = (torch.rand(2, 1, 5, 5) > 0.5).double()
    one = calibration_errors(p, y, n_bins=6)
    two = calibration_errors(torch.cat([1 - p, p], 1), torch.cat([1 - y, y], 1), n_bins=6)
    assert one == two


# ------------------------------------------------------------------------------- independent references
@pytest.mark.parametrize("n_bins", [1, 7, 15])
def test_dataset_level_matches_numpy_reference(n_bins: int) -> None:
    probs, labels = _random_case()
    r = calibration_errors(probs, labels, n_bins=n_bins)
    expected = _numpy_reference(*_flat(probs, _onehot(labels[:, 0], 3)), n_bins)
    for key, value in expected.items():
        assert r[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_image_level_is_mean_of_per_image_values() -> None:
    probs, labels = _random_case(b=4)
    r = calibration_errors(probs, labels, n_bins=10, level="image", include_background=False)
    per_image = [
        _numpy_reference(*_flat(probs[i : i + 1], _onehot(labels[i : i + 1, 0], 3)), 10, classes=[1, 2])
        for i in range(4)
    ]
    for key in ("ece", "mce", "sce", "brier", "nll"):
        assert r[key] == pytest.approx(np.mean([d[key] for d in per_image]), rel=1e-9), key
    assert sorted(r["sce_per_class"]) == [1, 2]


def test_soft_reference_matches_numpy_reference() -> None:
    probs, _ = _random_case(b=2)
    soft = torch.rand(2, 3, 7, 6, 5, dtype=torch.float64).softmax(1)
    r = calibration_errors(probs, soft, n_bins=12)
    expected = _numpy_reference(*_flat(probs, soft), 12)
    for key, value in expected.items():
        assert r[key] == pytest.approx(value, rel=1e-9), key


def test_classwise_per_image_equals_monai_calibration_error_metric() -> None:
    probs, labels = _random_case(b=3, c=4, shape=(9, 8, 7))
    onehot = _onehot(labels[:, 0], 4)
    monai = CalibrationErrorMetric(num_bins=15, metric_reduction="none")(probs.float(), onehot.float())
    for i in range(3):
        r = calibration_errors(probs[i : i + 1], labels[i : i + 1], n_bins=15)
        assert [r["sce_per_class"][c] for c in range(4)] == pytest.approx(monai[i].tolist(), rel=1e-4, abs=1e-6)
    image = calibration_errors(probs, labels, level="image", include_background=False)
    monai_nb = CalibrationErrorMetric(num_bins=15, include_background=False, metric_reduction="mean_batch")
    monai_nb(probs.float(), onehot.float())
    assert list(image["sce_per_class"].values()) == pytest.approx(monai_nb.aggregate().tolist(), rel=1e-4)
    assert image["sce"] == pytest.approx(float(monai_nb.aggregate().mean()), rel=1e-4)


def test_float32_sums_are_accurate_on_a_large_volume() -> None:
    probs, labels = _random_case(b=1, c=3, shape=(64, 64, 48))
    r32 = calibration_errors(probs.float(), labels)
    r64 = calibration_errors(probs, labels)
    for key in ("ece", "mce", "sce", "brier", "nll"):
        assert r32[key] == pytest.approx(r64[key], rel=1e-5, abs=1e-6), key


# ------------------------------------------------------------------------------------------ masks, band
def test_ignore_index_and_mask_equal_evaluating_the_kept_voxels() -> None:
    probs, labels = _random_case(b=1, shape=(10, 10))
    labels[0, 0, :3] = 9
    r = calibration_errors(probs, labels, ignore_index=9, n_bins=8)
    keep = (labels[0, 0] != 9).reshape(-1).numpy()
    p, y = _flat(probs, _onehot(torch.where(labels == 9, 0, labels)[:, 0], 3))
    expected = _numpy_reference(p[:, keep], y[:, keep], 8)
    for key, value in expected.items():
        assert r[key] == pytest.approx(value, rel=1e-9), key
    masked = calibration_errors(probs, torch.where(labels == 9, 0, labels), mask=labels != 9, n_bins=8)
    assert masked == r


def _band_reference(labels: np.ndarray, size) -> np.ndarray:
    return ndimage.maximum_filter(labels, size=size, mode="nearest") != ndimage.minimum_filter(
        labels, size=size, mode="nearest"
    )


def test_boundary_ece_in_voxels_and_mm() -> None:
    probs, labels = _random_case(b=2, c=3, shape=(12, 12, 6))
    labels[:] = 0
    labels[0, 0, 3:9, 3:9, 1:5] = 1
    labels[1, 0, 2:6, 4:10, :] = 2
    lab = labels[:, 0].numpy()
    p, y = _flat(probs, _onehot(labels[:, 0], 3))
    for kwargs, size in (
        ({"boundary_kernel_size": 3}, (3, 3, 3)),
        ({"boundary_radius_mm": 2.0, "spacing": (1.0, 1.0, 3.0)}, (5, 5, 1)),
    ):
        band = np.stack([_band_reference(lab[i], size) for i in range(2)]).reshape(-1)
        pred, conf = p.argmax(0), p.max(0)
        acc = y[pred, np.arange(p.shape[1])]
        r = calibration_errors(probs, labels, n_bins=10, **kwargs)
        assert r["bece"] == pytest.approx(_binned_error(conf[band], acc[band], 10)[0], rel=1e-9)
        # an explicit band gives the same number
        explicit = torch.from_numpy(band.reshape(2, 1, 12, 12, 6))
        assert calibration_errors(probs, labels, n_bins=10, band=explicit)["bece"] == r["bece"]


def test_boundary_ece_is_none_without_a_boundary() -> None:
    probs, labels = _random_case(b=1, shape=(6, 6))
    labels[:] = 1
    r = calibration_errors(probs, labels, boundary_kernel_size=3, level="image")
    assert r["bece"] is None and r["ece"] is not None


def test_nothing_counted_gives_none_never_nan() -> None:
    probs, labels = _random_case(b=2, shape=(4, 4))
    r = calibration_errors(probs, torch.full_like(labels, 5), ignore_index=5, level="image")
    assert all(r[k] is None for k in ("ece", "mce", "sce", "brier", "nll")) and r["n_images"] == 0
    # an image with no counted voxel is excluded from the image level, not counted as 0
    labels[1] = 5
    one = calibration_errors(probs, labels, ignore_index=5, level="image")
    assert one["n_images"] == 1 and one["ece"] == calibration_errors(probs[:1], labels[:1], level="image")["ece"]


# ------------------------------------------------------------------------------------ metric accumulation
def test_batchwise_accumulation_equals_one_shot_and_state_is_bounded() -> None:
    probs, labels = _random_case(b=6, shape=(8, 8, 8))
    labels[:, :, :4] = 0
    metric = CalibrationMetric(n_bins=15, boundary_kernel_size=3, ignore_index=7)
    metric(probs[:2], labels[:2])
    metric(list(probs[2:5]), list(labels[2:5]))
    metric(probs[5:], labels[5:])
    for level in ("dataset", "image"):
        one_shot = calibration_errors(probs, labels, boundary_kernel_size=3, ignore_index=7, level=level)
        got = metric.aggregate(level=level)
        for key, value in one_shot.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-12), (level, key)
            else:
                assert got[key] == value, (level, key)
    # stored state: one row of 3 * 15 * (3 classes + top + band) + 3 float64 per image, whatever the volume size
    assert metric.get_buffer().shape == (6, 3 * 15 * 5 + 3)
    big = CalibrationMetric(n_bins=15, boundary_kernel_size=3)
    big(*_random_case(b=6, shape=(16, 16, 16)))
    assert big.get_buffer().nbytes == metric.get_buffer().nbytes == 6 * 228 * 8


def test_metric_reads_spacing_from_metatensor_targets() -> None:
    probs, labels = _random_case(b=2, shape=(10, 10, 6))
    labels[:] = 0
    labels[:, :, 2:8, 3:7, 1:5] = 1
    affine = torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0], dtype=torch.float64))
    items = [MetaTensor(labels[i], affine=affine) for i in range(2)]
    metric = CalibrationMetric(boundary_radius_mm=2.0)
    metric(list(probs), items)
    expected = calibration_errors(probs, labels, boundary_radius_mm=2.0, spacing=(1.0, 1.0, 3.0))
    assert metric.aggregate()["bece"] == pytest.approx(expected["bece"], rel=1e-12)
    with pytest.raises(ValueError, match="needs the voxel spacing"):
        CalibrationMetric(boundary_radius_mm=2.0)(probs, labels)


def test_reliability_table() -> None:
    p1 = torch.tensor([0.2, 0.4, 0.7, 0.9], dtype=torch.float64)
    probs = torch.stack([1 - p1, p1]).reshape(1, 2, 1, 4)
    stats = calibration_statistics(probs, torch.tensor([[[[0, 1, 1, 0]]]]), n_bins=4)
    table = reliability_bins(stats)
    assert table["ece"] == pytest.approx(0.25) and table["mce"] == pytest.approx(0.35)
    assert [b["count"] for b in table["bins"]] == [0, 0, 2, 2]
    assert table["bins"][0]["accuracy"] is None and table["bins"][2]["confidence"] == pytest.approx(0.65)
    assert table["bins"][3]["gap"] == pytest.approx(0.5 - 0.85)
    assert reliability_bins(stats, 1)["ece"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="which must be"):
        reliability_bins(stats, 5)
    with pytest.raises(ValueError, match="boundary band"):
        reliability_bins(stats, "band")


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("probs", "target", "kwargs", "error", "match"),
    [
        (torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 4), {"n_bins": 0}, ValueError, "n_bins must be an integer >= 1"),
        (torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 4), {"n_bins": 2.5}, TypeError, "n_bins must be an integer"),
        (torch.full((1, 2, 4), 0.6), torch.zeros(1, 1, 4), {}, ValueError, "probs channels must sum to 1"),
        (torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 5), {}, ShapeError, "index map"),
        (torch.full((1, 2, 4), 0.5), torch.zeros(1, 3, 4), {}, ShapeError, "input's shape"),
        (torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 4), {"level": "voxel"}, ValueError, "level must be one of"),
        (torch.full((1, 2, 4, 4), 0.5), torch.zeros(1, 1, 4, 4), {"spacing": (1, 1)}, ValueError, "spacing is only"),
        (torch.full((1, 2, 4, 4), 0.5), torch.zeros(1, 1, 4, 4), {"boundary_kernel_size": 2}, ValueError, "odd"),
        (
            torch.full((1, 2, 4, 4), 0.5),
            torch.zeros(1, 1, 4, 4),
            {"boundary_kernel_size": 3, "band": torch.ones(1, 1, 4, 4, dtype=torch.bool)},
            ValueError,
            "not both",
        ),
        (torch.full((1, 2, 4, 4), 0.5), torch.zeros(1, 1, 4, 4), {"band": torch.ones(1, 1, 4, 5)}, ShapeError, "band"),
    ],
)
def test_errors(probs, target, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        calibration_errors(probs, target, **kwargs)


def test_metric_option_errors() -> None:
    with pytest.raises(ValueError, match="n_bins must be an integer >= 1, got 0"):
        CalibrationMetric(n_bins=0)
    with pytest.raises(ValueError, match="not both"):
        CalibrationMetric(boundary_kernel_size=3, boundary_radius_mm=1.0)
    with pytest.raises(ValueError, match="no data"):
        CalibrationMetric().aggregate()
    metric = CalibrationMetric()
    metric(torch.full((1, 2, 4), 0.5), torch.zeros(1, 1, 4))
    with pytest.raises(ShapeError, match="same classes"):
        metric(torch.full((1, 3, 4), 1 / 3), torch.zeros(1, 1, 4))
