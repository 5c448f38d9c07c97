"""Every label mode and loss key of the bundles: constructed from the configs and one training iteration run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from monai.engines import SupervisedTrainer

from monai_jdt.bundle import bundle_dir
from monai_jdt.cli import main as cli_main
from monai_jdt.data import kits_datalist, write_datalist
from monai_jdt.engines import DistillationTrainer
from monai_jdt.losses import DistillationLoss
from tests.bundle._helpers import KITS, LITS, QUBIQ, TINY, run, train_overrides, workflow

SOFT = {"mean", "weighted", "majority", "random", "staple", "ls", "bls", "raters_mean"}
CASES = [(QUBIQ, m) for m in ("mean", "weighted", "majority", "random", "staple")]
CASES += [(LITS, m) for m in ("hard", "ls", "bls")] + [(KITS, m) for m in ("hard", "ls", "bls", "raters_mean")]


def _one_iteration(bundle: str, data: Path, out: Path, **extra) -> tuple:
    """Train for exactly one iteration (no validation); the workflow and the trainer's last output item."""
    overrides = train_overrides(bundle, data, out, val_interval=100, **extra)
    overrides["train#trainer#epoch_length"] = 1
    wf = run(workflow(bundle, ["train"], "train", **overrides))
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.iteration == 1
    output = trainer.state.output[0]
    assert torch.isfinite(torch.as_tensor(output["loss"]))
    return wf, trainer, output


@pytest.mark.parametrize(("bundle", "mode"), CASES)
def test_label_mode_one_iteration(bundle: str, mode: str, bundle_data: dict[str, Path], tmp_path: Path) -> None:
    extra = {"label_mode": mode, "bls_radius_mm": 4.0} if mode == "bls" else {"label_mode": mode}
    wf, trainer, output = _one_iteration(bundle, bundle_data[bundle], tmp_path, **extra)
    assert type(trainer) is SupervisedTrainer
    label = torch.as_tensor(output["label"])
    classes = {QUBIQ: 2, LITS: 3, KITS: 4}[bundle]
    if mode in SOFT:  # a probability map per voxel, which the loss must not one-hot
        assert label.shape[0] == classes and torch.allclose(label.sum(0), torch.ones(()), atol=1e-4)
        assert not wf.parser.get_parsed_content("loss").to_onehot_y
    else:
        assert label.shape[0] == 1 and wf.parser.get_parsed_content("loss").to_onehot_y
    if mode in ("ls", "bls", "raters_mean"):  # really soft somewhere (not a one-hot)
        assert bool(((label > 0.01) & (label < 0.99)).any())


@pytest.mark.parametrize("loss_name", ["dml_ce", "jml_ce", "ctl_ce", "ce", "sdl_ce"])
def test_loss_key_one_iteration(loss_name: str, bundle_data: dict[str, Path], tmp_path: Path) -> None:
    wf, _, _ = _one_iteration(QUBIQ, bundle_data[QUBIQ], tmp_path, loss_name=loss_name)
    expected = {
        "dml_ce": "DiceSemimetricCELoss",
        "jml_ce": "JaccardMetricCELoss",
        "ctl_ce": "CEOverlapLoss",
        "ce": "SoftCrossEntropyLoss",
        "sdl_ce": "DiceCELoss",
    }[loss_name]
    assert type(wf.parser.get_parsed_content("loss")).__name__ == expected


def test_sdl_ce_on_hard_ct_labels(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    wf, _, _ = _one_iteration(LITS, bundle_data[LITS], tmp_path, loss_name="sdl_ce")
    assert type(wf.parser.get_parsed_content("loss")).__name__ == "DiceCELoss"


def _teacher_checkpoint(bundle_data: dict[str, Path], tmp_path: Path, bundle: str = KITS) -> Path:
    wf = workflow(bundle, ["train"], "train", **train_overrides(bundle, bundle_data[bundle], tmp_path / "teacher"))
    path = tmp_path / "teacher.pt"
    torch.save(wf.parser.get_parsed_content("network_def").state_dict(), path)
    return path


@pytest.mark.parametrize("bundle", [LITS, KITS])
def test_kd_online_uses_the_teacher_checkpoint(bundle: str, bundle_data: dict[str, Path], tmp_path: Path) -> None:
    ckpt = _teacher_checkpoint(bundle_data, tmp_path, bundle)
    wf, trainer, output = _one_iteration(
        bundle, bundle_data[bundle], tmp_path / "run", label_mode="kd", teacher_ckpt=str(ckpt)
    )
    assert isinstance(trainer, DistillationTrainer) and trainer.teacher_network is not None
    teacher_state = trainer.teacher_network.state_dict()
    for name, value in torch.load(ckpt, weights_only=True).items():
        assert torch.equal(teacher_state[name], value)  # loaded and not trained
    loss = wf.parser.get_parsed_content("loss")
    assert isinstance(loss, DistillationLoss) and loss.config.teacher_is_logits
    assert "loss_teacher_kl" in output and output["teacher"].shape == output["pred"].shape


def test_kd_offline_uses_the_teacher_maps(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    ckpt = _teacher_checkpoint(bundle_data, tmp_path)
    datalist = write_datalist(tmp_path / "kits.json", kits_datalist(bundle_data[KITS], edition="kits23", folds=2))
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps(TINY[KITS]))
    inference = bundle_dir(KITS) / "configs" / "inference.json"
    code = cli_main(
        [
            "teacher-maps",
            str(bundle_dir(KITS)),
            "--config",
            str(inference),
            str(tiny),
            "--checkpoint",
            str(ckpt),
            "--datalist",
            str(datalist),
            "--output-dir",
            str(tmp_path / "maps"),
        ]
    )
    assert code == 0
    maps = tmp_path / "maps" / "kits_teacher.json"
    wf, trainer, output = _one_iteration(KITS, bundle_data[KITS], tmp_path / "run", label_mode="kd", datalist=str(maps))
    assert isinstance(trainer, DistillationTrainer) and trainer.teacher_network is None
    assert trainer.teacher_key == "teacher"
    assert not wf.parser.get_parsed_content("loss").config.teacher_is_logits
    teacher = torch.as_tensor(output["teacher"])
    assert teacher.shape == output["pred"].shape and torch.allclose(teacher.sum(0), torch.ones(()), atol=1e-3)


def test_kd_without_teacher_is_one_line(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="has no 'teacher': label_mode kd needs --teacher_ckpt"):
        workflow(LITS, ["train"], "train", **train_overrides(LITS, bundle_data[LITS], tmp_path, label_mode="kd"))


def test_raters_mean_needs_annotator_files(tmp_path: Path) -> None:
    from monai_jdt.data.synthetic import write_synthetic_kits

    kits19 = write_synthetic_kits(tmp_path / "kits19", edition="kits19", cases=4, size=(16, 32, 32), progress_bar=False)
    overrides = train_overrides(KITS, kits19, tmp_path, label_mode="raters_mean", edition="kits19")
    with pytest.raises(SystemExit, match="has no 'instances': label_mode raters_mean needs the per-annotator"):
        workflow(KITS, ["train"], "train", **overrides)
