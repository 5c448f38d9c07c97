"""Outputs of the study: the raw per-run CSV, mean and standard deviation per arm, markdown tables and a plot."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["paired_differences", "read_csv", "summarise", "write_csv", "write_markdown", "write_plot"]

GROUP = ("part", "task", "labels", "loss", "model")

#: (column title, metric key) of the markdown tables, per part.
COLUMNS = {
    "multi-rater": [
        ("Dice^I vs maj", "dice_image_majority"),
        ("Dice^D vs maj", "dice_dataset_majority"),
        ("soft Dice vs mean", "soft_dice_mean"),
        ("ECE vs maj", "ece_majority"),
        ("ECE vs mean", "ece_mean"),
        ("BECE vs maj", "bece_majority"),
        ("BECE vs mean", "bece_mean"),
    ],
    "single-rater": [
        ("Dice^I", "dice_image_gt"),
        ("Dice^D", "dice_dataset_gt"),
        ("soft Dice", "soft_dice_gt"),
        ("ECE", "ece_gt"),
        ("BECE", "bece_gt"),
        ("Brier", "brier_gt"),
    ],
}
COLUMNS["semi-supervised"] = COLUMNS["single-rater"]

#: panels of the plot: (title, metric key per part; None leaves the part out of the panel).
PANELS = [
    ("Dice^I (%) vs majority / ground truth", {"multi-rater": "dice_image_majority", "default": "dice_image_gt"}),
    ("QUBIQ soft Dice (%) vs rater mean", {"multi-rater": "soft_dice_mean", "default": None}),
    ("ECE (%) vs majority / ground truth", {"multi-rater": "ece_majority", "default": "ece_gt"}),
    ("ECE (%) vs rater mean", {"multi-rater": "ece_mean", "default": None}),
    ("BECE (%) vs majority / ground truth", {"multi-rater": "bece_majority", "default": "bece_gt"}),
    ("BECE (%) vs rater mean", {"multi-rater": "bece_mean", "default": None}),
]


LOSS_COLOURS = {"ce": "tab:blue", "ce+sdl": "tab:green", "ce+dml": "tab:orange"}


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """All rows, columns in first-seen order (numbers with 4 decimals)."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    seen = {k: float(i) for i, k in enumerate(fields)}
    seen["n_unlabelled"] = seen.get("n_train", 0.0) + 0.5
    seen.update(cpu_s=1e9, wall_s=1e9 + 1)
    fields.sort(key=seen.__getitem__)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})


