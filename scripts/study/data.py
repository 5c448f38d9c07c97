"""The study's data: synthetic QUBIQ-like and LiTS-like sets written by monai_jdt, read back and prepared once.

Everything is written with :mod:`monai_jdt.data.synthetic` in the real layouts, indexed with the library's readers
and loaded with MONAI transforms; the soft labels come from the library's transforms (FuseRatersd, LabelSmoothingd,
BoundaryLabelSmoothingd). The prepared tensors are saved to one file that every worker process loads.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    LoadImaged,
    ScaleIntensityd,
    ScaleIntensityRanged,
)

from monai_jdt.data import lits_datalist, qubiq_datalist
from monai_jdt.data.synthetic import write_synthetic_lits, write_synthetic_qubiq
from monai_jdt.transforms import BoundaryLabelSmoothingd, FuseRaters, FuseRatersd, LabelSmoothingd

from . import config
from .config import Preset

__all__ = ["QUBIQ_FIXED_SOURCES", "load_prepared", "prepare", "random_rater_labels"]

#: rater fusions computed once (the random rater is drawn per training seed, see ``random_rater_labels``).
QUBIQ_FIXED_SOURCES = ("mean", "majority", "staple")

TUMOUR = 2  # LiTS label of the liver tumour; the study segments tumour vs rest, as the papers do


def _plain(x: Any) -> torch.Tensor:
    return x.as_tensor() if hasattr(x, "as_tensor") else torch.as_tensor(x)


def _qubiq_task(root: Path, task: str, cfg: Preset) -> dict[str, Any]:
    """Images ``(N, 1, H, W)`` in [-1, 1], raters (``(R, H, W)`` uint8 each) and the fixed fusions ``(N, 2, H, W)``."""
    write_synthetic_qubiq(
        root,
        tasks=task,
        cases=cfg.qubiq_train + cfg.qubiq_test,
        size=cfg.qubiq_size,
        seed=cfg.data_seed,
        progress_bar=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # prostate: the case with one rater fewer is kept
        entries = qubiq_datalist(root, task, folds=None)
    load = Compose(
        [
            LoadImaged(["image", "raters"], image_only=True),
            EnsureChannelFirstd("image", channel_dim="no_channel"),
            ScaleIntensityd("image", minv=-1.0, maxv=1.0),  # per image min-max (the papers scale QUBIQ per image)
            *(FuseRatersd("raters", output_key=m, method=m, num_classes=2) for m in QUBIQ_FIXED_SOURCES),
        ]
    )
    items = [load(e) for e in entries]
    out: dict[str, Any] = {"image": torch.stack([_plain(d["image"]).float() for d in items])}
    out["raters"] = [_plain(d["raters"]).to(torch.uint8) for d in items]
    for m in QUBIQ_FIXED_SOURCES:
        out[m] = torch.stack([_plain(d[m]).float() for d in items])
    out["n_train"] = cfg.qubiq_train
    return out


def random_rater_labels(raters: list[torch.Tensor], seed: int) -> torch.Tensor:
    """One rater per case, drawn once for training seed ``seed`` (the "random rater" label source), one-hot."""
    fuser = FuseRaters("random", num_classes=2)
    fuser.set_random_state(seed)
    return torch.stack([_plain(fuser(r)).float() for r in raters])


def _tumour_slices(entry: dict[str, Any], load: Compose) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial slices that contain tumour: images ``(S, 1, X, Y)`` and binary tumour labels ``(S, 1, X, Y)``."""
    d = load(entry)  # channel-first volumes (1, X, Y, Z)
    image, tumour = _plain(d["image"]).float(), (_plain(d["label"]) == TUMOUR).to(torch.uint8)
    keep = tumour[0].flatten(0, 1).any(0).nonzero().flatten()
    return image[..., keep].permute(3, 0, 1, 2), tumour[..., keep].permute(3, 0, 1, 2)


