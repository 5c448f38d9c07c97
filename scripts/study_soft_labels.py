"""Soft-label vs hard-label study in the style of the Dice semimetric loss paper (arXiv 2303.16296), issue 8.

Three parts, each a grid of runs (label source x loss x seed) of a MONAI 2D UNet, trained on synthetic data written
by ``monai_jdt.data.synthetic`` and evaluated with ``monai_jdt.metrics``:

* multi-rater (QUBIQ-like slices): labels = majority vote, one random rater, STAPLE, rater mean;
  losses = CE, CE + SDL (MONAI ``DiceCELoss``), CE + DML (``monai_jdt.losses.DiceSemimetricCELoss``);
  evaluated against the majority vote (hard) and the rater mean (soft);
* single-rater (LiTS-like tumour slices): labels = hard, label smoothing (LS), boundary label smoothing (BLS),
  knowledge distillation (KD, teacher = the BLS + CE + DML network of the same seed); losses = CE, CE + DML;
* semi-supervised (issue 10): 10 % of the LiTS-like training cases labelled; supervised only vs mean teacher
  (``monai_jdt.engines.MeanTeacherTrainer``) with CE + DML on the teacher's soft pseudo-labels.

Outputs in ``--out`` (prefix = the preset name): ``<preset>_runs.csv`` (one row per run and evaluated network),
``<preset>_results.md`` (mean ± sample standard deviation over seeds), ``<preset>_plot.png``, ``<preset>_run.json``
(command, machine, recipe, data, times). See docs/study.md.

Usage::

    python scripts/study_soft_labels.py                 # default preset: 3 seeds, < 30 min on 2 CPU cores
    python scripts/study_soft_labels.py --quick         # smoke run (CI), < 1 min
    python scripts/study_soft_labels.py --preset large --device cuda --workers 1 --threads 8   # GPU
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import json
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from study import config
from study.config import PRESETS, preset, recipe_with
from study.data import describe, load_prepared, prepare
from study.jobs import PARTS, TEACHER_RUN, Job, order_key, plan, run_job
from study.report import paired_differences, read_csv, summarise, write_csv, write_markdown, write_plot


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="data and run sizes")
    p.add_argument("--quick", action="store_true", help="same as --preset quick (CI smoke run)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run (default: all)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ...); default from the preset")
    p.add_argument("--iterations", type=int, default=None, help="optimizer steps per run; default from the preset")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    cores = os.cpu_count() or 1
    p.add_argument("--workers", type=int, default=min(2, cores), help="parallel runs (processes); 1 runs inline")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: cores // workers)")
    p.add_argument("--out", type=Path, default=Path("docs/study"), help="output folder")
    p.add_argument(
        "--recipe",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override recipe settings (post-hoc ablations), e.g. unsup_weight=0",
    )
    p.add_argument("--tag", default=None, help="output file prefix (default: the preset name, plus the overrides)")
    p.add_argument(
        "--from-csv",
        type=Path,
        default=None,
        metavar="RUNS_CSV",
        help="only rebuild <tag>_results.md and <tag>_plot.png from <tag>_runs.csv and <tag>_run.json",
    )
    p.add_argument("--workdir", type=Path, default=None, help="synthetic data and teachers (default: a temp dir)")
    args = p.parse_args(argv)
    if args.quick:
        args.preset = "quick"
    for name in ("seeds", "iterations", "workers", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be >= 1, got {value}")
    args.threads = args.threads or max(1, cores // args.workers)
    return args


def _have_mean_teacher() -> bool:
    try:
        from monai_jdt.engines import MeanTeacherTrainer  # noqa: F401
    except ImportError:
        return False
    return True


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Runner:
    """Runs the jobs inline or in a process pool; KD runs start once their seed's teacher run has finished."""

    def __init__(self, args: argparse.Namespace, cfg: Any, data_path: Path, workdir: Path) -> None:
        self.args, self.cfg, self.data_path, self.workdir = args, cfg, str(data_path), str(workdir)
        self.rows: list[dict[str, Any]] = []
        self.loads: list[float] = []
        self.done = 0

    def _call(self, job: Job) -> tuple:
        return job, self.cfg, config.RECIPE, self.data_path, self.workdir, self.args.device, self.args.threads

    def _finished(self, job: Job, rows: list[dict[str, Any]], total: int, start: float) -> None:
        self.rows += rows
        self.done += 1
        self.loads.append(os.getloadavg()[0])
        first = rows[0]
        print(
            f"[{self.done}/{total}] {time.perf_counter() - start:7.0f}s {job.name():58s} "
            f"cpu {first['cpu_s']:6.1f}s  {_headline(first)}",
            flush=True,
        )

    def run(self, jobs: list[Job]) -> None:
        start = time.perf_counter()
        if self.args.workers == 1:
            for job in jobs:
                self._finished(job, run_job(*self._call(job)), len(jobs), start)
            return
        waiting = [j for j in jobs if j.needs_teacher]
        ready = [j for j in jobs if not j.needs_teacher]
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(self.args.workers, mp_context=ctx) as pool:
            futures = {pool.submit(run_job, *self._call(j)): j for j in ready}
            while futures:
                finished, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    job = futures.pop(future)
                    self._finished(job, future.result(), len(jobs), start)
                    if job.key == TEACHER_RUN:
                        for kd in [j for j in waiting if j.seed == job.seed]:
                            waiting.remove(kd)
                            futures[pool.submit(run_job, *self._call(kd))] = kd