_INTEGER_COLUMNS = ("seed", "n_train", "n_unlabelled", "iterations")


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows written by :func:`write_csv`, with numbers as int / float and empty cells left out."""
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            row: dict[str, Any] = {}
            for key, text in raw.items():
                if text == "":
                    continue
                if key in GROUP:
                    row[key] = text
                else:
                    row[key] = int(text) if key in _INTEGER_COLUMNS else float(text)
            rows.append(row)
    return rows


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    mean = sum(finite) / len(finite)
    if len(finite) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per arm (part, task, labels, loss, model): ``n`` seeds and ``(mean, sample std)`` of every numeric column."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in GROUP)].append(row)
    out = []
    for key, members in groups.items():
        numeric = [k for k, v in members[0].items() if isinstance(v, float) and k not in GROUP]
        entry: dict[str, Any] = dict(zip(GROUP, key))
        entry["n"] = len(members)
        entry["stats"] = {k: _mean_std([float(m[k]) for m in members]) for k in numeric}
        out.append(entry)
    return out


def _cell(stat: tuple[float, float] | None) -> str:
    if stat is None or math.isnan(stat[0]):
        return "n/a"
    mean, std = stat
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _arm(entry: dict[str, Any]) -> str:
    if entry["part"] == "semi-supervised":
        who = "" if entry["labels"] == "supervised" else f" ({entry['model'].replace('_', ' ')})"
        return f"{entry['labels']}{who}"
    return entry["labels"]


def _table(entries: list[dict[str, Any]], part: str) -> list[str]:
    cols = COLUMNS[part]
    lines = ["| labels | loss | " + " | ".join(t for t, _ in cols) + " |", "|---|---|" + "---:|" * len(cols)]
    for e in entries:
        cells = [_cell(e["stats"].get(k)) for _, k in cols]
        lines.append(f"| {_arm(e)} | {e['loss'].upper()} | " + " | ".join(cells) + " |")
    return lines


#: metrics of the paired-difference tables; True where higher is better.
PAIRED_METRICS = {
    "multi-rater": [
        ("Dice^I vs maj", "dice_image_majority", True),
        ("soft Dice vs mean", "soft_dice_mean", True),
        ("ECE vs maj", "ece_majority", False),
        ("ECE vs mean", "ece_mean", False),
        ("BECE vs maj", "bece_majority", False),
        ("BECE vs mean", "bece_mean", False),
    ],
    "single-rater": [
        ("Dice^I", "dice_image_gt", True),
        ("Dice^D", "dice_dataset_gt", True),
        ("ECE", "ece_gt", False),
        ("BECE", "bece_gt", False),
    ],
}
PAIRED_METRICS["semi-supervised"] = PAIRED_METRICS["single-rater"]


def _contrasts(part: str) -> list[tuple[str, tuple[str, str, str], tuple[str, str, str]]]:
    """(title, arm a, arm b) with arms as (labels, loss, model); the tables show a - b."""
    s = "student"
    if part == "multi-rater":
        out = [
            (f"mean − {b} ({lo.upper()})", ("mean", lo, s), (b, lo, s))
            for b in ("majority", "random")
            for lo in ("ce", "ce+sdl", "ce+dml")
        ]
        return out + [
            (f"CE+DML − CE+SDL ({src})", (src, "ce+dml", s), (src, "ce+sdl", s))
            for src in ("majority", "random", "staple", "mean")
        ]
    if part == "single-rater":
        out = [
            (f"{a.upper()} − hard ({lo.upper()})", (a, lo, s), ("hard", lo, s))
            for lo in ("ce", "ce+dml")
            for a in ("ls", "bls", "kd")
        ]
        return out + [(f"CE+DML − CE ({a})", (a, "ce+dml", s), (a, "ce", s)) for a in ("hard", "ls", "bls", "kd")]
    return [
        (
            f"mean teacher ({m.replace('_', ' ')}) − supervised only",
            ("mean-teacher", "ce+dml", m),
            ("supervised", "ce+dml", s),
        )
        for m in ("student", "ema_teacher")
    ]


def paired_differences(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per (part, task): seed-paired differences ``a - b`` of the contrasts of :func:`_contrasts`.

    Each entry: ``{"title", "n", "cells": {metric: (mean, sample std, seeds where a is better)}}``; contrasts
    whose arms were not run are left out.
    """
    index = {(r["part"], r["task"], r["labels"], r["loss"], r["model"], r["seed"]): r for r in rows}
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for part, task in dict.fromkeys((r["part"], r["task"]) for r in rows):
        seeds = sorted({r["seed"] for r in rows if r["part"] == part and r["task"] == task})
        entries = []
        for title, a, b in _contrasts(part):
            pairs = [(index.get((part, task, *a, sd)), index.get((part, task, *b, sd))) for sd in seeds]
            pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
            if not pairs:
                continue
            cells = {}
            for _, key, higher in PAIRED_METRICS[part]:
                diffs = [float(x[key]) - float(y[key]) for x, y in pairs]
                better = sum(1 for d in diffs if (d > 0.005 if higher else d < -0.005))
                cells[key] = (*_mean_std(diffs), better)
            entries.append({"title": title, "n": len(pairs), "cells": cells})
        out[(part, task)] = entries
    return out


