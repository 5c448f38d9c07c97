"""The three bundles end to end on tiny synthetic data: metadata, properties, train, evaluate, infer, resume."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import verify_metadata, verify_net_in_out

from monai_jdt.bundle import CheckpointResume, bundle_dir, bundles_root
from tests.bundle._helpers import BUNDLES, KITS, LITS, QUBIQ, TINY, configs, run, train_overrides, workflow

INPUT_PATTERN = {QUBIQ: "**/image.nii*", LITS: "**/test-volume-*.nii*", KITS: "**/imaging.nii*"}
NUM_CLASSES = {QUBIQ: 2, LITS: 3, KITS: 4}


def _meta(bundle: str) -> str:
    return str(bundle_dir(bundle) / "configs" / "metadata.json")


@pytest.mark.filterwarnings("ignore:No hash value provided")
@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_verifies_offline_against_the_shipped_schema(bundle: str, tmp_path: Path) -> None:
    schema = bundles_root() / "meta_schema.json"
    verify_metadata(meta_file=_meta(bundle), filepath=str(schema))  # raises on any error; no download
    meta = json.loads(Path(_meta(bundle)).read_text())
    assert meta["schema"].startswith("https://github.com/Project-MONAI/")  # the official URL is kept
    assert meta["version"] in meta["changelog"]
    broken = dict(meta)
    del broken["task"]
    (tmp_path / "no_task.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="'task' is a required property"):
        verify_metadata(meta_file=str(tmp_path / "no_task.json"), filepath=str(schema))
    broken = json.loads(json.dumps(meta))
    del broken["network_data_format"]["outputs"]["pred"]["channel_def"]
    (tmp_path / "no_channel_def.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="'channel_def' is a required property"):
        verify_metadata(meta_file=str(tmp_path / "no_channel_def.json"), filepath=str(schema))


@pytest.mark.parametrize("bundle", BUNDLES)
def test_network_input_and_output_match_the_metadata(bundle: str) -> None:
    # the shipped network (default sizes) on a random input of the metadata's shape "16*n" with n = 2 (MONAI runs
    # it in training mode, where instance norm needs more than one voxel at the 16x downsampled bottom)
    verify_net_in_out(
        net_id="network_def", meta_file=_meta(bundle), config_file=configs(bundle, "inference")[0], device="cpu", n=2
    )


@pytest.mark.parametrize("bundle", BUNDLES)
def test_properties_of_train_and_infer(bundle: str, bundle_data: dict[str, Path], tmp_path: Path) -> None:
    train = workflow(bundle, ["train"], "train", **train_overrides(bundle, bundle_data[bundle], tmp_path))
    assert train.check_properties() == []
    infer = workflow(
        bundle,
        ["inference"],
        "infer",
        dataset_dir=str(bundle_data[bundle]),
        load_pretrain=False,
        bundle_root=str(tmp_path),
        input_pattern=INPUT_PATTERN[bundle],
    )
    assert infer.check_properties() == []


def _finite_numbers(rows: list[dict[str, str]], skip: tuple[str, ...] = ("case_id",)) -> list[float]:
    values = [float(v) for row in rows for k, v in row.items() if k not in skip and v != ""]
    assert values and all(math.isfinite(v) for v in values)
    return values


@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_evaluate_and_infer(bundle: str, bundle_data: dict[str, Path], tmp_path: Path) -> None:
    overrides = train_overrides(bundle, bundle_data[bundle], tmp_path)
    wf = run(workflow(bundle, ["train"], "train", **overrides))
    model = tmp_path / "models" / "model.pt"
    assert model.is_file() and (tmp_path / "models" / "latest.pt").is_file()
    network = wf.parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(model, weights_only=True))  # a plain state_dict of network_def

    run(workflow(bundle, ["train", "evaluate"], "train", **overrides))
    with (tmp_path / "eval" / "metrics_per_case.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2  # fold 0 of 2 folds of 4 cases
    _finite_numbers(rows)
    with (tmp_path / "eval" / "metrics_summary.csv").open() as handle:
        summary = {r["metric"]: r["value"] for r in csv.DictReader(handle)}
    expected = {
        "dice_dataset",
        "dice_image",
        "dice_class",
        "dice_image_worst",
        "dice_class_worst",
        "ece",
        "bece",
        "sce",
    }
    expected |= {QUBIQ: {"qubiq_soft_dice"}, LITS: {"dice_dataset_tumour"}, KITS: {"dice_region_mass"}}[bundle]
    assert expected <= set(summary)
    _finite_numbers([{k: summary[k] for k in expected}])
    assert (tmp_path / "eval" / "reliability.png").read_bytes()[:4] == b"\x89PNG"

    run(
        workflow(
            bundle,
            ["inference"],
            "infer",
            **TINY[bundle],
            dataset_dir=str(bundle_data[bundle]),
            bundle_root=str(tmp_path),
            input_pattern=INPUT_PATTERN[bundle],
        )
    )
    inputs = sorted(bundle_data[bundle].glob(INPUT_PATTERN[bundle]))
    assert inputs
    for image in inputs:
        rel = image.relative_to(bundle_data[bundle])
        stem = rel.name.split(".nii")[0]
        seg = tmp_path / "eval" / "predictions" / rel.parent / f"{stem}_seg.nii.gz"
        src, out = nib.load(image), nib.load(seg)
        assert out.shape == src.shape[:3] and np.allclose(out.affine, src.affine, atol=1e-4)
        values = np.unique(np.asarray(out.dataobj))
        assert values.min() >= 0 and values.max() < NUM_CLASSES[bundle]
        if bundle == QUBIQ:  # probabilities are saved by default for QUBIQ (its submission format)
            prob = nib.load(seg.with_name(f"{stem}_prob.nii.gz"))
            assert np.allclose(prob.affine, src.affine, atol=1e-4)
            assert np.allclose(np.asarray(prob.dataobj).sum(-1), 1.0, atol=1e-4)


def _handler(wf, cls: type):
    return next(h for h in wf.parser.get_parsed_content("train#handlers") if isinstance(h, cls))


@pytest.mark.parametrize("bundle", BUNDLES)
def test_resume_after_a_kill(bundle: str, bundle_data: dict[str, Path], tmp_path: Path) -> None:
    """Run 1 epoch (as if killed after it), then the same command with 2 epochs continues at epoch 2."""
    overrides = train_overrides(bundle, bundle_data[bundle], tmp_path, val_interval=1)
    first = run(workflow(bundle, ["train"], "train", **overrides))
    per_epoch = first.parser.get_parsed_content("train#trainer").state.epoch_length
    saved = torch.load(tmp_path / "models" / "latest.pt", weights_only=True)
    assert saved["trainer"]["iteration"] == per_epoch
    assert saved["best_model"]["best_epoch"] == 1
    second = workflow(bundle, ["train"], "train", **dict(overrides, epochs=2))
    trainer = second.parser.get_parsed_content("train#trainer")
    epochs_run = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs_run.append(e.state.epoch))
    run(second)
    assert _handler(second, CheckpointResume).resumed_from == 1
    assert epochs_run == [2]
    assert trainer.state.iteration == 2 * per_epoch
    optimizer = second.parser.get_parsed_content("optimizer")
    steps = {int(s["step"]) for s in optimizer.state.values()}
    assert steps == {2 * per_epoch}  # epoch 1's Adam steps were restored (a fresh optimizer would count 1 epoch)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_bad_dataset_dir_is_one_line_in_process(bundle: str, bundle_data: dict[str, Path], tmp_path: Path) -> None:
    overrides = train_overrides(bundle, tmp_path / "missing", tmp_path)
    with pytest.raises(SystemExit) as excinfo:
        workflow(bundle, ["train"], "train", **overrides)
    message = excinfo.value.code
    assert message.startswith(f"error: dataset_dir {tmp_path / 'missing'} is not an existing folder")
    assert "\n" not in message
    with pytest.raises(SystemExit, match="the trained model .*model.pt does not exist"):
        workflow(bundle, ["train", "evaluate"], "train", **train_overrides(bundle, bundle_data[bundle], tmp_path))
