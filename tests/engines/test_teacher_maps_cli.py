"""``python -m monai_jdt teacher-maps``: help, a round trip through a MONAI-style bundle, reruns and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.networks.nets import UNet

from monai_jdt.cli import main
from monai_jdt.data import load_datalist, write_datalist

NET = {"_target_": "monai.networks.nets.UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
       "channels": [4, 8], "strides": [2], "num_res_units": 0}  # fmt: skip
INFERENCE = {
    "imports": ["$import monai_jdt"],
    "bundle_root": ".",
    "device": "$torch.device('cpu')",
    "network_def": NET,
    "network": "$@network_def.to(@device)",
    "preprocessing": {
        "_target_": "Compose",
        "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "EnsureChannelFirstd", "keys": "image"},
            {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
            {"_target_": "Spacingd", "keys": "image", "pixdim": [1.5, 1.5, 2.0], "mode": "bilinear"},
            {"_target_": "ScaleIntensityd", "keys": "image"},
        ],
    },
    "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [8, 8, 8], "sw_batch_size": 2, "overlap": 0.25},
}


def make_case(tmp_path, n_train: int = 2):
    """A bundle folder, a CheckpointSaver-style checkpoint, images and a datalist with training + validation."""
    (tmp_path / "bundle" / "configs").mkdir(parents=True)
    (tmp_path / "bundle" / "configs" / "inference.json").write_text(json.dumps(INFERENCE))
    net = UNet(spatial_dims=3, in_channels=1, out_channels=3, channels=(4, 8), strides=(2,), num_res_units=0)
    torch.save({"model": net.state_dict(), "epoch": 3}, tmp_path / "model.pt")
    (tmp_path / "data").mkdir()
    entries = []
    for i in range(n_train + 1):
        path = tmp_path / "data" / f"img{i}.nii.gz"
        affine = np.diag([-1.2, 1.0, 2.5, 1.0])
        affine[:3, 3] = [5.0, -3.0, i]
        nib.save(nib.Nifti1Image(np.random.rand(10, 9, 5).astype(np.float32), affine), path)
        entries.append({"image": str(path), "case_id": f"c{i}"})
    write_datalist(tmp_path / "data" / "list.json", entries[:n_train], validation=entries[n_train:],
                   metadata={"name": "toy"})  # fmt: skip
    return tmp_path / "data" / "list.json"


def test_help() -> None:
    done = subprocess.run([sys.executable, "-m", "monai_jdt", "teacher-maps", "--help"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0
    for flag in ("--checkpoint", "--datalist", "--output-dir", "--overwrite", "--dtype", "float16"):
        assert flag in done.stdout
    assert "teacher-maps" in subprocess.run([sys.executable, "-m", "monai_jdt", "--help"], capture_output=True,
                                            text=True, check=False).stdout  # fmt: skip


def test_round_trip_rerun_and_sections(tmp_path, capsys) -> None:
    datalist = make_case(tmp_path)
    args = ["teacher-maps", str(tmp_path / "bundle"), "--checkpoint", str(tmp_path / "model.pt"), "--datalist",
            str(datalist), "--output-dir", str(tmp_path / "maps"), "--sections", "training", "validation"]  # fmt: skip
    assert main(args) == 0
    assert "3 written, 0 already present" in capsys.readouterr().out
    out_json = tmp_path / "maps" / "list_teacher.json"
    content = json.loads(out_json.read_text())
    assert content["name"] == "toy" and "teacher" in content["path_keys"]
    assert content["training"][0]["teacher"] == "img0_teacher.nii.gz"  # relative to the JSON
    for section, n in (("training", 2), ("validation", 1)):
        entries = load_datalist(out_json, section)
        assert len(entries) == n
        for entry in entries:
            image, maps = nib.load(entry["image"]), nib.load(entry["teacher"])
            np.testing.assert_allclose(maps.affine, image.affine, atol=1e-6)
            assert maps.shape == (*image.shape, 3) and maps.get_data_dtype() == np.uint16
            np.testing.assert_allclose(maps.get_fdata().sum(-1), 1.0, atol=1e-6)
    assert main(args) == 0
    assert "0 written, 3 already present" in capsys.readouterr().out


def test_float32_training_only_and_checkpoint_key(tmp_path, capsys) -> None:
    datalist = make_case(tmp_path, n_train=1)
    assert main(["teacher-maps", str(tmp_path / "bundle"), "--checkpoint", str(tmp_path / "model.pt"),
                 "--checkpoint-key", "model", "--datalist", str(datalist), "--output-dir", str(tmp_path / "m"),
                 "--dtype", "float32", "--name-key", "case_id", "--out-datalist",
                 str(tmp_path / "kd.json")]) == 0  # fmt: skip
    entries = load_datalist(tmp_path / "kd.json", "training")
    assert [e["teacher"].rsplit("/", 1)[-1] for e in entries] == ["c0_teacher.nii.gz"]
    assert nib.load(entries[0]["teacher"]).get_data_dtype() == np.float32
    assert "teacher" not in load_datalist(tmp_path / "kd.json", "validation")[0]  # copied unchanged


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--checkpoint": "nothing.pt"}, "checkpoint file .*nothing.pt does not exist"),
        ({"--checkpoint-key": "net"}, "key 'net' is not in the checkpoint"),
        ({"--datalist": "nothing.json"}, "datalist file .*nothing.json does not exist"),
        ({"--network-def": "teacher_def"}, "network id 'teacher_def' is not in the bundle config"),
        ({"--sections": "test"}, r"--sections \['test'\] are not in the datalist"),
        ({"--device": "gpu0"}, "--device must be a torch device"),
    ],
)
def test_errors_are_one_line_naming_the_problem(tmp_path, capsys, change: dict, message: str) -> None:
    datalist = make_case(tmp_path, n_train=1)
    options = {"--checkpoint": str(tmp_path / "model.pt"), "--datalist": str(datalist),
               "--output-dir": str(tmp_path / "m")}  # fmt: skip
    options.update({k: str(tmp_path / v) if k in ("--checkpoint", "--datalist") else v for k, v in change.items()})
    argv = ["teacher-maps", str(tmp_path / "bundle")] + [x for kv in options.items() for x in kv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    import re

    assert re.search(message, err), err
