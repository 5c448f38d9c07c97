"""The trainers' losses inside real nnU-Net trainer objects (in-process, CPU, no data set needed).

The plans file is a tiny 3d_fullres plan written by ``nnUNetv2_plan_and_preprocess`` for a synthetic data set;
the labels (plain, with an ignore label, regions) come from the ``dataset_json`` passed here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from monai_jdt.nnunet import NNUNetOverlapCELoss, nnunet_available

pytestmark = pytest.mark.skipif(
    not nnunet_available(), reason="nnU-Net v2 >= 2.8 is not installed (bash scripts/install_nnunet_cpu.sh)"
)
PLANS = json.loads((Path(__file__).parent / "data" / "nnUNetPlans_tiny.json").read_text())
LABELS = {
    "plain": {"background": 0, "liver": 1, "tumor": 2},
    "ignore": {"background": 0, "liver": 1, "tumor": 2, "ignore": 3},
    "regions": {"background": 0, "liver": [1, 2], "tumor": 2},
    "regions_ignore": {"background": 0, "liver": [1, 2], "tumor": 2, "ignore": 3},
}


def _trainer(cls, labels: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "preprocessed"))
    data = tmp_path / "preprocessed" / PLANS["dataset_name"] / "nnUNetPlans_3d_fullres"
    data.mkdir(parents=True, exist_ok=True)
    (data / "case.b2nd").touch()  # initialize() infers the data set format from the file endings
    dataset_json = {"channel_names": {"0": "CT"}, "labels": LABELS[labels], "numTraining": 5,
                    "file_ending": ".nii.gz"}
    if labels.startswith("regions"):
        dataset_json["regions_class_order"] = [1, 2]
    plans = copy.deepcopy(PLANS)
    plans["continue_training"] = False
    trainer = cls(plans=plans, configuration="3d_fullres", fold=0, dataset_json=dataset_json,
                  device=torch.device("cpu"))
    trainer.initialize()
    return trainer


def _batch(trainer, labels: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Random outputs and targets at the deep-supervision resolutions of the trainer's network."""
    patch = trainer.configuration_manager.patch_size
    scales = trainer._get_deep_supervision_scales()
    heads = trainer.label_manager.num_segmentation_heads
    outputs, targets = [], []
    for scale in scales:
        shape = [2, *(max(1, round(p * s)) for p, s in zip(patch, scale))]
        outputs.append(torch.randn(shape[0], heads, *shape[1:]))
        if labels.startswith("regions"):
            liver = torch.rand(shape[0], 1, *shape[1:]) > 0.4
            channels = [liver, liver & (torch.rand_like(liver, dtype=torch.float) > 0.5)]
            if labels == "regions_ignore":
                channels.append(torch.rand_like(liver, dtype=torch.float) > 0.7)  # nnU-Net: ignore flag last
            targets.append(torch.cat(channels, 1))
        else:
            top = 4 if labels == "ignore" else 3
            targets.append(torch.randint(0, top, (shape[0], 1, *shape[1:])).float())
    return outputs, targets


@pytest.mark.parametrize("labels", ["plain", "ignore", "regions", "regions_ignore"])
def test_dmlce_equals_nnunet_default_loss_plus_one(labels: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from monai_jdt.nnunet.trainers import nnUNetTrainerDMLCE

    default = _trainer(nnUNetTrainer, labels, tmp_path / "a", monkeypatch)
    ours = _trainer(nnUNetTrainerDMLCE, labels, tmp_path / "b", monkeypatch)
    assert isinstance(ours.loss, DeepSupervisionWrapper) and isinstance(ours.loss.loss, NNUNetOverlapCELoss)
    assert ours.loss.weight_factors == default.loss.weight_factors  # nnU-Net's deep-supervision weights
    options = ours.loss.loss.options
    regions = labels.startswith("regions")
    assert options["regions"] == regions and options["do_bg"] == regions
    assert options["ignore_label"] == (3 if labels.endswith("ignore") else None)
    assert options["batch_dice"] == PLANS["configurations"]["3d_fullres"]["batch_dice"]
    assert options["sync_stats"] is False  # not under DDP
    outputs, targets = _batch(ours, labels)
    torch.testing.assert_close(ours.loss(outputs, targets), default.loss(outputs, targets) + 1, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nnUNetTrainerJMLCE", {"overlap": "jaccard", "smoothing_epsilon": 0.0, "class_agnostic": False}),
        ("nnUNetTrainerDMLCE_BLS", {"overlap": "dice", "smoothing_epsilon": 0.5, "smoothing_kernel_size": 3}),
        ("nnUNetTrainerDMLCE_ClassAgnostic", {"overlap": "dice", "class_agnostic": True}),
    ],
)
def test_variants_build_their_loss(name: str, expected: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import monai_jdt.nnunet as pkg

    trainer = _trainer(getattr(pkg, name), "ignore", tmp_path, monkeypatch)
    options = trainer.loss.loss.options
    assert {k: options[k] for k in expected} == expected


@pytest.mark.parametrize("labels", ["ignore", "regions_ignore"])
def test_bls_trainer_runs_nnunets_train_step(labels: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """BLS runs the most code (smoothing of every level, soft CE/BCE + DML): one real nnU-Net train_step."""
    from monai_jdt.nnunet.trainers import nnUNetTrainerDMLCE_BLS

    trainer = _trainer(nnUNetTrainerDMLCE_BLS, labels, tmp_path, monkeypatch)
    patch = trainer.configuration_manager.patch_size
    _, targets = _batch(trainer, labels)
    data = torch.randn(2, 1, *patch)
    step = trainer.train_step({"data": data, "target": targets})  # nnU-Net's own step: forward, loss, backward
    assert torch.isfinite(torch.as_tensor(step["loss"]))
    assert all(torch.isfinite(p.grad).all() for p in trainer.network.parameters() if p.grad is not None)


def test_length_overrides_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from monai_jdt.nnunet.trainers import nnUNetTrainerDMLCE

    monkeypatch.setenv("MONAI_JDT_NNUNET_EPOCHS", "2")
    monkeypatch.setenv("MONAI_JDT_NNUNET_ITERATIONS", "3")
    trainer = _trainer(nnUNetTrainerDMLCE, "plain", tmp_path, monkeypatch)
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch) == (2, 3, 50)
    monkeypatch.setenv("MONAI_JDT_NNUNET_EPOCHS", "zero")
    with pytest.raises(ValueError, match="MONAI_JDT_NNUNET_EPOCHS must be a positive integer, got 'zero'"):
        _trainer(nnUNetTrainerDMLCE, "plain", tmp_path / "x", monkeypatch)