def _lits(root: Path, cfg: Preset) -> dict[str, Any]:
    """Tumour slices of the LiTS-like volumes with hard, LS and BLS labels ``(S, 2, X, Y)`` and their case index."""
    write_synthetic_lits(
        root,
        cases=cfg.lits_train + cfg.lits_test,
        size=cfg.lits_size,
        seed=cfg.data_seed,
        test_cases=0,
        progress_bar=False,
    )
    entries = sorted(lits_datalist(root, folds=None), key=lambda e: int(e["case_id"].split("-")[1]))
    low, high = config.RECIPE.lits_window
    load = Compose(
        [
            LoadImaged(["image", "label"], image_only=True),
            EnsureChannelFirstd(["image", "label"], channel_dim="no_channel"),
            ScaleIntensityRanged("image", a_min=low, a_max=high, b_min=-1.0, b_max=1.0, clip=True),
        ]
    )
    images, labels, cases = [], [], []
    for index, entry in enumerate(entries):
        im, lab = _tumour_slices(entry, load)
        images.append(im)
        labels.append(lab)
        cases += [index] * len(im)
    image, index_map = torch.cat(images), torch.cat(labels)
    r = config.RECIPE
    smooth = {
        "ls": LabelSmoothingd("label", num_classes=2, epsilon=r.ls_epsilon),
        "bls": BoundaryLabelSmoothingd("label", num_classes=2, epsilon=r.bls_epsilon, kernel_size=r.bls_kernel),
    }
    out: dict[str, Any] = {"image": image, "case": torch.tensor(cases)}
    out["hard"] = torch.cat([1 - index_map, index_map], dim=1).float()
    for name, transform in smooth.items():
        out[name] = torch.stack([_plain(transform({"label": lab})["label"]).float() for lab in index_map])
    out["n_train_cases"] = cfg.lits_train
    return out


def prepare(workdir: Path, cfg: Preset, *, with_qubiq: bool = True, with_lits: bool = True) -> Path:
    """Write the synthetic sets under ``workdir`` and save the prepared tensors to ``workdir/prepared.pt``."""
    data: dict[str, Any] = {"qubiq": {}, "lits": None}
    if with_qubiq:
        for task in cfg.qubiq_tasks:
            data["qubiq"][task] = _qubiq_task(workdir / "qubiq" / task, task, cfg)
    if with_lits:
        data["lits"] = _lits(workdir / "lits", cfg)
        if not bool((data["lits"]["case"] < cfg.lits_train).any()):
            raise ValueError(f"no training slice with tumour in {cfg.lits_train} LiTS-like cases; use more cases")
    path = workdir / "prepared.pt"
    torch.save(data, path)
    return path


_CACHE: dict[str, Any] = {}


def load_prepared(path: str | Path) -> dict[str, Any]:
    """The prepared tensors (cached per process)."""
    key = str(path)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = torch.load(key, weights_only=False)
    return _CACHE[key]


def describe(data: dict[str, Any]) -> dict[str, Any]:
    """Sample counts and the share of soft (non 0/1) training pixels of each label source, for the report."""
    info: dict[str, Any] = {}
    for task, d in data["qubiq"].items():
        n = d["n_train"]
        mean = d["mean"][:n, 1]
        info[f"qubiq/{task}"] = {
            "train": n,
            "test": len(d["image"]) - n,
            "raters": sorted({int(r.shape[0]) for r in d["raters"]}),
            "soft_pixels_mean": float(((mean > 0) & (mean < 1)).float().mean()),
            "foreground_mean": float(mean.mean()),
        }
    if data["lits"] is not None:
        d = data["lits"]
        train = d["case"] < d["n_train_cases"]
        info["lits"] = {
            "train_slices": int(train.sum()),
            "test_slices": int((~train).sum()),
            "train_cases": int(d["n_train_cases"]),
            "foreground": float(d["hard"][train, 1].mean()),
            "soft_pixels_bls": float(((d["bls"][train, 1] > 0) & (d["bls"][train, 1] < 1)).float().mean()),
        }
    return {k: {kk: (round(v, 4) if isinstance(v, float) else v) for kk, v in d.items()} for k, d in info.items()}
