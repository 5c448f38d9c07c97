"""The bundles from the command line: ``python -m monai.bundle run``, torchrun with gloo, and the demo command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from monai_jdt.bundle import bundle_dir
from tests.bundle._helpers import BUNDLES, KITS, LITS, QUBIQ, TINY, TRAIN

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("MONAI_JDT_DEBUG", None)
    return env


def _cli_args(overrides: dict) -> list[str]:
    return [x for k, v in overrides.items() for x in (f"--{k}", json.dumps(v) if not isinstance(v, str) else v)]


def test_bad_dataset_dir_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    procs = {
        bundle: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monai.bundle",
                "run",
                "--config_file",
                "configs/train.json",
                "--dataset_dir",
                str(missing),
                "--bundle_root",
                str(tmp_path / bundle),
            ],
            cwd=bundle_dir(bundle),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for bundle in BUNDLES
    }  # the three start together: their imports overlap
    what = {QUBIQ: "QUBIQ download", LITS: "LiTS folder", KITS: "KiTS folder"}
    for bundle, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 1, stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: dataset_dir {missing} is not an existing folder; pass --dataset_dir <"), last
        assert what[bundle] in last
        assert "Traceback" not in stderr


@pytest.mark.slow
@pytest.mark.parametrize("bundle", BUNDLES)
def test_multi_gpu_train_with_two_gloo_processes(bundle: str, bundle_data: dict[str, Path], tmp_path: Path) -> None:
    overrides = {
        **TINY[bundle],
        **TRAIN[bundle],
        "dataset_dir": str(bundle_data[bundle]),
        "bundle_root": str(tmp_path),
        "epochs": 2,
        "batch_size": 1,
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc_per_node=2",
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        "['configs/train.json','configs/multi_gpu_train.json']",
        *_cli_args(overrides),
    ]
    proc = subprocess.run(cmd, cwd=bundle_dir(bundle), env=_env(), capture_output=True, text=True, timeout=600)
    errors = [line for line in proc.stderr.splitlines() if "Error" in line or "error" in line]
    assert proc.returncode == 0, "\n".join(errors[-20:]) + proc.stderr[-2000:]
    latest = torch.load(tmp_path / "models" / "latest.pt", weights_only=True)
    # 4 cases, 2 folds: 2 training cases, one per rank and batch: 1 iteration per epoch on each rank
    assert latest["trainer"]["iteration"] == 2
    assert (tmp_path / "models" / "model.pt").is_file()
    # StatsHandler runs on rank 0 only: one loss line per iteration, not two
    assert proc.stdout.count("-- train_loss:") == 2


@pytest.mark.slow
def test_demo_command(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [
        sys.executable,
        "-m",
        "monai_jdt",
        "demo",
        "--out",
        str(out),
        "--epochs",
        "2",
        "--cases",
        "8",
        "--size",
        "32",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("label mode"))
    assert lines[header].split()[:4] == ["label", "mode", "Dice", "(image)"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 : header + 3]}
    assert set(rows) == {"majority", "mean"}
    for mode, values in rows.items():
        summary = json.loads((out / mode / "eval" / "metrics_summary.json").read_text())
        assert float(values[0]) == pytest.approx(summary["dice_image"], abs=1e-4)
        assert float(values[3]) == pytest.approx(summary["ece"], abs=1e-4)
        assert (out / mode / "eval" / "reliability.png").is_file() and f"{out / mode / 'eval'}" in proc.stdout
    assert (out / "data" / "training_data_v2" / "kidney" / "Training" / "case08").is_dir()


def test_demo_help_names_the_bundle() -> None:
    from monai_jdt.cli import build_parser

    parser, table = build_parser()
    assert "demo" in table
    text = table["demo"].DESCRIPTION
    assert QUBIQ in text and "--dataset_dir" in text
