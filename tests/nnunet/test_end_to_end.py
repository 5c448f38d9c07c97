"""End to end on CPU, as a user runs it: export -> register -> nnUNetv2_plan_and_preprocess -> nnUNetv2_train.

Slow (about a minute per trainer on 2 cores, most of it nnU-Net's start-up and final validation). nnU-Net is
copied to a temporary folder placed first on ``PYTHONPATH``, and the trainers are registered in that copy, so
the test never writes into the installed nnU-Net. Each trainer runs 1 epoch of 2 iterations
(``MONAI_JDT_NNUNET_EPOCHS`` / ``_ITERATIONS`` / ``_VAL_ITERATIONS``) on a sparsely annotated (ignore label) data
set, then nnU-Net's own validation of the held-out case.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monai_jdt.nnunet import TRAINER_NAMES, nnunet_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not nnunet_available(), reason="nnU-Net v2 >= 2.8 is not installed (bash scripts/install_nnunet_cpu.sh)"
    ),
]
DATASET_ID = 501
DATASET = "Dataset501_SynthLiTSIgnore"


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _run(cmd: list[str], env: dict[str, str], timeout: int) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("nnunet_e2e")
    spec = importlib.util.find_spec("nnunetv2")
    assert spec is not None and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations)))
    shutil.copytree(source, root / "overlay" / "nnunetv2", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(root / "overlay"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "nnUNet_raw": str(root / "raw"),
        "nnUNet_preprocessed": str(root / "preprocessed"),
        "nnUNet_results": str(root / "results"),
        "nnUNet_def_n_proc": "1",
        "nnUNet_compile": "f",
        "MONAI_JDT_NNUNET_EPOCHS": "1",
        "MONAI_JDT_NNUNET_ITERATIONS": "2",
        "MONAI_JDT_NNUNET_VAL_ITERATIONS": "1",
    })
    env.pop("nnUNet_extTrainer", None)
    out = _run([sys.executable, "-m", "monai_jdt", "nnunet-register"], env, 120)
    assert str(root / "overlay" / "nnunetv2" / "training" / "nnUNetTrainer") in out  # the copy, not the install
    _run([sys.executable, "-m", "monai_jdt", "nnunet-export", "--out", str(root / "raw"), "--dataset-id",
          str(DATASET_ID), "--cases", "5", "--size", "32", "32", "16", "--ignore-label"], env, 120)
    _run([_tool("nnUNetv2_plan_and_preprocess"), "-d", str(DATASET_ID), "-c", "3d_fullres", "-np", "1", "-npfp", "1",
          "--verify_dataset_integrity"], env, 300)
    assert (root / "preprocessed" / DATASET / "nnUNetPlans.json").is_file()
    env["nnUNet_n_proc_DA"] = "0"  # training: data augmentation in the main process (0 breaks preprocessing)
    return root, env


def _logged(log: str, key: str) -> list[float]:
    return [float(v) for v in re.findall(rf"{key} (-?[0-9.]+(?:e-?[0-9]+)?|nan|-?inf)", log)]


def test_every_trainer_trains_on_cpu_with_finite_losses(workspace: tuple[Path, dict[str, str]]):
    root, env = workspace
    report = {}
    for name in TRAINER_NAMES:
        _run([_tool("nnUNetv2_train"), str(DATASET_ID), "3d_fullres", "0", "-tr", name, "-device", "cpu"], env, 420)
        fold = root / "results" / DATASET / f"{name}__nnUNetPlans__3d_fullres" / "fold_0"
        log = "\n".join(p.read_text() for p in sorted(fold.glob("training_log_*.txt")))
        train, val = _logged(log, "train_loss"), _logged(log, "val_loss")
        report[name] = (train, val)
        assert len(train) == 1 and len(val) == 1, log[-2000:]
        assert all(math.isfinite(v) and v > 0 for v in train + val), (name, train, val)  # ours is 1 - dice: > 0
        assert "monai_jdt loss:" in log and "ignore_label=3" in log
        assert (fold / "checkpoint_final.pth").is_file()
        assert (fold / "validation" / "summary.json").is_file()  # nnU-Net's validation ran on the held-out case
    bls = (root / "results" / DATASET / "nnUNetTrainerDMLCE_BLS__nnUNetPlans__3d_fullres" / "fold_0")
    assert "smoothing_epsilon=0.5" in "".join(p.read_text() for p in bls.glob("training_log_*.txt"))
    print(report)
