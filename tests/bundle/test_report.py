"""EvaluationReport: per-case and summary figures against NumPy computations written here, and its files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine

from monai_jdt.bundle import EvaluationReport, region_dice
from monai_jdt.data import KITS_REGIONS


def _np_dice(p: np.ndarray, g: np.ndarray) -> float:
    return 2.0 * np.logical_and(p, g).sum() / (p.sum() + g.sum())


def _np_ece(probs: np.ndarray, label: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE of one image: equal-width bins [k/n, (k+1)/n), the last one closed."""
    conf = probs.max(0).ravel()
    acc = (probs.argmax(0) == label).ravel().astype(float)
    idx = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    return sum(abs(acc[idx == k].sum() - conf[idx == k].sum()) for k in range(n_bins)) / conf.size


def _cases(rng: np.random.Generator, n: int, classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    cases = []
    for _ in range(n):
        label = rng.integers(0, classes, size=(6, 7, 5))
        logits = rng.normal(size=(classes, 6, 7, 5)) + 2.5 * np.eye(classes)[label].transpose(3, 0, 1, 2)
        probs = np.exp(logits) / np.exp(logits).sum(0, keepdims=True)
        cases.append((probs.astype(np.float32), label))
    return cases


def _run(report: EvaluationReport, items: list[dict]) -> None:
    engine = Engine(lambda e, batch: batch)  # the "output" is the batch: decollated dicts
    report.attach(engine)
    engine.run([[item] for item in items])


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_ct_report_matches_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cases = _cases(rng, 3, 4)
    names = ["background", "kidney", "tumor", "cyst"]
    report = EvaluationReport(tmp_path, names, regions=KITS_REGIONS, boundary_kernel_size=3)
    items = [
        {"pred": torch.from_numpy(p), "label": torch.from_numpy(g)[None].float(), "case_id": f"c{i}"}
        for i, (p, g) in enumerate(cases)
    ]
    _run(report, items)
    rows = _read_csv(tmp_path / "metrics_per_case.csv")
    assert [r["case_id"] for r in rows] == ["c0", "c1", "c2"]
    for row, (p, g) in zip(rows, cases):
        pred = p.argmax(0)
        for c, name in enumerate(names[1:], start=1):
            assert float(row[f"dice_{name}"]) == pytest.approx(_np_dice(pred == c, g == c), rel=1e-5)
        for region, values in KITS_REGIONS.items():
            expected = _np_dice(np.isin(pred, values), np.isin(g, values))
            assert float(row[f"dice_region_{region}"]) == pytest.approx(expected, rel=1e-5)
        assert float(row["ece"]) == pytest.approx(_np_ece(p, g), abs=1e-6)
    summary = report.summary
    all_pred = np.concatenate([p.argmax(0).ravel() for p, _ in cases])
    all_ref = np.concatenate([g.ravel() for _, g in cases])
    for c, name in enumerate(names[1:], start=1):  # dataset level: counts pooled over the cases
        assert summary[f"dice_dataset_{name}"] == pytest.approx(_np_dice(all_pred == c, all_ref == c), rel=1e-5)
    per_image = [np.mean([_np_dice(p.argmax(0) == c, g == c) for c in (1, 2, 3)]) for p, g in cases]
    assert summary["dice_image"] == pytest.approx(np.mean(per_image), rel=1e-5)
    assert summary["dice_image_worst"] == pytest.approx(min(per_image), rel=1e-5)  # 5 % of 3 images: the worst
    assert summary["ece_image"] == pytest.approx(np.mean([_np_ece(p, g) for p, g in cases]), abs=1e-6)
    written = {r["metric"]: r["value"] for r in _read_csv(tmp_path / "metrics_summary.csv")}
    assert float(written["dice_image"]) == pytest.approx(summary["dice_image"], rel=1e-5)
    assert json.loads((tmp_path / "metrics_summary.json").read_text())["n_cases"] == 3
    for key in ("ece", "bece", "sce", "mce", "brier", "nll"):
        assert math.isfinite(float(written[key]))
    assert (tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")) == []


def test_qubiq_soft_dice_matches_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    items, expected = [], []
    for i in range(2):
        fg = rng.random((8, 8)).astype(np.float32)
        ref = rng.integers(0, 4, size=(8, 8)) / 3.0  # the mean of 3 raters
        values = []
        for t in np.arange(1, 10) / 10:
            p, g = fg > t, ref > t
            values.append(1.0 if p.sum() + g.sum() == 0 else _np_dice(p, g))
        expected.append(np.mean(values))
        pred = torch.from_numpy(np.stack([1 - fg, fg]))
        label = torch.from_numpy(np.stack([1 - ref, ref])).float()
        items.append({"pred": pred, "label": label, "case_id": f"case{i}"})
    report = EvaluationReport(tmp_path, ["background", "fg"], qubiq=True, plot=False)
    _run(report, items)
    rows = _read_csv(tmp_path / "metrics_per_case.csv")
    assert [float(r["qubiq_soft_dice"]) for r in rows] == pytest.approx(expected, rel=1e-5)
    assert report.summary["qubiq_soft_dice"] == pytest.approx(np.mean(expected), rel=1e-5)
    assert not (tmp_path / "reliability.png").exists()


def test_report_is_reset_per_run_and_empty_run_is_an_error(tmp_path: Path) -> None:
    report = EvaluationReport(tmp_path, ["bg", "fg"], plot=False)
    engine = Engine(lambda e, batch: batch)
    report.attach(engine)
    item = {"pred": torch.tensor([[[0.9, 0.2]], [[0.1, 0.8]]]), "label": torch.tensor([[[0.0, 1.0]]])}
    engine.run([[item], [item]])
    engine.run([[item]])
    assert report.summary["n_cases"] == 1  # not 3: each run starts afresh
    with pytest.raises(ValueError, match="no case was evaluated"):
        EvaluationReport(tmp_path, ["bg", "fg"]).write()
    with pytest.raises(ValueError, match="at least 2 classes"):
        EvaluationReport(tmp_path, ["bg"])


def test_region_dice_undefined_when_both_empty() -> None:
    assert region_dice(torch.tensor([0, 0]), torch.tensor([0, 0]), (1,)) is None
    assert region_dice(torch.tensor([1, 0]), torch.tensor([0, 0]), (1,)) == 0.0
