"""``label_mode ssl`` of the LiTS/KiTS bundles: one mean-teacher iteration, the teacher validated and checkpointed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer

from monai_jdt.bundle import bundle_dir
from monai_jdt.engines import MeanTeacherTrainer
from tests.bundle._helpers import KITS, LITS, run, train_overrides, workflow


def _ssl_overrides(bundle: str, data: Path, out: Path, **extra) -> dict:
    return train_overrides(bundle, data, out, label_mode="ssl", rampup_epochs=0, **extra)


@pytest.mark.parametrize("bundle", [LITS, KITS])
def test_ssl_one_iteration(bundle: str, bundle_data: dict[str, Path], tmp_path: Path) -> None:
    overrides = _ssl_overrides(bundle, bundle_data[bundle], tmp_path, val_interval=100)
    overrides["train#trainer#epoch_length"] = 1
    wf = run(workflow(bundle, ["train"], "train", **overrides))
    parser = wf.parser
    trainer = parser.get_parsed_content("train#trainer")
    assert isinstance(trainer, MeanTeacherTrainer) and trainer.state.iteration == 1
    assert trainer.teacher is parser.get_parsed_content("ema_teacher")
    assert parser.get_parsed_content("validate#evaluator").network is trainer.teacher  # the teacher is validated
    out = trainer.state.output[0]
    assert out["unsup_weight"] == 1.0
    assert out["loss"] == pytest.approx(out["loss_sup"] + out["loss_unsup"], rel=1e-5)
    assert torch.isfinite(torch.as_tensor(out["loss_unsup"]))
    # 2 training cases (fold 0 of 4 cases in 2 folds): 10% rounds up to 1 labelled case, the other is unlabelled
    split = parser.get_parsed_content("ssl_split")
    assert len(split["labeled"]) == 1 and len(split["unlabeled"]) == 1
    assert "label" in split["labeled"][0] and sorted(split["unlabeled"][0]) == ["case_id", "image"]
    assert [e["case_id"] for e in parser.get_parsed_content("train#dataset").data] == [split["labeled"][0]["case_id"]]
    batch = next(iter(parser.get_parsed_content("ssl#dataloader")))
    assert {"image", "image_strong"} <= set(batch) and "label" not in batch
    assert batch["image"].shape == batch["image_strong"].shape == (1, 1, 16, 16, 16)
    loss = parser.get_parsed_content("ssl#loss")
    assert not loss.to_onehot_y and loss.overlap_options["active_classes"] == "present"
    saved = torch.load(tmp_path / "models" / "latest.pt", weights_only=True)
    for name, value in trainer.teacher.state_dict().items():
        assert torch.equal(saved["teacher"][name], value), name


def test_ssl_resume_restores_the_teacher_and_saves_it_as_model(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    overrides = _ssl_overrides(LITS, bundle_data[LITS], tmp_path, val_interval=1)
    first = run(workflow(LITS, ["train"], "train", **overrides)).parser.get_parsed_content("train#trainer")
    teacher = {k: v.clone() for k, v in first.teacher.state_dict().items()}
    model = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    for name, value in teacher.items():  # the best model of an ssl run is the EMA teacher
        assert torch.equal(model[name], value), name

    wf = workflow(LITS, ["train"], "train", **{**overrides, "epochs": 2})
    second = wf.parser.get_parsed_content("train#trainer")
    assert any(not torch.equal(second.teacher.state_dict()[k], v) for k, v in teacher.items())  # a fresh copy
    at_start: dict = {}
    second.add_event_handler(Events.STARTED, lambda e: at_start.update(
        {k: v.clone() for k, v in e.teacher.state_dict().items()}))  # fmt: skip
    run(wf)
    assert second.state.epoch == 2
    for name, value in teacher.items():
        assert torch.equal(at_start[name], value), name


def test_other_modes_build_no_ssl_objects(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    wf = workflow(LITS, ["train"], "train", **train_overrides(LITS, bundle_data[LITS], tmp_path))
    parser = wf.parser
    assert type(parser.get_parsed_content("train#trainer")) is SupervisedTrainer
    for key in ("ema_teacher", "ssl#dataloader", "ssl#loss"):
        assert parser.get_parsed_content(key) is None
    assert parser.get_parsed_content("validate#evaluator").network is parser.get_parsed_content("network")
    assert len(parser.get_parsed_content("train#dataset").data) == 2  # every training case keeps its label


def test_evaluate_config_evaluates_the_loaded_network_in_ssl_mode(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    overrides = _ssl_overrides(LITS, bundle_data[LITS], tmp_path)
    network = workflow(LITS, ["train"], "train", **overrides).parser.get_parsed_content("network_def")
    (tmp_path / "models").mkdir()
    torch.save(network.state_dict(), tmp_path / "models" / "model.pt")  # what evaluate.json loads
    parser = workflow(LITS, ["train", "evaluate"], "train", **overrides).parser
    assert parser.get_parsed_content("validate#evaluator").network is parser.get_parsed_content("network")


def test_bad_labeled_fraction_is_one_line(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    overrides = _ssl_overrides(LITS, bundle_data[LITS], tmp_path, labeled_fraction=1.5)
    parser = workflow(LITS, ["train"], "train", **overrides).parser
    with pytest.raises(SystemExit, match=r"error: labeled_fraction must be in \(0, 1\), got 1.5"):
        parser.get_parsed_content("train#trainer")


@pytest.mark.slow
def test_ssl_multi_gpu_train_with_two_gloo_processes(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    from tests.bundle.test_bundle_cli import _cli_args, _env

    overrides = {**_ssl_overrides(LITS, bundle_data[LITS], tmp_path), "epochs": 2}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
           "-m", "monai.bundle", "run", "--config_file", "['configs/train.json','configs/multi_gpu_train.json']",
           *_cli_args(overrides)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=bundle_dir(LITS), env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    latest = torch.load(tmp_path / "models" / "latest.pt", weights_only=True)
    # 1 labelled and 1 unlabelled case, each rank gets one (padded) sample: 1 iteration per epoch
    assert latest["trainer"]["iteration"] == 2 and "teacher" in latest
    model = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert sorted(model) == sorted(latest["teacher"])


def test_ssl_with_zero_weight_is_the_supervised_baseline(bundle_data: dict[str, Path], tmp_path: Path) -> None:
    overrides = _ssl_overrides(LITS, bundle_data[LITS], tmp_path, val_interval=100, unsup_weight=0.0)
    overrides["train#trainer#epoch_length"] = 1
    trainer = run(workflow(LITS, ["train"], "train", **overrides)).parser.get_parsed_content("train#trainer")
    out = trainer.state.output[0]
    assert isinstance(trainer, MeanTeacherTrainer) and "loss_unsup" not in out
    assert out["unsup_weight"] == 0.0 and out["loss"] == pytest.approx(out["loss_sup"])
