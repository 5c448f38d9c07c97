"""``EvaluationReport``: the evaluation files of the bundles (per-case and summary CSV, reliability diagram).

Attached to the evaluator of ``evaluate.json``, it collects per case (the decollated ``pred`` probabilities and
``label`` reference of each iteration):

* fine-grained Dice (arXiv 2310.19252): per case the Dice of each foreground class present in the reference;
  overall the dataset / image / class levels and their worst-5 % versions
  (:class:`~monai_jdt.metrics.FineGrainedOverlapMetric`);
* the QUBIQ thresholded soft Dice of the foreground (``qubiq=True``), thresholds 0.1, ..., 0.9;
* the Dice of label regions (``regions``, e.g. the KiTS regions kidney+masses, masses, tumour) on the argmax;
* calibration (:class:`~monai_jdt.metrics.CalibrationMetric`): top-label ECE, boundary ECE (within
  ``boundary_kernel_size // 2`` voxels of a reference label change), class-wise SCE, MCE, Brier, NLL; overall
  at dataset level (pooled bins) and, for ECE, also at image level;

and at the end writes, under ``output_dir``, atomically (temporary file + rename):
``metrics_per_case.csv``, ``metrics_summary.csv`` (``metric,value`` rows), ``metrics_summary.json``,
``reliability.png`` (+ ``reliability.json``/``.csv``, the numbers of the diagram).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from monai_jdt.metrics import CalibrationMetric, FineGrainedOverlapMetric, ThresholdedSoftDiceMetric, plot_reliability
from monai_jdt.metrics.functional import calibration_errors_from_statistics, fine_grained_from_counts
from monai_jdt.metrics.functional.calibration_stats import CalibrationStatistics
from monai_jdt.utils.atomic import TMP_PREFIX, atomic_write_text
from monai_jdt.utils.checks import check_bool, check_positive_int

__all__ = ["EvaluationReport", "atomic_write_text", "region_dice"]

_CALIBRATION = ("ece", "bece", "sce", "mce", "brier", "nll")


def region_dice(pred_labels: torch.Tensor, ref_labels: torch.Tensor, values: Sequence[int]) -> float | None:
    """Dice of the region "label in ``values``" between two label maps; ``None`` when both regions are empty.

    Example:
        >>> region_dice(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 2, 2, 1]), (1, 2))
        1.0
        >>> region_dice(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 2, 2, 1]), (2,))
        0.5
    """
    ids = torch.as_tensor(list(values), device=pred_labels.device)
    p, g = torch.isin(pred_labels, ids), torch.isin(ref_labels, ids.to(ref_labels.device))
    total = int(p.sum()) + int(g.sum())
    return None if total == 0 else 2.0 * int((p & g).sum()) / total


def _fmt(value: Any) -> str:
    return "" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_fmt(v) for v in row] for row in rows])
    return buffer.getvalue()


def _image_statistics(stats: CalibrationStatistics, i: int) -> CalibrationStatistics:
    band = None if stats.band is None else stats.band[i : i + 1]
    return CalibrationStatistics(
        stats.top[i : i + 1], stats.classwise[i : i + 1], stats.totals[i : i + 1], band, stats.class_ids
    )


class EvaluationReport:
    """Evaluator handler that writes the per-case and summary metrics and a reliability diagram.

    Args:
        output_dir: folder of the files (created).
        class_names: name of each class index (``["background", "liver", "tumour"]``); used in column names.
        qubiq: also compute the QUBIQ thresholded soft Dice of channel 1 (soft references).
        regions: ``{name: label values}`` for region Dice on the argmax (e.g. ``monai_jdt.data.KITS_REGIONS``).
        n_bins: calibration bins.
        boundary_kernel_size: window of the boundary band of BECE, in voxels (odd).
        q: worst-case percentage of the fine-grained Dice.
        include_background: count class 0 in the Dice figures.
        plot: write the reliability diagram (needs matplotlib).
        pred_key, label_key, case_key: keys of the prediction and reference in the output, and of the case name
            in the batch (fallback: the image file name).

    Example:
        >>> import tempfile
        >>> out = tempfile.mkdtemp()
        >>> report = EvaluationReport(out, ["background", "fg"], plot=False)
        >>> engine = Engine(lambda e, b: b)
        >>> report.attach(engine)
        >>> pred = torch.tensor([[[0.9, 0.2, 0.4]], [[0.1, 0.8, 0.6]]])
        >>> _ = engine.run([[{"pred": pred, "label": torch.tensor([[[0, 1, 1]]]), "case_id": "c1"}]])
        >>> report.summary["dice_image"], sorted(p.name for p in Path(out).iterdir())
        (1.0, ['metrics_per_case.csv', 'metrics_summary.csv', 'metrics_summary.json'])
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        *,
        qubiq: bool = False,
        regions: Mapping[str, Sequence[int]] | None = None,
        n_bins: int = 15,
        boundary_kernel_size: int = 3,
        q: float = 5.0,
        include_background: bool = False,
        plot: bool = True,
        pred_key: str = "pred",
        label_key: str = "label",
        case_key: str = "case_id",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = [str(c) for c in class_names]
        if len(self.class_names) < 2:
            raise ValueError(f"class_names must name at least 2 classes, got {self.class_names}")
        self.qubiq = check_bool("qubiq", qubiq)
        self.regions = {str(k): tuple(int(v) for v in vals) for k, vals in (regions or {}).items()}
        self.plot = check_bool("plot", plot)
        self.pred_key, self.label_key, self.case_key = pred_key, label_key, case_key
        self.include_background = check_bool("include_background", include_background)
        self.overlap = FineGrainedOverlapMetric(kind="dice", q=q, include_background=include_background)
        self.calibration = CalibrationMetric(
            n_bins=check_positive_int("n_bins", n_bins), boundary_kernel_size=boundary_kernel_size
        )
        self.soft_dice = ThresholdedSoftDiceMetric(include_background=False) if self.qubiq else None
        self.logger = logging.getLogger(__name__)
        self.reset()

    def reset(self) -> None:
        self.cases: list[str] = []
        self.region_values: list[dict[str, float | None]] = []
        self.overlap.reset()
        self.calibration.reset()
        if self.soft_dice is not None:
            self.soft_dice.reset()
        self.summary: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []
        self.files: dict[str, Path] = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self.reset())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def _case_name(self, engine: Engine, item: Mapping, index: int) -> str:
        batch = engine.state.batch
        source = batch[index] if isinstance(batch, list) and index < len(batch) else item
        name = source.get(self.case_key) if isinstance(source, Mapping) else None
        if name is None:
            meta = getattr(item.get(self.pred_key), "meta", {}) or {}
            name = Path(str(meta.get("filename_or_obj", f"case_{len(self.cases)}"))).name
        return str(name)

    def collect(self, engine: Engine) -> None:
        """Add the cases of the last iteration (``engine.state.output``: decollated dicts)."""
        output = engine.state.output
        items = output if isinstance(output, list) else [output]
        for i, item in enumerate(items):
            pred = torch.as_tensor(item[self.pred_key]).detach().float()[None]
            label = torch.as_tensor(item[self.label_key]).detach()[None]
            self.overlap(pred, label)
            self.calibration(pred, label)
            if self.soft_dice is not None:
                self.soft_dice(pred, label)
            if self.regions:
                pred_lab = pred.argmax(1)
                ref_lab = label[:, 0] if label.shape[1] == 1 else label.argmax(1)
                self.region_values.append({n: region_dice(pred_lab, ref_lab, v) for n, v in self.regions.items()})
            self.cases.append(self._case_name(engine, item, i))

    def _fg_names(self, class_ids: Sequence[int]) -> dict[int, str]:
        return {c: self.class_names[c] if c < len(self.class_names) else str(c) for c in class_ids}

    def _per_case(self) -> list[dict[str, Any]]:
        counts = self.overlap.get_buffer()
        ids = list(self.overlap._class_ids or [])
        stats = self.calibration.statistics()
        soft = self.soft_dice.get_buffer() if self.soft_dice is not None else None
        rows = []
        for i, case in enumerate(self.cases):
            row: dict[str, Any] = {"case_id": case}
            per_class = fine_grained_from_counts(counts[i : i + 1], ids)["per_class"]
            row.update({f"dice_{n}": per_class[c]["class"] for c, n in self._fg_names(ids).items()})
            if soft is not None:
                row["qubiq_soft_dice"] = float(soft[i].mean())
            if self.regions:
                row.update({f"dice_region_{n}": v for n, v in self.region_values[i].items()})
            cal = calibration_errors_from_statistics(_image_statistics(stats, i), "image")
            row.update({k: cal.get(k) for k in _CALIBRATION})
            rows.append(row)
        return rows

    def _summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        dice = self.overlap.aggregate()
        out: dict[str, Any] = {"n_cases": len(rows)}
        out.update({f"dice_{k}": dice[k] for k in ("dataset", "image", "class", "image_worst", "class_worst")})
        for c, name in self._fg_names(list(dice["per_class"])).items():
            out[f"dice_dataset_{name}"] = dice["per_class"][c]["dataset"]
            out[f"dice_class_{name}"] = dice["per_class"][c]["class"]
        if self.soft_dice is not None:
            out["qubiq_soft_dice"] = float(self.soft_dice.aggregate())
        for name in self.regions:
            vals = [r[f"dice_region_{name}"] for r in rows if r[f"dice_region_{name}"] is not None]
            out[f"dice_region_{name}"] = sum(vals) / len(vals) if vals else None
        cal = self.calibration.aggregate(level="dataset")
        out.update({k: cal.get(k) for k in _CALIBRATION})
        out["ece_image"] = self.calibration.aggregate(level="image")["ece"]
        return out

    def _plot(self) -> None:
        with tempfile.TemporaryDirectory(dir=self.output_dir, prefix=f"{TMP_PREFIX}plot-") as tmp:
            written = plot_reliability(self.calibration, Path(tmp) / "reliability.png")
            for kind, path in written.items():
                target = self.output_dir / path.name
                os.replace(path, target)
                self.files[f"reliability_{kind}"] = target

    def write(self, engine: Engine | None = None) -> dict[str, Any]:
        """Compute the figures of all collected cases and write the files; returns the summary."""
        if not self.cases:
            raise ValueError("EvaluationReport: no case was evaluated (empty validation set?)")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.rows = self._per_case()
        self.summary = self._summary(self.rows)
        header = list(self.rows[0])
        per_case = _csv_text(header, [[r[h] for h in header] for r in self.rows])
        self.files["per_case"] = atomic_write_text(self.output_dir / "metrics_per_case.csv", per_case)
        summary = _csv_text(["metric", "value"], list(self.summary.items()))
        self.files["summary"] = atomic_write_text(self.output_dir / "metrics_summary.csv", summary)
        self.files["summary_json"] = atomic_write_text(
            self.output_dir / "metrics_summary.json", json.dumps(self.summary, indent=2) + "\n"
        )
        if self.plot:
            self._plot()
        lines = ", ".join(f"{k}={_fmt(v)}" for k, v in self.summary.items())
        self.logger.info(f"evaluation of {len(self.rows)} cases written to {self.output_dir}: {lines}")
        return self.summary