def _paired_table(entries: list[dict[str, Any]], part: str) -> list[str]:
    cols = PAIRED_METRICS[part]
    lines = ["| a − b | " + " | ".join(t for t, _, _ in cols) + " |", "|---|" + "---:|" * len(cols)]
    for e in entries:
        cells = []
        for _, key, _ in cols:
            mean, std, better = e["cells"][key]
            spread = "" if math.isnan(std) else f" ± {std:.2f}"
            cells.append(f"{mean:+.2f}{spread} ({better}/{e['n']})")
        lines.append(f"| {e['title']} | " + " | ".join(cells) + " |")
    return lines


def write_markdown(
    summary: list[dict[str, Any]],
    path: Path,
    header: Sequence[str],
    paired: dict[tuple[str, str], list[dict[str, Any]]] | None = None,
) -> None:
    """One table per part and task (mean ± sample standard deviation over the seeds), then the paired differences."""
    lines = list(header)
    for part in ("multi-rater", "single-rater", "semi-supervised"):
        tasks = sorted({e["task"] for e in summary if e["part"] == part})
        for task in tasks:
            entries = [e for e in summary if e["part"] == part and e["task"] == task]
            seeds = sorted({e["n"] for e in entries})
            lines += ["", f"### {part}: {task} (n = {', '.join(map(str, seeds))} seeds)", ""]
            lines += _table(entries, part)
    if paired:
        lines += [
            "",
            "## Paired differences",
            "",
            "Difference a − b between two arms trained with the same seed (same initial weights, samples and "
            "augmentations), mean ± sample standard deviation over the seeds, and in brackets the number of "
            "seeds in which a is better (higher Dice, lower ECE/BECE; differences below 0.005 count as ties).",
        ]
        for (part, task), entries in paired.items():
            if entries:
                lines += ["", f"### {part}: {task}", ""] + _paired_table(entries, part)
    path.write_text("\n".join(lines) + "\n")


def write_plot(summary: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars (mean, error bar = sample std) per part/task (rows) and metric (columns)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = list(dict.fromkeys((e["part"], e["task"]) for e in summary))
    fig = Figure(figsize=(4.2 * len(PANELS), 3.0 * len(rows)), constrained_layout=True)
    axes = fig.subplots(len(rows), len(PANELS), squeeze=False)
    for r, (part, task) in enumerate(rows):
        entries = [e for e in summary if e["part"] == part and e["task"] == task]
        groups = list(dict.fromkeys(_arm(e) for e in entries))
        losses = list(dict.fromkeys(e["loss"] for e in entries))
        width = 0.8 / len(losses)
        for c, (title, keys) in enumerate(PANELS):
            ax = axes[r][c]
            key = keys.get(part, keys["default"])
            if key is None:
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"{part}: no rater mean", ha="center", va="center", fontsize=8, color="grey")
                continue
            for i, loss in enumerate(losses):
                xs, ms, ss = [], [], []
                for g, group in enumerate(groups):
                    match = [e for e in entries if _arm(e) == group and e["loss"] == loss]
                    if match:
                        m, s = match[0]["stats"][key]
                        xs.append(g + (i - (len(losses) - 1) / 2) * width)
                        ms.append(m)
                        ss.append(0.0 if math.isnan(s) else s)
                ax.bar(xs, ms, width, yerr=ss, capsize=2, label=loss.upper(), color=LOSS_COLOURS.get(loss))
            ax.set_xticks(range(len(groups)), groups, rotation=20, fontsize=7)
            ax.set_title(f"{part} / {task}\n{title}", fontsize=8)
            finite = [e["stats"][key][0] for e in entries if not math.isnan(e["stats"][key][0])]
            if finite and title.startswith(("Dice", "QUBIQ")):
                ax.set_ylim(max(0.0, min(finite) - 5.0), 100.0)
            if c == 0:
                ax.legend(fontsize=7)
    FigureCanvasAgg(fig).print_png(str(path))
