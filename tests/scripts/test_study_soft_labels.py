"""CI smoke test of scripts/study_soft_labels.py (``--quick``) and checks of its helpers against direct computations."""

from __future__ import annotations

import csv
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "study_soft_labels.py"
sys.path.insert(0, str(SCRIPT.parent))

from study.config import RECIPE, preset, recipe_with  # noqa: E402
from study.data import random_rater_labels  # noqa: E402
from study.jobs import HARD_SOURCES, plan  # noqa: E402
from study.report import paired_differences, read_csv, summarise, write_csv  # noqa: E402
from study.training import make_loss  # noqa: E402

PARTS = ("multi-rater", "single-rater", "semi-supervised")


def _has_mean_teacher() -> bool:
    try:
        from monai_jdt.engines import MeanTeacherTrainer  # noqa: F401
    except ImportError:
        return False
    return True


def _quick_run(out: Path) -> Path:
    cmd = [sys.executable, str(SCRIPT), "--quick", "--workers", "1", "--threads", "1", "--out", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return out


def test_quick_run_writes_finite_results_for_every_run(tmp_path: Path) -> None:
    """One ``--quick`` run (about 10-20 s on 2 cores): every output file, one finite row per run."""
    quick_run = _quick_run(tmp_path)
    for suffix in ("runs.csv", "results.md", "plot.png", "run.json"):
        path = quick_run / f"quick_{suffix}"
        assert path.is_file() and path.stat().st_size > 0, path
    assert (quick_run / "quick_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((quick_run / "quick_run.json").read_text())
    assert info["wall_s"] > 0 and info["cpu_s"] > 0 and info["preset"]["name"] == "quick"
    markdown = (quick_run / "quick_results.md").read_text()
    for title in ("### multi-rater: kidney", "### single-rater: lits"):
        assert title in markdown
    with open(quick_run / "quick_runs.csv") as f:
        rows = list(csv.DictReader(f))
    cfg = preset("quick")
    parts = PARTS if _has_mean_teacher() else PARTS[:2]
    jobs = plan(cfg, parts)
    ssl_jobs = [j for j in jobs if j.part == "semi-supervised" and j.labels == "mean-teacher"]
    assert len(rows) == len(jobs) + len(ssl_jobs)  # the mean-teacher runs also evaluate their EMA teacher
    assert {(r["part"], r["task"], r["labels"], r["loss"], int(r["seed"])) for r in rows} == {
        (j.part, j.task, j.labels, j.loss, j.seed) for j in jobs
    }
    for row in rows:
        refs = ("majority", "mean") if row["part"] == "multi-rater" else ("gt",)
        for ref in refs:
            for metric in ("dice_image", "dice_dataset", "soft_dice", "ece", "bece", "brier"):
                value = float(row[f"{metric}_{ref}"])
                assert math.isfinite(value) and 0.0 <= value <= 100.0, (row["labels"], metric, ref, value)


def test_summary_is_mean_and_sample_std_over_seeds() -> None:
    rows = [
        {"part": "p", "task": "t", "labels": "l", "loss": "ce", "model": "student", "seed": s, "ece_gt": v}
        for s, v in enumerate((1.0, 2.5, 4.0))
    ]
    (entry,) = summarise(rows)
    assert entry["n"] == 3
    mean, std = entry["stats"]["ece_gt"]
    assert mean == pytest.approx(statistics.mean([1.0, 2.5, 4.0]))
    assert std == pytest.approx(statistics.stdev([1.0, 2.5, 4.0]))


def test_random_rater_labels_pick_one_rater_per_case_reproducibly() -> None:
    gen = torch.Generator().manual_seed(0)
    raters = [(torch.rand(3, 8, 8, generator=gen) > 0.5).to(torch.uint8) for _ in range(6)]
    first, again = random_rater_labels(raters, seed=4), random_rater_labels(raters, seed=4)
    assert torch.equal(first, again)
    for case, fused in zip(raters, first):
        matches = [r for r in range(3) if torch.equal(fused[1], case[r].float())]
        assert matches, "the label must be one rater's mask"
        assert torch.equal(fused[0], 1 - fused[1])


def test_losses_follow_the_papers_mix_on_soft_targets() -> None:
    logits = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    target = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    target = torch.cat([1 - target, target], 1)
    probs = logits.softmax(1)
    ce = -(target * logits.log_softmax(1)).sum(1).mean()
    card = probs.sum((0, 2, 3)) + target.sum((0, 2, 3))  # batch-level DML per class, all classes
    diff = (probs - target).abs().sum((0, 2, 3))
    dml = (1 - (card - diff + 1e-5) / (card + 1e-5)).mean()
    sdl = (1 - (2 * (probs * target).sum((0, 2, 3)) + 1e-5) / (card + 1e-5)).mean()
    assert float(make_loss("ce", hard=False)(logits, target)) == pytest.approx(float(ce), rel=1e-5)
    assert float(make_loss("ce+dml", hard=False)(logits, target)) == pytest.approx(
        float(0.25 * ce + 0.75 * dml), rel=1e-5
    )
    assert float(make_loss("ce+sdl", hard=False)(logits, target)) == pytest.approx(
        float(0.25 * ce + 0.75 * sdl), rel=1e-5
    )
    assert "hard" in HARD_SOURCES and "mean" not in HARD_SOURCES
    with pytest.raises(ValueError, match="loss must be one of"):
        make_loss("dice", hard=True)


def test_paired_differences_are_per_seed_differences(tmp_path: Path) -> None:
    def row(labels: str, seed: int, dice: float, ece: float) -> dict:
        return {
            "part": "single-rater",
            "task": "lits",
            "labels": labels,
            "loss": "ce+dml",
            "model": "student",
            "seed": seed,
            "dice_image_gt": dice,
            "dice_dataset_gt": dice,
            "ece_gt": ece,
            "bece_gt": ece,
        }

    rows = [row("hard", 0, 40.0, 1.0), row("hard", 1, 50.0, 2.0), row("bls", 0, 43.0, 1.5), row("bls", 1, 49.0, 1.0)]
    write_csv(rows, tmp_path / "x_runs.csv")
    back = read_csv(tmp_path / "x_runs.csv")
    assert back == rows  # ints stay ints, floats stay floats
    (entry,) = [e for e in paired_differences(back)[("single-rater", "lits")] if e["title"] == "BLS − hard (CE+DML)"]
    mean, std, better = entry["cells"]["dice_image_gt"]
    assert (mean, better) == (pytest.approx(1.0), 1)  # (+3 - 1) / 2; BLS has the higher Dice in seed 0 only
    assert std == pytest.approx(statistics.stdev([3.0, -1.0]))
    mean, _, better = entry["cells"]["ece_gt"]
    assert (mean, better) == (pytest.approx(-0.25), 1)  # (+0.5 - 1.0) / 2; lower ECE is better: seed 1 only


def test_recipe_overrides_are_typed_and_checked() -> None:
    recipe = recipe_with(["unsup_weight=0", "unsup_batch=true", "ece_bins=15"])
    assert (recipe.unsup_weight, recipe.unsup_batch, recipe.ece_bins) == (0.0, True, 15)
    assert recipe_with([]) == RECIPE
    for bad, message in (("nope=1", "key in"), ("ece_bins=1.5", "must be a int"), ("unsup_batch=maybe", "true or")):
        with pytest.raises(ValueError, match=message):
            recipe_with([bad])