def _headline(row: dict[str, Any]) -> str:
    ref = "majority" if row["part"] == "multi-rater" else "gt"
    return f"Dice^I {row[f'dice_image_{ref}']:.2f}  ECE {row[f'ece_{ref}']:.2f}  BECE {row[f'bece_{ref}']:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_csv is not None:
        return from_csv(args.from_csv)
    cfg = preset(args.preset, seeds=args.seeds, iterations=args.iterations)
    try:
        config.RECIPE = recipe_with(args.recipe)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tag = args.tag or "_".join([cfg.name, *(o.replace("=", "-") for o in args.recipe)])
    parts = tuple(p for p in PARTS if p in args.parts)
    if "semi-supervised" in parts and not _have_mean_teacher():
        print("monai_jdt.engines.MeanTeacherTrainer is not available: the semi-supervised part is skipped")
        parts = tuple(p for p in parts if p != "semi-supervised")
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="study_soft_labels_"))
    workdir.mkdir(parents=True, exist_ok=True)
    wall0, cpu0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()
    data_path = prepare(workdir, cfg, with_qubiq="multi-rater" in parts, with_lits=parts != ("multi-rater",))
    data_info = describe(load_prepared(data_path))
    prep_s = time.perf_counter() - wall0
    print(f"data prepared in {prep_s:.0f}s: {json.dumps(data_info)}", flush=True)
    jobs = plan(cfg, parts)
    runner = Runner(args, cfg, data_path, workdir)
    runner.run(jobs)
    wall = time.perf_counter() - wall0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_total = time.process_time() - cpu0 + children.ru_utime + children.ru_stime
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = sorted(runner.rows, key=order_key)
    stem = args.out / tag
    cores = os.cpu_count() or 1
    info = {
        "command": "python scripts/study_soft_labels.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "preset": dataclasses.asdict(cfg),
        "recipe": dataclasses.asdict(config.RECIPE),
        "recipe_overrides": args.recipe,
        "parts": list(parts),
        "runs": len(jobs),
        "data": data_info,
        "machine": {
            "cpu": _cpu_model(),
            "cores": cores,
            "device": args.device,
            "workers": args.workers,
            "threads_per_run": args.threads,
            "python": platform.python_version(),
            "torch": _version("torch"),
            "monai": _version("monai"),
        },
        "git": _git_state(),
        "wall_s": round(wall, 1),
        "data_preparation_s": round(prep_s, 1),
        "cpu_s": round(cpu_total, 1),
        "quiet_machine_estimate_s": round(cpu_total / min(cores, args.workers * args.threads), 1),
        "load_average": {
            "start": load0[0],
            "end": os.getloadavg()[0],
            "mean_at_run_ends": round(sum(runner.loads) / max(1, len(runner.loads)), 2),
        },
    }
    write_csv(rows, Path(f"{stem}_runs.csv"))
    Path(f"{stem}_run.json").write_text(json.dumps(info, indent=2) + "\n")
    write_reports(rows, info, stem)
    print(f"wrote {stem}_runs.csv, {stem}_run.json (wall {wall:.0f}s, CPU {cpu_total:.0f}s)")
    return 0


def write_reports(rows: list[dict[str, Any]], info: dict[str, Any], stem: Path) -> None:
    """``<stem>_results.md`` (tables and paired differences) and ``<stem>_plot.png`` from the rows and run info."""
    name = stem.name
    load = info["load_average"]
    overrides = info.get("recipe_overrides") or []
    header = [
        f"# Soft-label study: preset `{info['preset']['name']}`"
        + (f", recipe overrides {overrides}" if overrides else ""),
        "",
        f"`{info['command'].strip()}`: {info['runs']} runs, wall {info['wall_s'] / 60:.1f} min, CPU "
        f"{info['cpu_s'] / 60:.1f} min (load average {load['start']:.1f} at the start, {load['mean_at_run_ends']:.1f} "
        f"on average at the end of each run, {info['machine']['cores']} cores). Mean ± sample standard deviation over "
        f"the seeds; all figures in %. Raw runs: `{name}_runs.csv`; plot: `{name}_plot.png`; settings: "
        f"`{name}_run.json`.",
    ]
    summary = summarise(rows)
    write_markdown(summary, Path(f"{stem}_results.md"), header, paired_differences(rows))
    write_plot(summary, Path(f"{stem}_plot.png"))
    print(f"wrote {stem}_results.md, {stem}_plot.png")


def from_csv(csv_path: Path) -> int:
    """Rebuild the markdown tables and the plot from a runs CSV and its ``_run.json`` (no training)."""
    stem = Path(str(csv_path).removesuffix("_runs.csv"))
    info_path = Path(f"{stem}_run.json")
    for path in (csv_path, info_path):
        if not path.is_file():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
    write_reports(read_csv(csv_path), json.loads(info_path.read_text()), stem)
    return 0


def _git_state() -> dict[str, Any]:
    """The commit and the library files that differ from it (the run used the working tree)."""
    import subprocess

    def git(*cmd: str) -> str:
        try:
            run = subprocess.run(["git", *cmd], capture_output=True, text=True, timeout=30, cwd=Path(__file__).parent)
            return run.stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", ":/monai_jdt").splitlines()]
    return {"commit": git("rev-parse", "HEAD") or "unknown", "modified_library_files": changed}


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:  # pragma: no cover - reporting only
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
