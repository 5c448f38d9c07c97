"""Reliability diagrams: a PNG with accuracy, gap and count bars, plus the numbers as JSON and CSV.

matplotlib is an optional dependency (``pip install monai_jdt[plot]``); it is imported only when a diagram is
drawn, and only the Agg canvas is used (no pyplot, no change to the user's backend).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from monai_jdt.metrics.calibration import CalibrationMetric
from monai_jdt.metrics.functional.calibration import reliability_bins
from monai_jdt.metrics.functional.calibration_stats import CalibrationStatistics, calibration_statistics
from monai_jdt.utils.checks import check_positive_int

__all__ = ["plot_reliability", "reliability_table"]

_CSV_COLUMNS = ("lower", "upper", "count", "confidence", "accuracy", "gap")


def _import_matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "plot_reliability needs matplotlib, an optional dependency: pip install monai_jdt[plot]"
        ) from err
    return Figure, FigureCanvasAgg


def reliability_table(
    source: CalibrationMetric | CalibrationStatistics | Mapping | torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    n_bins: int = 15,
    which: str | int = "top",
    **kwargs: Any,
) -> dict[str, Any]:
    """The dataset-level reliability table of ``source``.

    See :func:`~monai_jdt.metrics.functional.calibration.reliability_bins` for its layout.

    Args:
        source: a :class:`~monai_jdt.metrics.CalibrationMetric` that has seen data, its statistics, a table
            already made by ``reliability_bins``, or a ``(B, C, *spatial)`` probability tensor (then ``target``,
            ``n_bins`` and ``kwargs`` go to ``calibration_statistics``).
        target: the reference, only with a probability tensor.
        n_bins: bins, only with a probability tensor.
        which: ``"top"``, ``"band"`` or a class id.
        kwargs: more options of ``calibration_statistics`` (``ignore_index``, ``mask``, ``band``...).

    Raises:
        TypeError: an unsupported ``source``, or a ``target`` that goes unused.
        ValueError: a probability tensor without ``target``.
    """
    if isinstance(source, torch.Tensor):
        if target is None:
            raise ValueError("target is required when source is a probability tensor")
        source = calibration_statistics(source, target, check_positive_int("n_bins", n_bins), **kwargs)
    elif target is not None:
        raise TypeError(f"target is only used with a probability tensor source, got {type(source).__name__}")
    if isinstance(source, CalibrationMetric):
        return source.reliability(which)
    if isinstance(source, CalibrationStatistics):
        return reliability_bins(source, which)
    if isinstance(source, Mapping) and "bins" in source:
        return dict(source)
    raise TypeError(
        "source must be a CalibrationMetric, CalibrationStatistics, a reliability table or a probability tensor, "
        f"got {type(source).__name__}"
    )


def _draw(table: Mapping[str, Any], title: str | None, dpi: int, path: Path) -> None:
    figure_cls, canvas_cls = _import_matplotlib()
    bins = table["bins"]
    n = len(bins)
    width = 1.0 / n
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    acc = [b["accuracy"] or 0.0 for b in bins]
    filled = [(c, b["confidence"]) for b, c in zip(bins, centres) if b["count"] > 0]
    gaps = [(b["confidence"] - b["accuracy"]) if b["count"] > 0 else 0.0 for b in bins]
    fig = figure_cls(figsize=(5, 6), dpi=dpi)
    canvas_cls(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centres, acc, width=width, edgecolor="black", color="#4878d0", label="accuracy")
    top.bar(
        centres,
        gaps,
        bottom=acc,
        width=width,
        edgecolor="#d65f5f",
        color="#d65f5f",
        alpha=0.35,
        hatch="//",
        label="gap (confidence - accuracy)",
    )
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    top.plot(
        [c for c, _ in filled], [v for _, v in filled], "o", color="#d65f5f", markersize=3, label="mean confidence"
    )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    label = [f"{k.upper()} = {table[k]:.4f}" for k in ("ece", "mce") if table.get(k) is not None]
    top.set_title(title or f"reliability ({table.get('which', 'top')}) " + ", ".join(label), fontsize=9)
    top.legend(loc="upper left", fontsize=7)
    counts = [b["count"] for b in bins]
    bottom.bar(centres, counts, width=width, edgecolor="black", color="gray")
    if max(counts, default=0) > 100 * max(min(c for c in counts if c > 0) if any(counts) else 1, 1):
        bottom.set_yscale("log")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("voxels")
    fig.tight_layout()
    fig.savefig(path, format="png")


def plot_reliability(
    source: CalibrationMetric | CalibrationStatistics | Mapping | torch.Tensor,
    path: str | Path,
    target: torch.Tensor | None = None,
    *,
    n_bins: int = 15,
    which: str | int = "top",
    title: str | None = None,
    dpi: int = 120,
    **kwargs: Any,
) -> dict[str, Path]:
    """Write a reliability diagram (PNG) and its numbers (JSON and CSV next to it).

    The upper panel shows, per equal-width confidence bin, the accuracy (mean reference probability of the
    predicted class; of class ``c`` for a class-wise diagram) as bars, the gap up to the mean confidence as
    hatched bars and the diagonal of perfect calibration; the lower panel shows the voxel count of each bin
    (log scale when counts span more than two decades). ECE and MCE are in the title.

    Args:
        source: see :func:`reliability_table`.
        path: the PNG file to write (suffix ``.png``); ``<stem>.json`` and ``<stem>.csv`` are written beside it.
            Parent folders are created.
        target: the reference, only with a probability tensor ``source``.
        n_bins: bins, only with a probability tensor ``source``.
        which: ``"top"`` (top label), ``"band"`` (boundary band) or a class id (class-wise).
        title: figure title (default: which diagram, ECE and MCE).
        dpi: resolution of the PNG.
        kwargs: more options of ``calibration_statistics`` for a tensor ``source``.

    Returns:
        ``{"png": Path, "json": Path, "csv": Path}``.

    Raises:
        ImportError: matplotlib is not installed (``pip install monai_jdt[plot]``).
        ValueError: ``path`` is not a ``.png`` file, or a bad ``which``.

    Example:
        >>> import tempfile, pathlib
        >>> probs = torch.tensor([[[[0.9, 0.3]], [[0.1, 0.7]]]])
        >>> png = pathlib.Path(tempfile.mkdtemp()) / "rel.png"
        >>> out = plot_reliability(probs, png, torch.tensor([[[[0, 0]]]]), n_bins=4)
        >>> sorted(out), out["png"].read_bytes()[:4]
        (['csv', 'json', 'png'], b'\\x89PNG')
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must name a .png file, got {str(path)!r}")
    dpi = check_positive_int("dpi", dpi)
    table = reliability_table(source, target, n_bins=n_bins, which=which, **kwargs)
    _import_matplotlib()
    path.parent.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = path.with_suffix(".json"), path.with_suffix(".csv")
    _draw(table, title, dpi, path)
    json_path.write_text(json.dumps(table, indent=2) + "\n")
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(_CSV_COLUMNS)
        for row in table["bins"]:
            writer.writerow(["" if row[c] is None else row[c] for c in _CSV_COLUMNS])
    return {"png": path, "json": json_path, "csv": csv_path}
