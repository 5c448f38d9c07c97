from __future__ import annotations

import csv
import json
import sys

import pytest
import torch

from monai_jdt.metrics import CalibrationMetric, plot_reliability, reliability_table
from monai_jdt.metrics.functional import calibration_statistics


def _case():
    probs = (torch.randn(2, 3, 12, 12, dtype=torch.float64) * 2).softmax(1)
    labels = torch.randint(0, 3, (2, 1, 12, 12))
    return probs, labels


def test_png_json_csv_are_written_and_valid(tmp_path) -> None:
    image = pytest.importorskip("matplotlib.image")
    probs, labels = _case()
    out = plot_reliability(probs, tmp_path / "sub" / "rel.png", labels, n_bins=10, dpi=50)
    assert out == {
        "png": tmp_path / "sub" / "rel.png",
        "json": tmp_path / "sub" / "rel.json",
        "csv": tmp_path / "sub" / "rel.csv",
    }
    data = out["png"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(out["png"])
    assert pixels.shape[0] == 6 * 50 and pixels.shape[1] == 5 * 50  # figsize (5, 6) inches at dpi 50
    table = json.loads(out["json"].read_text())
    expected = reliability_table(calibration_statistics(probs, labels, 10))
    assert table["ece"] == pytest.approx(expected["ece"]) and len(table["bins"]) == 10
    with out["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["count"]) for r in rows] == [b["count"] for b in expected["bins"]]
    empty = [r for r, b in zip(rows, expected["bins"]) if b["count"] == 0]
    assert all(r["accuracy"] == "" for r in empty)  # empty bins: blank, never NaN


def test_sources_metric_statistics_and_classwise(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    probs, labels = _case()
    metric = CalibrationMetric(n_bins=8, boundary_kernel_size=3)
    metric(probs, labels)
    for which in ("top", "band", 2):
        out = plot_reliability(metric, tmp_path / f"m_{which}.png", which=which, title="t", dpi=40)
        assert json.loads(out["json"].read_text()) == json.loads(json.dumps(metric.reliability(which)))
    stats = metric.statistics()
    assert reliability_table(stats) == metric.reliability()


def test_errors(tmp_path, monkeypatch) -> None:
    probs, labels = _case()
    with pytest.raises(ValueError, match=r"\.png"):
        plot_reliability(probs, tmp_path / "rel.jpg", labels)
    with pytest.raises(ValueError, match="target is required"):
        plot_reliability(probs, tmp_path / "rel.png")
    with pytest.raises(TypeError, match="source must be"):
        plot_reliability([1, 2], tmp_path / "rel.png")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r"pip install monai_jdt\[plot\]"):
        plot_reliability(probs, tmp_path / "rel.png", labels)
    assert not (tmp_path / "rel.json").exists()
