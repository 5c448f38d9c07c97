"""Tiny settings of the three bundles for CPU tests, and a runner of MONAI's ConfigWorkflow."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigWorkflow

from monai_jdt.bundle import bundle_dir

QUBIQ = "qubiq_multirater_segmentation"
LITS = "lits_ct_segmentation"
KITS = "kits_ct_segmentation"
BUNDLES = (QUBIQ, LITS, KITS)

_NET_2D = {"net_channels": [4, 8, 16], "net_strides": [2, 2], "net_res_units": 0}
_NET_3D = {"net_channels": [4, 8], "net_strides": [2], "net_res_units": 0}

#: overrides that make each bundle run in about a second on a CPU (shared by train, evaluate and inference).
TINY: dict[str, dict[str, Any]] = {
    QUBIQ: {"patch_size": [32, 32], "sw_batch_size": 1, "num_workers": 0, **_NET_2D},
    LITS: {"patch_size": [16, 16, 16], "pixdim": [3.0, 3.0, 6.0], "sw_batch_size": 1, "num_workers": 0, **_NET_3D},
    KITS: {"patch_size": [16, 16, 16], "pixdim": [3.0, 3.0, 6.0], "sw_batch_size": 1, "num_workers": 0, **_NET_3D},
}

#: training-only overrides: 2 folds, a single small batch per epoch.
TRAIN: dict[str, dict[str, Any]] = {
    QUBIQ: {"num_folds": 2, "batch_size": 2, "epochs": 1, "val_interval": 1, "cache_rate": 0.0},
    LITS: {"num_folds": 2, "batch_size": 1, "num_samples": 1, "epochs": 1, "val_interval": 1, "cache_rate": 0.0},
    KITS: {"num_folds": 2, "batch_size": 1, "num_samples": 1, "epochs": 1, "val_interval": 1, "cache_rate": 0.0},
}


def configs(bundle: str, *names: str) -> list[str]:
    folder = bundle_dir(bundle) / "configs"
    return [str(folder / f"{n}.json") for n in names]


def workflow(bundle: str, names: Sequence[str], workflow_type: str, **override: Any) -> ConfigWorkflow:
    """An initialised ConfigWorkflow of ``names`` (e.g. ``["train", "evaluate"]``), logging off."""
    wf = ConfigWorkflow(
        config_file=configs(bundle, *names),
        meta_file=str(bundle_dir(bundle) / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type=workflow_type,
        **override,
    )
    wf.initialize()
    return wf


def train_overrides(bundle: str, data: Path, out: Path, **extra: Any) -> dict[str, Any]:
    return {"dataset_dir": str(data), "bundle_root": str(out), **TINY[bundle], **TRAIN[bundle], **extra}


def run(wf: ConfigWorkflow) -> ConfigWorkflow:
    assert wf.check_properties() == []
    wf.run()
    wf.finalize()
    return wf
