"""The runs of the study (one per part, task, label source, loss and seed) and how one run is executed."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from monai.data import set_track_meta

from . import config
from .config import Preset
from .data import load_prepared, random_rater_labels
from .evaluation import evaluate, predict
from .training import make_loss, make_network, train

__all__ = ["PARTS", "Job", "order_key", "plan", "run_job", "teacher_path"]

PARTS = ("multi-rater", "single-rater", "semi-supervised")

QUBIQ_SOURCES = ("majority", "random", "staple", "mean")  # hard, hard, (nearly hard) probabilities, soft
QUBIQ_LOSSES = ("ce", "ce+sdl", "ce+dml")
LITS_LABELS = ("hard", "ls", "bls", "kd")
LITS_LOSSES = ("ce", "ce+dml")
SSL_ARMS = ("supervised", "mean-teacher")
HARD_SOURCES = ("majority", "random", "hard", "kd")  # label sources whose training targets are one-hot

_LABEL_ORDER = {name: i for i, name in enumerate(QUBIQ_SOURCES + LITS_LABELS + SSL_ARMS)}
_LOSS_ORDER = {"ce": 0, "ce+sdl": 1, "ce+dml": 2}

#: the run whose network is the KD teacher of its seed (trained with BLS labels first, as in the papers).
TEACHER_RUN = ("single-rater", "lits", "bls", "ce+dml")


@dataclass(frozen=True)
class Job:
    part: str  # "multi-rater", "single-rater" or "semi-supervised"
    task: str
    labels: str
    loss: str
    seed: int

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.part, self.task, self.labels, self.loss

    @property
    def needs_teacher(self) -> bool:
        return self.part == "single-rater" and self.labels == "kd"

    def name(self) -> str:
        return f"{self.part}/{self.task}/{self.labels}/{self.loss}/seed{self.seed}"


def plan(cfg: Preset, parts: tuple[str, ...]) -> list[Job]:
    """All runs, KD runs last (they need their seed's teacher)."""
    jobs: list[Job] = []
    for seed in range(cfg.seeds):
        if "multi-rater" in parts:
            jobs += [
                Job("multi-rater", t, s, lo, seed)
                for t in cfg.qubiq_tasks
                for s in QUBIQ_SOURCES
                for lo in QUBIQ_LOSSES
            ]
        if "single-rater" in parts:
            jobs += [Job("single-rater", "lits", lab, lo, seed) for lab in LITS_LABELS for lo in LITS_LOSSES]
        if "semi-supervised" in parts:
            jobs += [Job("semi-supervised", "lits", arm, "ce+dml", seed) for arm in SSL_ARMS]
    return sorted(jobs, key=lambda j: (j.needs_teacher, j.part == "semi-supervised"))


def order_key(row: dict[str, Any]) -> tuple:
    """Rows in the order of the plan: part, task, label source, loss, seed, evaluated network."""
    return (
        PARTS.index(row["part"]),
        row["task"],
        _LABEL_ORDER[row["labels"]],
        _LOSS_ORDER[row["loss"]],
        row["seed"],
        row.get("model", ""),
    )


def teacher_path(workdir: Path, seed: int) -> Path:
    return workdir / "teachers" / f"seed{seed}.pt"


def _qubiq(job: Job, cfg: Preset, data: dict[str, Any], device: torch.device) -> tuple[dict, dict, dict]:
    d = data["qubiq"][job.task]
    n = d["n_train"]
    if job.labels == "random":
        labels = random_rater_labels(d["raters"][:n], seed=job.seed)
    else:
        labels = d[job.labels][:n]
    loss = make_loss(job.loss, hard=job.labels in HARD_SOURCES)
    models = train(cfg, job.seed, d["image"][:n], labels, loss, device, crop=False)
    refs = {"majority": d["majority"][n:], "mean": d["mean"][n:]}
    return models, refs, {"n_train": n, "test_images": d["image"][n:]}


def _lits(job: Job, cfg: Preset, data: dict[str, Any], device: torch.device, workdir: Path) -> tuple[dict, dict, dict]:
    d = data["lits"]
    train_mask = d["case"] < d["n_train_cases"]
    images, test = d["image"][train_mask], d["image"][~train_mask]
    refs = {"gt": d["hard"][~train_mask]}
    teacher = unlabelled = None
    if job.part == "semi-supervised":
        n_labelled = max(1, round(config.RECIPE.labelled_fraction * d["n_train_cases"]))
        labelled = d["case"][train_mask] < n_labelled
        labels = d["hard"][train_mask][labelled]
        unlabelled = images[~labelled] if job.labels == "mean-teacher" else None
        images = images[labelled]
        loss = make_loss(job.loss, hard=True)
    elif job.labels == "kd":
        teacher = make_network(cfg, device)
        teacher.load_state_dict(torch.load(teacher_path(workdir, job.seed), map_location=device, weights_only=True))
        labels = d["hard"][train_mask]
        loss = make_loss(job.loss, hard=True, kd=True)
    else:
        labels = d[job.labels][train_mask]
        loss = make_loss(job.loss, hard=job.labels in HARD_SOURCES)
    models = train(cfg, job.seed, images, labels, loss, device, crop=True, teacher=teacher, unlabelled=unlabelled)
    if job.key == TEACHER_RUN:
        path = teacher_path(workdir, job.seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(models["student"].state_dict(), path)
    extra = {"n_train": len(images), "test_images": test}
    if unlabelled is not None:
        extra["n_unlabelled"] = len(unlabelled)
    return models, refs, extra


def run_job(
    job: Job, cfg: Preset, recipe: config.Recipe, data_path: str, workdir: str, device: str, threads: int
) -> list[dict[str, Any]]:
    """Train and evaluate one run with ``recipe``; one result row per evaluated network."""
    config.RECIPE = recipe  # the worker processes get the main process's recipe (with its overrides)
    torch.set_num_threads(threads)
    set_track_meta(False)  # plain tensors through the transforms and the network (MetaTensor dispatch is slow)
    wall, cpu = time.perf_counter(), time.process_time()
    data = load_prepared(data_path)
    dev = torch.device(device)
    if job.part == "multi-rater":
        models, refs, extra = _qubiq(job, cfg, data, dev)
    else:
        models, refs, extra = _lits(job, cfg, data, dev, Path(workdir))
    test_images = extra.pop("test_images")
    rows = []
    for model_name, net in models.items():
        metrics = evaluate(predict(net, test_images, dev), refs)
        rows.append({**dataclasses.asdict(job), "model": model_name, **extra, "iterations": cfg.iterations, **metrics})
    cpu_s, wall_s = time.process_time() - cpu, time.perf_counter() - wall
    for row in rows:
        row.update(cpu_s=round(cpu_s, 2), wall_s=round(wall_s, 2))
    return rows
